"""Plotly figure builders: results in, figures out. No Streamlit; the pages only place these figures."""
from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Optional

import plotly.graph_objects as go

from ..core.curves import ClipCurve
from ..core.objectives import OBJECTIVES
from ..core.objectives.base import CLIP_NAMES
from ..scenarios.run import ScenarioResult
from .steps import hover_texts
from .style import CLIP_SYMBOLS

# ColorBrewer RdBu end points (colour-blind safe): blue = above (ratio > 1, a gradient that raises), red = below
DIVERGING = [[0.0, "#b2182b"], [0.25, "#ef8a62"], [0.5, "#f7f7f7"], [0.75, "#67a9cf"], [1.0, "#2166ac"]]
CELL_TEXT_MAX_TOKENS = 10  # wider groups show only the clip symbols in the cells
RATIO_TICKS = [0.25, 0.5, 1.0, 2.0, 4.0]
FONT = dict(family="Source Sans Pro, sans-serif", size=12)


def _figure(data: list[dict], title: str, height: int, color: Optional[str] = None, **layout) -> go.Figure:
    """A figure from plain specs, unvalidated for speed (tests validate every builder's output once)."""
    base = dict(title=dict(text=title, font=dict(color=color or "#222", size=14), x=0.01, xanchor="left"),
                height=height, margin=dict(l=10, r=10, t=40, b=10), font=FONT, plot_bgcolor="white",
                paper_bgcolor="white")
    layout = base | layout
    for axis in ("xaxis", "yaxis"):  # room for tick labels (the pages draw without Streamlit's theme: faster)
        layout[axis] = dict(automargin=True, gridcolor="#eee") | layout.get(axis, {})
    return go.Figure(dict(data=data, layout=layout), _validate=False)


def _row_labels(res: ScenarioResult) -> list[str]:
    ex = res.explanation
    adv = res.advantages.tolist()
    labels = []
    for i in range(len(res.scenario.responses)):
        a = adv[i] if not isinstance(adv[i], list) else sum(adv[i]) / max(len(adv[i]), 1)
        label = f"resp {i + 1} · A {a:+.3f}"
        if ex.seq_ratio is not None:
            label += f" · s {float(ex.seq_ratio[i]):.4f}"
        if i in res.masked:
            label += " · masked"
        labels.append(label)
    return labels


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


def heatmap_height(rows: int) -> int:
    """A heatmap's height in pixels for `rows` responses."""
    return max(230, 120 + 26 * rows)


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


def _cells(res: ScenarioResult, values, hovers, rows: range) -> tuple[list, list, list]:
    """z (None on padding), hover text, and the clip-symbol trace's points (x, y, symbol), for `rows`."""
    ex = res.explanation
    clip = ex.clip.tolist()
    labels = _row_labels(res)
    z, hover, marks = [], [], ([], [], [])
    T = ex.mask.shape[1]
    for k, i in enumerate(rows):
        L = len(res.scenario.responses[i].tokens)
        z.append([values[i][t] if t < L else None for t in range(T)])
        hover.append([hovers[k][t] if t < L else "" for t in range(T)])
        for t in range(L):
            symbol = CLIP_SYMBOLS[CLIP_NAMES[clip[i][t]]]
            if symbol:
                marks[0].append(str(t + 1))
                marks[1].append(labels[i])
                marks[2].append(symbol)
    return z, hover, marks


def _heatmap(res: ScenarioResult, values, title: str, colorbar: dict, height: int, top: float,
             hovers: Optional[list] = None, rows: Optional[range] = None) -> go.Figure:
    """One cell per token of the responses in `rows` (all by default); hovers: one list per row of `rows`."""
    rows = range(len(res.scenario.responses)) if rows is None else rows
    z, hover, (mx, my, msym) = _cells(res, values, hovers if hovers is not None else hover_texts(res, rows), rows)
    x = [str(t + 1) for t in range(len(z[0]))]
    labels = _row_labels(res)
    trace = dict(type="heatmap", z=z, x=x, y=[labels[i] for i in rows], customdata=hover,
                 hovertemplate="%{customdata}<extra></extra>", colorscale=DIVERGING, zmid=0, zmin=-top, zmax=top,
                 xgap=1, ygap=1, colorbar=dict(len=0.9, thickness=10) | colorbar)
    # clip symbols only where a token is clipped (a text node per clipped cell, not per cell)
    marks = dict(type="scatter", x=mx, y=my, text=msym, mode="text", textfont=dict(size=10, color="#222"),
                 hoverinfo="skip", showlegend=False)
    words = []
    if len(x) <= CELL_TEXT_MAX_TOKENS:  # short responses: the tokens themselves, below the symbols
        for i in rows:
            for t, tok in enumerate(res.scenario.responses[i].tokens):
                words.append((x[t], labels[i], html.escape(tok[:6])))   # Plotly reads tags in text
        marks["textposition"] = "top center"
    data = [trace, marks] if mx else [trace]
    if words:
        data.append(dict(type="scatter", x=[w[0] for w in words], y=[w[1] for w in words],
                         text=[w[2] for w in words], mode="text", textfont=dict(size=9, color="#333"),
                         textposition="bottom center", hoverinfo="skip", showlegend=False))
    return _figure(data, title, height, OBJECTIVES[res.explanation.objective].color,
                   yaxis=dict(autorange="reversed"), xaxis=dict(title=dict(text="token t"), showgrid=False))


