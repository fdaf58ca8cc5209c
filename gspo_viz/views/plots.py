"""Plotly figure builders: results in, figures out. No Streamlit; the pages only place these figures."""
from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import plotly.graph_objects as go

from ..core.curves import ClipCurve
from ..core.objectives import OBJECTIVES
from ..core.objectives.base import CLIP_NAMES
from ..scenarios.run import ScenarioResult
from .steps import hover_texts
from .style import CLIP_SYMBOLS, FONT_FAMILY, TABLE_FORMAT, gloss, text_px

# ColorBrewer RdBu end points (colour-blind safe): blue = above (ratio > 1, a gradient that raises), red = below
DIVERGING = [[0.0, "#b2182b"], [0.25, "#ef8a62"], [0.5, "#f7f7f7"], [0.75, "#67a9cf"], [1.0, "#2166ac"]]
FONT = dict(family=FONT_FAMILY, size=12)

# Sizes, in CSS pixels, for a projector at 1280 × 720 (read from the back of the room)
DESIGN_WIDTH = 820     # a chart's width in a 1280 px window with the sidebar: the narrowest the maps are laid out for
TALK_WIDTH = 1240      # a chart's width in talk mode (no sidebar; larger screens scale the whole page up)
TALK_MAPS_HEIGHT = 280  # each of the two maps in talk mode: both fit under the scene bar (title and "say" line) of a
#                        720 px screen (127 px + 2 × 280 px + the gap between them ≈ 703 px)
TICK_SIZE = 13         # row labels
TITLE_SIZE = 16
SMALL_SIZE = 12        # axis ticks, colour-bar ticks, the labels right of a map
CELL_SIZES = (14, 13, 12, 11)   # numbers in the cells: the largest that fits every cell, never below 11 px
MARK_SHAPES = {"▲": "triangle-up", "▼": "triangle-down", "✕": "x"}   # the clip marks as Plotly marker symbols
MIN_TICK_GAP = 18      # between two ticks of a vertical colour bar
SUBPLOT_GAP = 18       # between two objectives' maps
CELL_ROUNDING = "r to 4 significant digits, ∂J/∂log π to 3"   # what the cells print (the hover has 6)
# Axis tick labels as numbers, never SI prefixes (Plotly's default prints 1e-10 as "100p" and 1e10 as "10B"):
# 1e−6 and 1e+10 past Plotly's plain range, 0.25 and 1000 within it
PLAIN_TICKS = dict(exponentformat="e")


def log_ticks(values) -> dict:
    """A log axis's ticks: a label per power of ten when the values span more than a decade and a half (Plotly's
    default then also labels 2 and 5 between them, "1e-3 5 2 0.01", where a 2 reads as 2, not 0.002); within that,
    Plotly's own ticks, which the axis needs."""
    values = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    wide = bool(values) and math.log10(max(values) / min(values)) > 1.5
    return {"type": "log", **({"dtick": 1} if wide else {})}


def _figure(data: list[dict], title: str, height: int, color: Optional[str] = None, **layout) -> go.Figure:
    """A figure from plain specs, unvalidated for speed (tests validate every builder's output once)."""
    base = dict(title=dict(text=title, font=dict(color=color or "#222", size=15), x=0.01, xanchor="left"),
                height=height, margin=dict(l=10, r=10, t=40 + 20 * title.count("<br>"), b=10), font=FONT,
                plot_bgcolor="white", paper_bgcolor="white")
    layout = base | layout
    for axis in ("xaxis", "yaxis"):  # room for tick labels (the pages draw without Streamlit's theme: faster)
        layout[axis] = dict(automargin=True, gridcolor="#eee", **PLAIN_TICKS) | layout.get(axis, {})
    return go.Figure(dict(data=data, layout=layout), _validate=False)


def _wrap(text: str, size: float, width: float) -> str:
    """`text` broken at spaces into lines (joined by <br>) of at most `width` px at font `size`."""
    lines, line = [], ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if line and text_px(candidate, size) > width:
            lines.append(line)
            line = word
        else:
            line = candidate
    return "<br>".join(lines + [line])


def _minus(text: str) -> str:
    return text.replace("-", "−")


def ratio_text(r: float) -> str:
    """A ratio as a cell prints it (CELL_ROUNDING): 4 significant digits."""
    return _minus(f"{r:.4g}")


def grad_text(g: float) -> str:
    """A gradient weight as a cell prints it (CELL_ROUNDING): 3 significant digits."""
    return _minus(f"{g:.3g}")


def plain_number(v: float) -> str:
    """A tick label: 0.25, 1, 1024, 1e-06 (never an SI prefix such as 100p or 10B)."""
    return _minus(f"{v:.4g}")


def _row_labels(res: ScenarioResult) -> list[str]:
    """Each response's label: its number and its row parts (advantage, sequence ratio, masked)."""
    return [" · ".join([f"resp {i + 1}", *_row_parts(res, i).values()]) for i in range(len(res.scenario.responses))]


def _row_parts(res: ScenarioResult, i: int) -> dict[str, str]:
    """What a response's row says besides its number: A, the sequence ratio (objectives that have one), masked."""
    ex = res.explanation
    a = res.advantages[i]
    a = float(a) if a.dim() == 0 else float(a.mean())
    parts = {"A": f"A {a:+.3f}"}
    if ex.seq_ratio is not None:
        parts["s"] = f"{OBJECTIVES[ex.objective].seq_ratio_symbol or 's'} {float(ex.seq_ratio[i]):.4f}"
    if i in res.masked:
        parts["masked"] = "masked"
    return parts


