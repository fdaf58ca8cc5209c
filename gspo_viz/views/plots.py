"""Plotly figure builders: results in, figures out. No Streamlit; the pages only place these figures."""
from __future__ import annotations

import math
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


def _cells(res: ScenarioResult, values, hovers) -> tuple[list, list, list]:
    """z (None on padding), hover text, and the clip-symbol trace's points (x, y, symbol)."""
    ex = res.explanation
    clip = ex.clip.tolist()
    labels = _row_labels(res)
    z, hover, marks = [], [], ([], [], [])
    T = ex.mask.shape[1]
    for i, resp in enumerate(res.scenario.responses):
        L = len(resp.tokens)
        z.append([values[i][t] if t < L else None for t in range(T)])
        hover.append([hovers[i][t] if t < L else "" for t in range(T)])
        for t in range(L):
            symbol = CLIP_SYMBOLS[CLIP_NAMES[clip[i][t]]]
            if symbol:
                marks[0].append(str(t + 1))
                marks[1].append(labels[i])
                marks[2].append(symbol)
    return z, hover, marks


def _heatmap(res: ScenarioResult, values, title: str, colorbar: dict, height: int, top: float,
             hovers: Optional[list] = None) -> go.Figure:
    z, hover, (mx, my, msym) = _cells(res, values, hovers if hovers is not None else hover_texts(res))
    x = [str(t + 1) for t in range(len(z[0]))]
    trace = dict(type="heatmap", z=z, x=x, y=_row_labels(res), customdata=hover,
                 hovertemplate="%{customdata}<extra></extra>", colorscale=DIVERGING, zmid=0, zmin=-top, zmax=top,
                 xgap=1, ygap=1, colorbar=dict(len=0.9, thickness=10) | colorbar)
    # clip symbols only where a token is clipped (a text node per clipped cell, not per cell)
    marks = dict(type="scatter", x=mx, y=my, text=msym, mode="text", textfont=dict(size=10, color="#222"),
                 hoverinfo="skip", showlegend=False)
    words = []
    if len(x) <= CELL_TEXT_MAX_TOKENS:  # short responses: the tokens themselves, below the symbols
        labels = _row_labels(res)
        for i, resp in enumerate(res.scenario.responses):
            for t, tok in enumerate(resp.tokens):
                words.append((x[t], labels[i], tok[:6]))
        marks["textposition"] = "top center"
    data = [trace, marks] if mx else [trace]
    if words:
        data.append(dict(type="scatter", x=[w[0] for w in words], y=[w[1] for w in words],
                         text=[w[2] for w in words], mode="text", textfont=dict(size=9, color="#333"),
                         textposition="bottom center", hoverinfo="skip", showlegend=False))
    return _figure(data, title, height, OBJECTIVES[res.explanation.objective].color,
                   yaxis=dict(autorange="reversed"), xaxis=dict(title=dict(text="token t"), showgrid=False))


def ratio_heatmap(res: ScenarioResult, height: int = 320, hovers: Optional[list] = None) -> go.Figure:
    """Token ratios r_{i,t} (responses × tokens) on a log colour scale centred at 1; ▲ ▼ ✕ mark clip decisions."""
    ex = res.explanation
    logr = [[math.log(x) for x in row] for row in ex.token_ratio.tolist()]
    top = max([abs(v) for i, row in enumerate(logr) for v in row[:len(res.scenario.responses[i].tokens)]]
              + [math.log(1.25)])
    ticks = RATIO_TICKS if top > math.log(2) else [0.8, 0.9, 1.0, 1.1, 1.25]
    colorbar = dict(title=dict(text="ratio"), tickvals=[math.log(v) for v in ticks], ticktext=[str(v) for v in ticks])
    return _heatmap(res, logr, f"{OBJECTIVES[ex.objective].title}: token ratio r = π_θ/π_old", colorbar, height, top,
                    hovers)


def grad_heatmap(res: ScenarioResult, height: int = 320, hovers: Optional[list] = None) -> go.Figure:
    """Gradient weights ∂J/∂log π_θ per token: blue raises the token's probability, red lowers it, white is 0."""
    ex = res.explanation
    g = ex.grad_weight.tolist()
    top = float(ex.grad_weight.abs().max()) or 1.0  # an all-zero map keeps a readable scale
    colorbar = dict(title=dict(text="∂J/∂log π"), exponentformat="e")
    return _heatmap(res, g, f"{OBJECTIVES[ex.objective].title}: gradient weight ∂J/∂log π_θ", colorbar, height, top,
                    hovers)


def heatmaps(res: ScenarioResult, height: int = 320) -> tuple[go.Figure, go.Figure]:
    """The ratio and gradient-weight heatmaps of one result, sharing one computation of the hover texts."""
    hovers = hover_texts(res)
    return ratio_heatmap(res, height, hovers), grad_heatmap(res, height, hovers)


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


def training_figure(panels: list[tuple[str, bool, dict[str, tuple[list, list]]]], colors: dict[str, str],
                    dashes: dict[str, str], columns: int = 3, row_height: int = 250) -> go.Figure:
    """Training curves in one figure, one panel per metric: panels = [(title, log_y, {run label: (steps, values)})].
    Every metric is >= 0, so linear axes start at 0.

    One figure (not one per metric), so the browser redraws a single chart per refresh. Lines are coloured by
    objective; a run's lines share a legend entry, so clicking it hides that run in every panel.
    """
    rows = -(-len(panels) // columns)
    gap_x, gap_y = 0.06, 0.16 / max(rows, 1)
    data, annotations, layout = [], [], {}
    for n, (title, log_y, series) in enumerate(panels):
        r, c = divmod(n, columns)
        ax = "" if n == 0 else str(n + 1)
        x0 = c / columns + (gap_x / 2 if c else 0)
        x1 = (c + 1) / columns - (gap_x / 2 if c < columns - 1 else 0)
        y1 = 1 - r / rows - (gap_y / 2 if r else 0)
        y0 = 1 - (r + 1) / rows + (gap_y / 2 if r < rows - 1 else 0)
        layout[f"xaxis{ax}"] = dict(domain=[x0, x1], anchor=f"y{ax}", gridcolor="#eee", automargin=True,
                                    title=dict(text="step", standoff=2, font=dict(size=11)))
        layout[f"yaxis{ax}"] = dict(domain=[y0, y1 - 0.05], anchor=f"x{ax}", gridcolor="#eee", automargin=True,
                                    type="log" if log_y else "linear",
                                    **({} if log_y else {"rangemode": "nonnegative"}))   # every metric is >= 0
        annotations.append(dict(text=f"<b>{title}</b>", x=x0, y=y1, xref="paper", yref="paper", xanchor="left",
                                yanchor="top", showarrow=False, font=dict(size=13, color="#222")))
        for label, (x, y) in series.items():
            data.append(dict(type="scatter", x=x, y=y, mode="lines", name=label, legendgroup=label,
                             showlegend=n == 0, xaxis=f"x{ax}", yaxis=f"y{ax}",
                             line=dict(color=colors.get(label), dash=dashes.get(label, "solid"), width=2),
                             hovertemplate=f"{label}<br>{title}: %{{y:.4g}} at step %{{x}}<extra></extra>"))
    layout = dict(height=rows * row_height + 40, margin=dict(l=10, r=10, t=30, b=10), font=FONT,
                  plot_bgcolor="white", paper_bgcolor="white", annotations=annotations,
                  legend=dict(orientation="h", x=0, y=1.0, yanchor="bottom"), hovermode="closest") | layout
    return go.Figure(dict(data=data, layout=layout), _validate=False)