def _ratio_scale(top: float) -> dict:
    ticks = RATIO_TICKS if top > math.log(2) else [0.8, 0.9, 1.0, 1.1, 1.25]
    return dict(title=dict(text="ratio"), tickvals=[math.log(v) for v in ticks], ticktext=[str(v) for v in ticks])


def ratio_heatmap(res: ScenarioResult, height: int = 320, hovers: Optional[list] = None,
                  rows: Optional[range] = None) -> go.Figure:
    """Token ratios r_{i,t} (responses × tokens) on a log colour scale centred at 1; ▲ ▼ ✕ mark clip decisions.
    `rows`: only these responses (the colour scale stays the whole group's)."""
    ex = res.explanation
    logr = [[math.log(x) for x in row] for row in ex.token_ratio.tolist()]
    top = max([abs(v) for i, row in enumerate(logr) for v in row[:len(res.scenario.responses[i].tokens)]]
              + [math.log(1.25)])
    return _heatmap(res, logr, f"{OBJECTIVES[ex.objective].title}: token ratio r = π_θ/π_old", _ratio_scale(top),
                    height, top, hovers, rows)


def grad_heatmap(res: ScenarioResult, height: int = 320, hovers: Optional[list] = None,
                 rows: Optional[range] = None) -> go.Figure:
    """Gradient weights ∂J/∂log π per token: blue raises the token's probability, red lowers it, white is 0."""
    ex = res.explanation
    g = ex.grad_weight.tolist()
    top = float(ex.grad_weight.abs().max()) or 1.0  # an all-zero map keeps a readable scale
    colorbar = dict(title=dict(text="∂J/∂log π"), exponentformat="e")
    return _heatmap(res, g, f"{OBJECTIVES[ex.objective].title}: gradient weight ∂J/∂log π_θ", colorbar, height, top,
                    hovers, rows)


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