# ------------------------------------------------------------------------------------------ how a group is drawn
CELL_BUDGET = 4000     # a heatmap of more cells (responses × longest response) than this is drawn in bins
MAX_COLUMNS = 64       # a binned map has at most this many columns; each holds a power of two of tokens
ROWS_PER_PAGE = 32     # a binned map shows this many responses at a time (choose the page)


@dataclass(frozen=True)
class HeatmapPlan:
    """How a group's heatmaps are drawn: every token in one cell (width 1), or `width` consecutive tokens of a
    response per cell; all responses at once, or `rows` per page."""
    responses: int   # G
    tokens: int      # the longest response's length
    width: int       # tokens per cell
    rows: int        # responses per page

    @property
    def pages(self) -> int:
        return -(-self.responses // self.rows)

    @property
    def binned(self) -> bool:
        return self.width > 1

    @property
    def exact(self) -> bool:
        """Drawn as small groups are: every token, every response, one hover text per token."""
        return self.width == 1 and self.pages == 1

    def page_rows(self, page: int) -> range:
        page = min(max(int(page), 0), self.pages - 1)
        return range(page * self.rows, min((page + 1) * self.rows, self.responses))

    def page_label(self, page: int) -> str:
        r = self.page_rows(page)
        return f"responses {r.start + 1}–{r.stop} of {self.responses}"


def heatmap_plan(lengths: list[int]) -> HeatmapPlan:
    """Every token when responses × longest response <= CELL_BUDGET (small groups are drawn exactly as they always
    were); else ROWS_PER_PAGE responses per page and each response's tokens in bins of a power of two, so that a
    page has at most MAX_COLUMNS columns and CELL_BUDGET cells."""
    G, T = len(lengths), max(lengths)
    if G * T <= CELL_BUDGET:
        return HeatmapPlan(G, T, 1, G)
    rows = min(G, ROWS_PER_PAGE)
    columns = max(1, min(MAX_COLUMNS, CELL_BUDGET // rows))
    width = 1
    while -(-T // width) > columns:
        width *= 2
    return HeatmapPlan(G, T, width, rows)


MAP_CHROME = 84        # px of a map figure that are not cells: the title, the objectives' names, the token axis


def heatmap_height(rows: int) -> int:
    """A map figure's height in pixels for `rows` responses: 28 px a row (room for a number and its token), the
    cells at least 96 px (a colour bar with a few ticks; one response's cells with four lines of text) and at most
    480 px high in all."""
    return MAP_CHROME + min(max(28 * rows, 96), 480)


def heatmap_caption(plan: HeatmapPlan, page: int = 0) -> Optional[str]:
    """What a large group's heatmaps show (None when they show every token of every response)."""
    if plan.exact:
        return None
    parts = []
    if plan.binned:
        parts.append(f"Each cell holds {plan.width} consecutive tokens of one response (the last cell of a response "
                     f"may hold fewer): the ratio map shows their geometric mean r (the mean of log r), the gradient "
                     f"map their mean ∂J/∂log π per token. ▲ ▼ ✕ mark the cells where at least half the tokens are "
                     f"clipped (the most frequent decision; larger when more are). Hover a cell for its token range, "
                     f"min, mean and max, and how many of its tokens each decision clipped.")
    if plan.pages > 1:
        parts.append(f"Showing {plan.page_label(page)} ({plan.rows} per page).")
    parts.append("The table of every number below and its CSV have every token.")
    return " ".join(parts)


def glossary(results: list[ScenarioResult]) -> list[tuple[str, str]]:
    """The tokens of the results' scenarios that have an English gloss (views.style.GLOSS), each once, in order."""
    seen: dict[str, str] = {}
    for res in results[:1]:     # every result of a comparison holds the same scenario
        for r in res.scenario.responses:
            for tok in r.tokens:
                g = gloss(tok)
                if g is not None and tok not in seen:
                    seen[tok] = g
    return list(seen.items())


# ------------------------------------------------------------------------------------------ one objective's map
@dataclass(frozen=True)
class Panel:
    """One objective's map of one kind (the token ratio, or the gradient weight) for some responses, before it is
    laid out beside the other objectives' (maps_figure). Cells are (row, column) of `z`; None where a response has
    no token."""
    name: str                    # the objective
    kind: str                    # "ratio" (z = log r) or "grad" (z = ∂J/∂log π)
    rows: tuple[int, ...]        # the responses shown, from 0
    x: list                      # each column's centre on the token axis (from 1)
    x_range: tuple[float, float]
    width: int                   # tokens per cell (1: every token)
    z: list[list]
    customdata: list[list]       # the hover's data per cell
    hovertemplate: str
    top: float                   # the largest |z| of the whole group (all its responses): the colour scale's reach
    #                              (at least log 1.25 for ratios; 0 for a map of zeros, drawn on a scale of ±1)
    parts: list[dict]            # per row shown: its label's parts (_row_parts)
    marks: list[tuple]           # clipped cells: (x, row k, symbol, size in px or None)
    values: Optional[list[list]] = None   # per cell, the number a cell prints (every-token maps), None on padding
    words: list[tuple] = field(default_factory=list)   # (x, row k, token) of every token (every-token maps)


def _gloss_hover(text: str, tok: str) -> str:
    """A hover text with the token's English gloss after the token (the hover starts with the token in bold)."""
    g = gloss(tok)
    return text if g is None else text.replace("</b>", f"</b> “{html.escape(g)}”", 1)


def exact_panels(res: ScenarioResult, rows: Optional[Sequence[int]] = None,
                 hovers: Optional[list] = None) -> tuple[Panel, Panel]:
    """The ratio and gradient panels with one cell per token of the responses in `rows` (all by default), sharing
    one computation of the hover texts (hovers: one list per row of `rows`)."""
    ex = res.explanation
    rows = tuple(range(len(res.scenario.responses)) if rows is None else rows)
    hovers = hover_texts(res, rows) if hovers is None else hovers
    ratio, grad, clip = ex.token_ratio.tolist(), ex.grad_weight.tolist(), ex.clip.tolist()
    lengths = [len(r.tokens) for r in res.scenario.responses]
    T = ex.mask.shape[1]
    zr, zg, custom, vr, vg, marks, words = [], [], [], [], [], [], []
    for k, i in enumerate(rows):
        toks = res.scenario.responses[i].tokens
        L = lengths[i]
        zr.append([math.log(ratio[i][t]) if t < L else None for t in range(T)])
        zg.append([grad[i][t] if t < L else None for t in range(T)])
        vr.append([ratio_text(ratio[i][t]) if t < L else None for t in range(T)])
        vg.append([grad_text(grad[i][t]) if t < L else None for t in range(T)])
        custom.append([_gloss_hover(hovers[k][t], toks[t]) if t < L else "" for t in range(T)])
        for t in range(L):
            symbol = CLIP_SYMBOLS[CLIP_NAMES[clip[i][t]]]
            if symbol:
                marks.append((t + 1, k, symbol, None))
            words.append((t + 1, k, toks[t]))
    top_r = max([abs(math.log(ratio[i][t])) for i in range(len(lengths)) for t in range(lengths[i])]
                + [math.log(1.25)])
    top_g = float(ex.grad_weight.abs().max())
    parts = [_row_parts(res, i) for i in rows]
    x = list(range(1, T + 1))
    common = dict(name=ex.objective, rows=rows, x=x, x_range=(0.5, T + 0.5), width=1, customdata=custom,
                  hovertemplate="%{customdata}<extra></extra>", parts=parts, marks=marks, words=words)
    return (Panel(kind="ratio", z=zr, top=top_r, values=vr, **common),
            Panel(kind="grad", z=zg, top=top_g, values=vg, **common))


# ------------------------------------------------------------------------------------------ binned maps
@dataclass
class TokenBins:
    """Each response's tokens `width` at a time: (G, B) statistics of the log-ratio and the gradient weight, and
    per clip decision the number of tokens with it. `count` is 0 where a response has no token left."""
    width: int
    count: list[list[int]]
    logr_mean: list[list[float]]
    logr_min: list[list[float]]
    logr_max: list[list[float]]
    grad_mean: list[list[float]]
    grad_min: list[list[float]]
    grad_max: list[list[float]]
    grad_sum: list[list[float]]
    clips: dict[int, list[list[int]]]   # clip code → (G, B) counts


def token_bins(res: ScenarioResult, width: int) -> TokenBins:
    import torch
    ex = res.explanation
    G, T = ex.mask.shape
    B = -(-T // width)
    pad = B * width - T

    def binned(x):
        return torch.nn.functional.pad(x, (0, pad)).reshape(G, B, width)
    inside = binned(ex.mask.to(torch.float64)) > 0
    count = inside.sum(-1)
    per = count.clamp(min=1)

    def stats(values):
        v = binned(values.detach().to(torch.float64))
        total = torch.where(inside, v, torch.zeros_like(v)).sum(-1)
        low = torch.where(inside, v, torch.full_like(v, math.inf)).amin(-1)
        high = torch.where(inside, v, torch.full_like(v, -math.inf)).amax(-1)
        return total / per, low, high, total

    lm, lmin, lmax, _ = stats(torch.log(ex.token_ratio))
    gm, gmin, gmax, gsum = stats(ex.grad_weight)
    codes = binned(ex.clip.to(torch.int64))
    clips = {code: ((codes == code) & inside).sum(-1).tolist() for code in range(1, len(CLIP_NAMES))}
    return TokenBins(width, count.tolist(), lm.tolist(), lmin.tolist(), lmax.tolist(), gm.tolist(), gmin.tolist(),
                     gmax.tolist(), gsum.tolist(), clips)


def _sig(x: float) -> float:
    """6 significant digits: what the hover shows, in fewer bytes."""
    return float(f"{x:.6g}")


def binned_panels(res: ScenarioResult, bins: TokenBins, rows: Sequence[int]) -> tuple[Panel, Panel]:
    """The ratio panel (geometric mean of r per cell) and the gradient panel (mean ∂J/∂log π per token of the cell)
    of a large group: `bins.width` consecutive tokens of a response per cell, the responses in `rows`."""
    ex = res.explanation
    obj = OBJECTIVES[ex.objective]
    w = bins.width
    B = len(bins.count[0])
    rows = tuple(rows)
    centres = [k * w + (w + 1) / 2 for k in range(B)]
    marked = [code for code in bins.clips if CLIP_SYMBOLS[CLIP_NAMES[code]] and CLIP_NAMES[code] in obj.marks]
    head = "<b>response %{customdata[0]}, tokens %{customdata[1]}–%{customdata[2]}</b> (%{customdata[3]} tokens)"
    panels = []
    for kind in ("ratio", "grad"):
        if kind == "ratio":
            mean, low, high = bins.logr_mean, bins.logr_min, bins.logr_max

            def shown(i, k):
                return _sig(math.exp(low[i][k])), _sig(math.exp(mean[i][k])), _sig(math.exp(high[i][k]))
            stats = ("r = π_θ/π_old: min %{customdata[4]:.6g}, geometric mean %{customdata[5]:.6g}, "
                     "max %{customdata[6]:.6g}")
            n_stats = 3
        else:
            mean, low, high, total = bins.grad_mean, bins.grad_min, bins.grad_max, bins.grad_sum

            def shown(i, k):
                return _sig(low[i][k]), _sig(mean[i][k]), _sig(high[i][k]), _sig(total[i][k])
            stats = ("∂J/∂log π: min %{customdata[4]:.6g}, mean %{customdata[5]:.6g}, max %{customdata[6]:.6g}, "
                     "sum %{customdata[7]:.6g}")
            n_stats = 4
        z, custom, marks = [], [], []
        for row, i in enumerate(rows):
            zr, cr = [], []
            for k in range(B):
                n = bins.count[i][k]
                if not n:
                    zr.append(None)
                    cr.append(None)
                    continue
                counts = [bins.clips[c][i][k] for c in marked]
                zr.append(mean[i][k])
                cr.append([i + 1, k * w + 1, k * w + n, n, *shown(i, k), sum(counts), *counts])
                if 2 * sum(counts) >= n:    # at least half the cell's tokens clipped (every count is in the hover)
                    top_code = marked[max(range(len(marked)), key=counts.__getitem__)]
                    marks.append((centres[k], row, CLIP_SYMBOLS[CLIP_NAMES[top_code]],
                                  round(2 + 8 * sum(counts) / n, 1)))   # 6 px at half, 10 px when all are
            z.append(zr)
            custom.append(cr)
        values = [abs(v) for i in range(len(bins.count)) for v, n in zip(mean[i], bins.count[i]) if n]
        top = max(values + [math.log(1.25)]) if kind == "ratio" else max(values)
        clip_line = ""
        if marked:
            at = 4 + n_stats
            each = ", ".join(f"{CLIP_SYMBOLS[CLIP_NAMES[c]]} %{{customdata[{at + 1 + j}]}}"
                             for j, c in enumerate(marked))
            clip_line = f"<br>clipped: %{{customdata[{at}]}} of %{{customdata[3]}} ({each})"
        panels.append(Panel(name=ex.objective, kind=kind, rows=rows, x=centres, x_range=(0.5, B * w + 0.5), width=w,
                            z=z, customdata=custom, hovertemplate=f"{head}<br>{stats}{clip_line}<extra></extra>",
                            top=top, parts=[_row_parts(res, i) for i in rows], marks=marks))
    return panels[0], panels[1]


def objective_panels(res: ScenarioResult, page: int = 0) -> tuple[Panel, Panel]:
    """One objective's ratio and gradient panels for the responses of `page` (see heatmap_plan): every token of a
    small group, bins of tokens of a large one."""
    plan = heatmap_plan([len(r.tokens) for r in res.scenario.responses])
    rows = plan.page_rows(page)
    if not plan.binned:
        return exact_panels(res, rows)
    return binned_panels(res, token_bins(res, plan.width), rows)


# ------------------------------------------------------------------------------------------ the objectives side by side
def _round_inward(x: float, toward: float) -> float:
    """x to 3 significant digits, rounded toward `toward` (so that a bar's end tick stays on the bar)."""
    e = 10.0 ** (math.floor(math.log10(abs(x))) - 2)
    return (math.floor if x > toward else math.ceil)(x / e) * e


def _apart(vals: list[float], per_unit: float, gap) -> bool:
    """Every two neighbouring ticks (values on a bar of `per_unit` px per unit) at least gap(a, b) px apart."""
    vals = sorted(vals)
    return all((b - a) * per_unit >= gap(a, b) - 1e-9 for a, b in zip(vals, vals[1:]))


def _ratio_ticks(top: float, length: float, gap) -> list[float]:
    """Ratios to mark on a colour bar `length` px long that spans log r in [−top, top]: 1, then powers of 2 (of 10
    on a very wide scale), then 1.25, 0.8, … as long as every two neighbours stay gap(log a, log b) px apart; when
    only 1 fits, the bar's ends (3 significant digits, inside the bar) if they fit."""
    per_unit = length / (2 * top)
    base = 10.0 if top > math.log(64) else 2.0
    candidates = [1.0] + [v for k in range(1, 40) for v in (base ** k, base ** -k)]
    candidates += [1.25, 0.8, 1.1, 0.9, 1.05, 0.95, 1.02, 0.98, 1.01, 0.99]
    chosen: list[float] = []
    for v in candidates:
        lv = math.log(v)
        if abs(lv) <= top * (1 + 1e-9) and _apart([math.log(c) for c in chosen] + [lv], per_unit, gap):
            chosen.append(v)
    if len(chosen) == 1:
        ends = [_round_inward(math.exp(top), 1.0), _round_inward(math.exp(-top), 1.0)]
        if _apart([math.log(v) for v in ends + chosen], per_unit, gap):
            chosen += ends
    return sorted(chosen)


def _grad_ticks(top: float, length: float, gap) -> list[float]:
    """Round gradient weights to mark on a colour bar `length` px long that spans [−top, top]: 0 and ± multiples
    of a step of 1, 2, 2.5 or 5 × 10^k, at most 4 a side, every two neighbours at least gap(a, b) px apart (the
    bar's ends when not even one step a side fits)."""
    per_unit = length / (2 * top)
    for per_side in range(4, 0, -1):
        e = math.floor(math.log10(top / per_side))
        step = 10.0 ** (e + 1)
        for m in (1, 2, 2.5, 5, 10):
            if top / (m * 10.0 ** e) <= per_side + 1e-9:
                step = m * 10.0 ** e
                break
        k = int(top / step + 1e-9)
        ticks = [round(j * step, 12 - e) for j in range(-k, k + 1)]
        if k and _apart(ticks, per_unit, gap):
            return ticks
    return [-top, 0.0, top]


def _colorbar(kind: str, top: float, length: float, horizontal: bool) -> dict:
    """A colour bar whose ticks do not overlap: at least MIN_TICK_GAP px apart on a vertical bar; on a horizontal
    one, half of each of two neighbouring labels' widths and 8 px apart."""
    def label(v):
        return plain_number(math.exp(v) if kind == "ratio" else v)

    def gap(a, b):
        return (text_px(label(a), SMALL_SIZE) + text_px(label(b), SMALL_SIZE)) / 2 + 8 if horizontal else MIN_TICK_GAP
    if kind == "ratio":
        ticks = _ratio_ticks(top, length, gap)
        vals, text = [math.log(v) for v in ticks], [plain_number(v) for v in ticks]
    else:
        ticks = _grad_ticks(top, length, gap)
        vals, text = ticks, [plain_number(v) for v in ticks]
    bar = dict(tickvals=vals, ticktext=text, tickfont=dict(size=SMALL_SIZE), outlinewidth=0, thickness=12,
               ticks="outside", ticklen=3)
    if horizontal:
        bar |= dict(orientation="h", thickness=10)
    return bar


def _ink(v: float) -> str:
    """Black or white text, whichever reads better on a cell whose colour is DIVERGING at v in [−1, 1]."""
    pos = min(max((v + 1) / 2, 0.0), 1.0)
    for (p0, c0), (p1, c1) in zip(DIVERGING, DIVERGING[1:]):
        if pos <= p1:
            f = (pos - p0) / (p1 - p0)
            rgb = [int(c0[j:j + 2], 16) * (1 - f) + int(c1[j:j + 2], 16) * f for j in (1, 3, 5)]
            break
    lum = sum(w * (c / 255) ** 2.2 for w, c in zip((0.2126, 0.7152, 0.0722), rgb))
    return "white" if lum < 0.3 else "#111"


def _cut(text: str, size: float, width: float) -> Optional[str]:
    """`text`, shortened with … to fit `width` px at `size`; None when not even one character fits."""
    if text_px(text, size) <= width:
        return text
    for n in range(len(text) - 1, 0, -1):
        if text_px(text[:n] + "…", size) <= width:
            return text[:n] + "…"
    return None


def _token_ticks(tokens: float, length: float) -> dict:
    """Token positions to number on an axis `length` px long: every 1, 2, 5, 10, 20, … tokens, at least 30 px apart
    (every token when each has 18 px)."""
    step = 1
    if length / tokens < 18:
        steps = (m * 10 ** e for e in range(8) for m in (1, 2, 5))
        step = next(s for s in steps if length * s / tokens >= 30)
    return dict(tickmode="linear", tick0=0 if step > 1 else 1, dtick=step)


KIND_TITLES = {"ratio": "Token ratio r = π_θ/π_old: blue above 1, red below; ▲ ▼ ✕ clipped",
               "grad": "Gradient weight ∂J/∂log π_θ: blue raises the token's probability, red lowers it"}


def _cell_lines(panels: Sequence[Panel], cw: float, ch: float) -> tuple[Optional[int], list[str]]:
    """What the cells print and at what size: the largest size of CELL_SIZES at which every cell's number fits its
    cell, and the lines each cell shows, top to bottom: the clip mark on its own line or before the number, the
    number, the token, its English gloss (as many as fit; the glosses when at least half of them fit whole, each
    drawn only where it does). (None, []) when no number fits: the cells show the clip marks only."""
    first = panels[0]
    if first.values is None:
        return None, []
    longest = max((v for p in panels for row in p.values for v in row if v is not None), key=len, default="")
    marked = any(p.marks for p in panels)
    glosses = {g for p in panels for _, _, tok in p.words if (g := gloss(tok))}
    options = [["mark", "value", "word", "gloss"], ["mark value", "word", "gloss"], ["mark", "value", "word"],
               ["mark value", "word"], ["mark", "value"], ["mark value"]]
    # the tokens (and their glosses) before a larger size, down to 12 px; 11 px only when nothing else fits
    for sizes in (CELL_SIZES[:-1], CELL_SIZES[-1:]):
        for lines in options:
            if not marked:
                lines = [line for line in lines if line != "mark"]
            if "gloss" in lines and not glosses or not lines:
                continue
            for size in sizes:
                if "gloss" in lines and 2 * sum(text_px(g, size - 1) + 6 <= cw for g in glosses) < len(glosses):
                    continue        # a line of glosses when at least half of them fit whole
                value_w = text_px(("▲ " if marked and "mark value" in lines else "") + longest, size)
                if value_w + 6 <= cw and len(lines) * (size + 3) + 4 <= ch:
                    return size, lines
    return None, []


def maps_figure(panels: Sequence[Panel], height: int, shared: bool = True, width: int = DESIGN_WIDTH,
                title: Optional[str] = None) -> go.Figure:
    """maps_spec as a Plotly figure."""
    return go.Figure(maps_spec(panels, height, shared, width, title), _validate=False)


def maps_spec(panels: Sequence[Panel], height: int, shared: bool = True, width: int = DESIGN_WIDTH,
              title: Optional[str] = None) -> dict:
    """The figure (a plain {data, layout} dict, as Plotly's JSON has it): the panels of one kind side by side, one map per objective, in one figure laid out for `width` px (the
    chart stretches to its column; wider is fine, narrower may crowd the cells).

    shared: one colour scale for every objective (one colour bar, reaching the largest |value| of them all), so
    that a colour means the same number in every map; else each its own (a colour bar under each map).
    The rows are labelled once, at the left, with what every objective agrees on (A, s_i); what differs between
    them is written right of each objective's map. The cells print their numbers (CELL_ROUNDING), and their tokens
    when there is room, when every number fits at 11 px or more (_cell_lines); else they show the clip marks."""
    n = len(panels)
    first = panels[0]
    kind, rows = first.kind, first.rows
    common = [key for key in first.parts[0] if all(p.parts[r].get(key) == first.parts[r].get(key)
                                                    for p in panels for r in range(len(rows)))] if rows else []
    left = [" · ".join([f"resp {i + 1}"] + [first.parts[r][key] for key in common]) for r, i in enumerate(rows)]
    right = [[" · ".join(v for key, v in p.parts[r].items() if key not in common) for r in range(len(rows))]
             for p in panels]
    # ------------------------------------------------------------------ geometry (px)
    title = title or KIND_TITLES[kind] + (f", {first.width} tokens per cell" if first.width > 1 else "")
    title = _wrap(title, TITLE_SIZE, width - 16)
    t = 12 + 21 * (title.count("<br>") + 1) + 24
    b = 24 + (0 if shared else 44)
    plot_h = max(height - t - b, 30)
    height = t + b + plot_h
    l_margin = round(max(max(text_px(s, TICK_SIZE) for s in left) + 18, text_px("token t", SMALL_SIZE) + 10))
    top_all = max(p.top for p in panels) or 1.0       # an all-zero map keeps a readable scale
    bar = _colorbar(kind, top_all, plot_h, horizontal=False) if shared else None
    r_margin = round(12 + 8 + 3 + max(text_px(s, SMALL_SIZE) for s in bar["ticktext"]) + 8) if shared else 10
    right_w = [max(text_px(s, SMALL_SIZE) for s in labels) + 8 if any(labels) else 0 for labels in right]
    P = max(width - l_margin - r_margin, 100)
    area = max((P - sum(right_w) - SUBPLOT_GAP * (n - 1)) / n, 40)
    cw, ch = area / max(len(first.x), 1), plot_h / max(len(rows), 1)
    size, lines = _cell_lines(panels, cw, ch)
    step = 0 if size is None else (size + 3) / ch            # a line's height, in rows
    offset = {line: (j - (len(lines) - 1) / 2) * step for j, line in enumerate(lines)}
    # ------------------------------------------------------------------ traces, axes, labels
    data, annotations, layout = [], [], {}
    x0 = 0.0
    ys = list(range(len(rows)))
    for k, p in enumerate(panels):
        obj = OBJECTIVES[p.name]
        ax = "" if k == 0 else str(k + 1)
        ca = "coloraxis" if shared or k == 0 else f"coloraxis{k + 1}"
        top = top_all if shared else p.top or 1.0
        d0, d1 = x0 / P, min((x0 + area) / P, 1.0)
        x0 += area + right_w[k] + SUBPLOT_GAP
        axes = dict(xaxis=f"x{ax}", yaxis=f"y{ax}", hoverinfo="skip", showlegend=False, mode="text")
        data.append(dict(type="heatmap", z=p.z, x=p.x, y=ys, customdata=p.customdata, hovertemplate=p.hovertemplate,
                         hoverongaps=False, coloraxis=ca, ygap=1,
                         xgap=1 if p.width == 1 and cw >= 6 else 0,   # a gap only between cells wide enough
                         xaxis=f"x{ax}", yaxis=f"y{ax}", name=obj.title, meta=p.name))
        if size is not None:        # every cell prints its number (and its clip mark)
            mark = {(x, r): sym for x, r, sym, _ in p.marks}
            cells = [(x, r, v) for r, row in enumerate(p.values) for x, v in zip(p.x, row) if v is not None]
            inline = "mark value" in lines
            text = [f"{mark[(x, r)]} {v}" if inline and (x, r) in mark else v for x, r, v in cells]
            ink = [_ink(p.z[r][x - 1] / top) for x, r, _ in cells]
            at = offset["mark value" if inline else "value"]
            data.append(dict(type="scatter", x=[c[0] for c in cells], y=[c[1] + at for c in cells], text=text,
                             textposition="middle center", textfont=dict(size=size, color=ink), **axes))
            if "mark" in lines:
                data.append(dict(type="scatter", x=[m[0] for m in p.marks], y=[m[1] + offset["mark"] for m in p.marks],
                                 text=[m[2] for m in p.marks], textposition="middle center",
                                 textfont=dict(size=size, color=[_ink(p.z[m[1]][m[0] - 1] / top) for m in p.marks]),
                                 **axes))
        elif p.marks:               # only the clip marks, where a token is clipped: marker shapes, not text (a
            #                         browser measures every text node it draws: hundreds of marks took longer
            #                         than the rest of the chart); `text` names each mark for readers of the spec
            #                         One trace per mark, its shape (and, every token in a cell, its size) one
            #                         value: per-point arrays made each redraw ~15 % slower.
            fixed = round(min(max(0.7 * min(cw, ch), 8), 14))
            for symbol in dict.fromkeys(m[2] for m in p.marks):
                these = [m for m in p.marks if m[2] == symbol]
                sizes = [round(0.75 * m[3], 1) for m in these] if p.width > 1 else round(0.75 * fixed, 1)
                data.append(dict(type="scatter", x=[m[0] for m in these], y=[m[1] for m in these],
                                 text=[symbol] * len(these), **axes | dict(mode="markers"),
                                 marker=dict(symbol=MARK_SHAPES[symbol], color="#222", size=sizes,
                                             line=dict(width=0.6, color="white"))))
        if "word" in lines:         # the tokens themselves (Plotly reads tags in text: escaped), and their glosses
            words, glosses = [], []
            for x, r, tok in p.words:
                shown = _cut(tok, size, cw - 6)
                if shown is not None:
                    words.append((x, r, html.escape(shown)))
                g = gloss(tok) if "gloss" in lines else None
                if g and text_px(g, size - 1) <= cw - 6:   # whole or not at all (the hover and the line under the
                    #                                        charts have every gloss)
                    glosses.append((x, r, html.escape(g)))
            for items, line, style in ((words, "word", {}), (glosses, "gloss", dict(family=FONT_FAMILY))):
                if items:
                    data.append(dict(type="scatter", x=[w[0] for w in items], y=[w[1] + offset[line] for w in items],
                                     text=[w[2] for w in items], textposition="middle center",
                                     textfont=dict(size=size - (line == "gloss"), **style,
                                                   color=[_ink(p.z[w[1]][w[0] - 1] / top) for w in items]), **axes))
        layout[f"xaxis{ax}"] = dict(domain=[d0, d1], anchor=f"y{ax}", range=list(p.x_range), showgrid=False,
                                    zeroline=False, fixedrange=True, automargin=False, ticks="",
                                    **_token_ticks(p.x_range[1] - 0.5, area), tickfont=dict(size=SMALL_SIZE))
        layout[f"yaxis{ax}"] = dict(domain=[0, 1], anchor=f"x{ax}", range=[len(rows) - 0.5, -0.5], showgrid=False,
                                    zeroline=False, fixedrange=True, ticks="", tickmode="array", tickvals=ys,
                                    ticktext=left, showticklabels=k == 0, automargin=k == 0, ticklabelstandoff=6,
                                    tickfont=dict(size=TICK_SIZE), **({"matches": "y"} if k else {}))
        annotations.append(dict(text=f"<b>{html.escape(obj.title)}</b>", x=d0, y=1, xref="paper", yref="paper",
                                xanchor="left", yanchor="bottom", yshift=3, showarrow=False,
                                font=dict(size=15, color=obj.color)))
        for r, label in enumerate(right[k]):
            if label:
                annotations.append(dict(text=label, x=d1, y=r, xref="paper", yref=f"y{ax}", xanchor="left",
                                        xshift=4, showarrow=False, font=dict(size=SMALL_SIZE, color="#333")))
        if not shared:
            layout[ca] = dict(colorscale=DIVERGING, cmin=-top, cmax=top, colorbar=_colorbar(
                kind, top, area, horizontal=True) | dict(x=(d0 + d1) / 2, xanchor="center", len=d1 - d0,
                                                           y=-26 / plot_h, yanchor="top"))
    if shared:
        layout["coloraxis"] = dict(colorscale=DIVERGING, cmin=-top_all, cmax=top_all,
                                   colorbar=bar | dict(x=1, xanchor="left", xpad=8, len=1, y=0.5, yanchor="middle"))
    annotations.append(dict(text="token t", x=0, y=0, xref="paper", yref="paper", xanchor="right", yanchor="top",
                            xshift=-6, yshift=-4, showarrow=False, font=dict(size=SMALL_SIZE, color="#555")))
    layout |= dict(title=dict(text=title, x=0, xref="container", xanchor="left", y=1, yref="container",
                              yanchor="top", pad=dict(t=10, l=4), font=dict(size=TITLE_SIZE, color="#222")),
                   height=height, margin=dict(l=l_margin, r=r_margin, t=t, b=b, pad=0),
                   font=FONT | dict(size=TICK_SIZE), plot_bgcolor="white", paper_bgcolor="white", showlegend=False,
                   hoverlabel=dict(font=dict(size=13, family=FONT_FAMILY)), annotations=annotations,
                   meta=dict(cells="marks" if size is None else "numbers"))   # what the cells show, for the page
    return dict(data=data, layout=layout)


def ratio_heatmap(res: ScenarioResult, height: int = 320, hovers: Optional[list] = None,
                  rows: Optional[range] = None) -> go.Figure:
    """Token ratios r_{i,t} (responses × tokens) on a log colour scale centred at 1; ▲ ▼ ✕ mark clip decisions.
    `rows`: only these responses (the colour scale stays the whole group's)."""
    return maps_figure([exact_panels(res, rows, hovers)[0]], height)


def grad_heatmap(res: ScenarioResult, height: int = 320, hovers: Optional[list] = None,
                 rows: Optional[range] = None) -> go.Figure:
    """Gradient weights ∂J/∂log π per token: blue raises the token's probability, red lowers it, white is 0."""
    return maps_figure([exact_panels(res, rows, hovers)[1]], height)


def heatmaps(res: ScenarioResult, height: int = 320, page: int = 0) -> tuple[go.Figure, go.Figure]:
    """The ratio and gradient-weight maps of one result (the responses of `page`, see heatmap_plan), sharing one
    computation of the hover texts (or of the bins)."""
    ratio, grad = objective_panels(res, page)
    return maps_figure([ratio], height), maps_figure([grad], height)


def comparison_maps(results: Sequence[ScenarioResult], height: int, page: int = 0, shared: bool = True,
                    width: int = DESIGN_WIDTH) -> tuple[go.Figure, go.Figure]:
    """The ratio maps of every result side by side in one figure, and their gradient maps in another."""
    panels = [objective_panels(res, page) for res in results]
    return (maps_figure([p[0] for p in panels], height, shared, width),
            maps_figure([p[1] for p in panels], height, shared, width))


def advantages_figure(panel: dict, height: int = 300) -> go.Figure:
    """Advantages of each response under each convention, grouped bars (same rewards, different rules)."""
    palette = ["#0072B2", "#56B4E9", "#E69F00", "#009E73"]
    x = [f"resp {i + 1} (R {r:g})" for i, r in enumerate(panel["rewards"])]
    data = [dict(type="bar", x=x, y=values, name=label, marker=dict(color=palette[k % 4]),
                 hovertemplate=label + "<br>%{x}: A = %{y:.10g}<extra></extra>")
            for k, (label, values) in enumerate(panel["advantages"].items())]
    return _figure(data, "Advantages under each convention", height, barmode="group",
                   legend=dict(orientation="h", y=-0.25), yaxis=dict(zeroline=True, zerolinecolor="#888"))


MAX_MARKDOWN_RESPONSES = 8   # a group of at most this many responses gets its advantages as a plain table


def advantages_table(panel: dict):
    """The numbers of advantages_figure as a table: a row for the rewards R and one per convention, a column per
    response (as the figure's x axis), to TABLE_FORMAT (4 decimals). Markdown for a group of at most
    MAX_MARKDOWN_RESPONSES responses (a plain table needs no data-grid in the browser: the Token Lab's first load
    got lighter); else a DataFrame, for a data-grid that scrolls sideways."""
    rewards, adv = panel["rewards"], panel["advantages"]
    rows = {"reward R": rewards, **adv}
    if len(rewards) > MAX_MARKDOWN_RESPONSES:
        import pandas as pd
        return pd.DataFrame(rows, index=[f"resp {i + 1}" for i in range(len(rewards))]).T
    lines = ["| | " + " | ".join(f"resp {i + 1}" for i in range(len(rewards))) + " |",
             "|---" * (len(rewards) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(TABLE_FORMAT % v for v in values) + " |" for label, values in rows.items()]
    return "\n".join(lines)


def clip_explorer_figure(curves: dict[str, ClipCurve], kind: str, adv_sign: float, x_title: str,
                         marker: Optional[tuple[float, str]] = None, height: int = 360) -> go.Figure:
    """kind 'value' (the term with |A| = 1) or 'grad' (∂term/∂log π). Each objective's zero-gradient ranges are
    drawn as a strip in its colour along the top of the plot; later curves are drawn thinner so that curves which
    coincide stay visible."""
    data, shapes, notes = [], [], []
    strip = 0.035
    for k, (name, c) in enumerate(curves.items()):
        y = c.value if kind == "value" else c.grad
        title = OBJECTIVES[name].title
        if y is not None:
            data.append(dict(type="scatter", x=c.ratio, y=y, mode="lines", name=title,
                             line=dict(color=OBJECTIVES[name].color, width=max(4.5 - 0.7 * k, 1.5), dash=OBJECTIVES[name].dash),
                             hovertemplate=title + ": x = %{x:.6g}, y = %{y:.6g}<extra></extra>"))
        for x0, x1 in c.zero_regions:
            shapes.append(dict(type="rect", xref="x", yref="paper", x0=x0, x1=x1, y0=1 - (k + 1) * strip,
                               y1=1 - k * strip, line=dict(width=0), fillcolor=OBJECTIVES[name].color, opacity=0.7))
    if marker is not None:
        x, label = marker
        shapes.append(dict(type="line", xref="x", yref="paper", x0=x, x1=x, y0=0, y1=1,
                           line=dict(color="#444", dash="dot", width=1.5)))
        notes.append(dict(x=x, y=1, xref="x", yref="paper", text=label, showarrow=False, yanchor="bottom",
                          font=dict(size=11)))
    what = f"per-token term (A = {adv_sign:+g})" if kind == "value" else "gradient weight ∂term/∂log π"
    return _figure(data, f"{what}; strips on top: gradient exactly 0", height, shapes=shapes, annotations=notes,
                   xaxis=dict(title=dict(text=x_title)),
                   yaxis=dict(title=dict(text=what), zeroline=True, zerolinecolor="#bbb"),
                   legend=dict(orientation="h", y=-0.25))


def lines_figure(x: list, series: dict[str, list], title: str, x_title: str, y_title: str, log_y: bool = False,
                 colors: Optional[dict[str, str]] = None, height: int = 340, band: Optional[tuple] = None,
                 dashes: Optional[dict[str, str]] = None, log_x: bool = False) -> go.Figure:
    """Several named lines over the same x (length plots). `band` = (lower, upper, label) shades a range."""
    data = []
    if band is not None:
        lo, hi, label = band
        data.append(dict(type="scatter", x=x, y=hi, mode="lines", line=dict(width=0), showlegend=False,
                         hoverinfo="skip"))
        data.append(dict(type="scatter", x=x, y=lo, mode="lines", line=dict(width=0), fill="tonexty",
                         fillcolor="rgba(213,94,0,0.15)", name=label, hoverinfo="skip"))
    for name, y in series.items():
        line = dict(width=3 if not dashes or dashes.get(name, "solid") == "solid" else 2.5) \
            | ({"color": colors[name]} if colors and name in colors else {}) \
            | ({"dash": dashes[name]} if dashes and name in dashes else {})
        data.append(dict(type="scatter", x=x, y=y, mode="lines", name=name, line=line,
                         hovertemplate=name + ": %{y:.6g} at %{x}<extra></extra>"))
    ys = [v for y in series.values() for v in y] + ([v for v in band[0] + band[1]] if band is not None else [])
    counts = {"exponentformat": "none", "separatethousands": True}     # lengths: 20,000, not 2e+4 or 0.5e+4
    return _figure(data, title, height, xaxis=dict(title=dict(text=x_title), **(log_ticks(x) if log_x else counts)),
                   yaxis=dict(title=dict(text=y_title), **(log_ticks(ys) if log_y else {})),
                   legend=dict(orientation="h", y=-0.3))
