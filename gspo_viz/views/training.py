"""The Train page's figure: training curves of several runs, one panel per metric. No Streamlit."""
from __future__ import annotations

import textwrap

import plotly.graph_objects as go

from .plots import FONT, log_ticks

HELP_CHARS = 46          # a help line wraps at this many characters: a panel is a third of the chart, about 260 px
HELP_LINES = 3           # at 1280 px with the sidebar, where 11 px type fits about 48 characters
TITLE_PX, HELP_PX = 20, 14   # the height of a panel's title and of one help line under it


def help_lines(text: str, width: int = HELP_CHARS) -> list[str]:
    """A panel's help text in lines of at most `width` characters (at most HELP_LINES; a longer text is cut with …)."""
    lines = textwrap.wrap(text, width) or [""]
    if len(lines) > HELP_LINES:
        lines = lines[:HELP_LINES - 1] + [textwrap.shorten(" ".join(lines[HELP_LINES - 1:]), width, placeholder=" …")]
    return lines


def training_figure(panels: list[tuple], colors: dict[str, str], dashes: dict[str, str], columns: int = 3,
                    row_height: int = 250) -> go.Figure:
    """Training curves in one figure, one panel per metric: panels = [(title, log_y, {run label: (steps, values)})
    or (title, log_y, series, help)], where help is a line under the title saying what the curve measures.
    Every metric is >= 0, so linear axes start at 0; log axes print plain powers of ten (1e-6), not SI prefixes
    (Plotly's default writes 1e-10 as 100p, and 1e10 as 10B).

    One figure (not one per metric), so the browser redraws a single chart per refresh. Lines are coloured by
    objective; a run's lines share a legend entry, so clicking it hides that run in every panel.
    """
    rows = -(-len(panels) // columns)
    helps = [help_lines(p[3]) if len(p) > 3 and p[3] else [] for p in panels]
    header_px = TITLE_PX + HELP_PX * max(map(len, helps), default=0) + (4 if any(helps) else 0)
    plot_px = rows * (row_height + header_px - TITLE_PX)    # each row grows by its help lines
    gap_x, gap_y = 0.06, 40 / plot_px
    data, annotations, layout = [], [], {}
    for n, (title, log_y, series, *_) in enumerate(panels):
        r, c = divmod(n, columns)
        ax = "" if n == 0 else str(n + 1)
        x0 = c / columns + (gap_x / 2 if c else 0)
        x1 = (c + 1) / columns - (gap_x / 2 if c < columns - 1 else 0)
        y1 = 1 - r / rows - (gap_y / 2 if r else 0)
        y0 = 1 - (r + 1) / rows + (gap_y / 2 if r < rows - 1 else 0)
        layout[f"xaxis{ax}"] = dict(domain=[x0, x1], anchor=f"y{ax}", gridcolor="#eee", automargin=True,
                                    title=dict(text="step", standoff=2, font=dict(size=11)))
        values = [v for _, ys in series.values() for v in ys]
        scale = ({"exponentformat": "e", **log_ticks(values)} if log_y else
                 {"type": "linear", "rangemode": "nonnegative"})     # every metric is >= 0
        layout[f"yaxis{ax}"] = dict(domain=[y0, y1 - header_px / plot_px], anchor=f"x{ax}", gridcolor="#eee",
                                    automargin=True, **scale)
        annotations.append(dict(text=f"<b>{title}</b>", x=x0, y=y1, xref="paper", yref="paper", xanchor="left",
                                yanchor="top", showarrow=False, font=dict(size=13, color="#222")))
        if helps[n]:
            annotations.append(dict(text="<br>".join(helps[n]), x=x0, y=y1 - TITLE_PX / plot_px, xref="paper",
                                    yref="paper", xanchor="left", yanchor="top", align="left", showarrow=False,
                                    font=dict(size=11, color="#666")))
        for label, (x, y) in series.items():
            data.append(dict(type="scatter", x=x, y=y, mode="lines", name=label, legendgroup=label,
                             showlegend=n == 0, xaxis=f"x{ax}", yaxis=f"y{ax}",
                             line=dict(color=colors.get(label), dash=dashes.get(label, "solid"), width=2),
                             hovertemplate=f"{label}<br>{title}: %{{y:.4g}} at step %{{x}}<extra></extra>"))
    layout = dict(height=plot_px + 40, margin=dict(l=10, r=10, t=30, b=10), font=FONT,
                  plot_bgcolor="white", paper_bgcolor="white", annotations=annotations,
                  legend=dict(orientation="h", x=0, y=1.0, yanchor="bottom"), hovermode="closest") | layout
    return go.Figure(dict(data=data, layout=layout), _validate=False)