def _binned_heatmap(res: ScenarioResult, bins: TokenBins, rows: range, kind: str, height: int) -> go.Figure:
    """kind 'ratio' (geometric mean of r per cell) or 'grad' (mean ∂J/∂log π per token of the cell)."""
    ex = res.explanation
    obj = OBJECTIVES[ex.objective]
    w = bins.width
    B = len(bins.count[0])
    labels = _row_labels(res)
    centres = [k * w + (w + 1) / 2 for k in range(B)]
    marked = [code for code in bins.clips if CLIP_SYMBOLS[CLIP_NAMES[code]] and CLIP_NAMES[code] in obj.marks]
    if kind == "ratio":
        mean, low, high = bins.logr_mean, bins.logr_min, bins.logr_max

        def shown(i, k):
            return _sig(math.exp(low[i][k])), _sig(math.exp(mean[i][k])), _sig(math.exp(high[i][k]))
        stats = ("r = π_θ/π_old: min %{customdata[4]:.6g}, geometric mean %{customdata[5]:.6g}, "
                 "max %{customdata[6]:.6g}")
        title = f"{obj.title}: token ratio r, {w} tokens per cell"
    else:
        mean, low, high, total = bins.grad_mean, bins.grad_min, bins.grad_max, bins.grad_sum

        def shown(i, k):
            return _sig(low[i][k]), _sig(mean[i][k]), _sig(high[i][k]), _sig(total[i][k])
        stats = ("∂J/∂log π: min %{customdata[4]:.6g}, mean %{customdata[5]:.6g}, max %{customdata[6]:.6g}, "
                 "sum %{customdata[7]:.6g}")
        title = f"{obj.title}: gradient weight ∂J/∂log π_θ, {w} tokens per cell"
    n_stats = 3 if kind == "ratio" else 4
    z, custom, mx, my, msym, msize = [], [], [], [], [], []
    for i in rows:
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
                mx.append(centres[k])
                my.append(labels[i])
                msym.append(CLIP_SYMBOLS[CLIP_NAMES[top_code]])
                msize.append(round(2 + 8 * sum(counts) / n, 1))     # 6 px at half, 10 px when all are
        z.append(zr)
        custom.append(cr)
    values = [v for i in range(len(bins.count)) for v, n in zip(mean[i], bins.count[i]) if n]
    if kind == "ratio":
        top = max([abs(v) for v in values] + [math.log(1.25)])
        colorbar = _ratio_scale(top) | dict(title=dict(text="ratio<br>(geo. mean)"))
    else:
        top = max(abs(v) for v in values) or 1.0
        colorbar = dict(title=dict(text="∂J/∂log π<br>(mean)"), exponentformat="e")
    head = "<b>response %{customdata[0]}, tokens %{customdata[1]}–%{customdata[2]}</b> (%{customdata[3]} tokens)"
    clip_line = ""
    if marked:
        at = 4 + n_stats
        each = ", ".join(f"{CLIP_SYMBOLS[CLIP_NAMES[c]]} %{{customdata[{at + 1 + j}]}}" for j, c in enumerate(marked))
        clip_line = f"<br>clipped: %{{customdata[{at}]}} of %{{customdata[3]}} ({each})"
    trace = dict(type="heatmap", z=z, x=centres, y=[labels[i] for i in rows], customdata=custom,
                 hovertemplate=f"{head}<br>{stats}{clip_line}<extra></extra>", hoverongaps=False,
                 colorscale=DIVERGING, zmid=0, zmin=-top, zmax=top, xgap=0, ygap=1,
                 colorbar=dict(len=0.9, thickness=10) | colorbar)
    data = [trace]
    if mx:
        data.append(dict(type="scatter", x=mx, y=my, text=msym, mode="text",
                         textfont=dict(size=msize, color="#222"), hoverinfo="skip", showlegend=False))
    return _figure(data, title, height, obj.color, yaxis=dict(autorange="reversed"),
                   xaxis=dict(title=dict(text=f"token t ({w} per cell)"), showgrid=False, zeroline=False,
                              range=[0.5, B * w + 0.5]))


def heatmaps(res: ScenarioResult, height: int = 320, page: int = 0) -> tuple[go.Figure, go.Figure]:
    """The ratio and gradient-weight heatmaps of one result (the responses of `page`, see heatmap_plan), sharing
    one computation of the hover texts (or of the bins)."""
    plan = heatmap_plan([len(r.tokens) for r in res.scenario.responses])
    rows = plan.page_rows(page)
    if not plan.binned:
        hovers = hover_texts(res, rows)
        return ratio_heatmap(res, height, hovers, rows), grad_heatmap(res, height, hovers, rows)
    bins = token_bins(res, plan.width)
    return _binned_heatmap(res, bins, rows, "ratio", height), _binned_heatmap(res, bins, rows, "grad", height)


def advantages_figure(panel: dict, height: int = 300) -> go.Figure:
    """Advantages of each response under each convention, grouped bars (same rewards, different rules)."""
    palette = ["#0072B2", "#56B4E9", "#E69F00", "#009E73"]
    x = [f"resp {i + 1} (R {r:g})" for i, r in enumerate(panel["rewards"])]
    data = [dict(type="bar", x=x, y=values, name=label, marker=dict(color=palette[k % 4]),
                 hovertemplate=label + "<br>%{x}: A = %{y:.10g}<extra></extra>")
            for k, (label, values) in enumerate(panel["advantages"].items())]
    return _figure(data, "Advantages under each convention", height, barmode="group",
                   legend=dict(orientation="h", y=-0.25), yaxis=dict(zeroline=True, zerolinecolor="#888"))


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
    return _figure(data, title, height, xaxis=dict(title=dict(text=x_title), type="log" if log_x else "linear"),
                   yaxis=dict(title=dict(text=y_title), type="log" if log_y else "linear"),
                   legend=dict(orientation="h", y=-0.3))
