"""The Train page's figure: training curves of several runs, one panel per metric. No Streamlit."""
from __future__ import annotations

import plotly.graph_objects as go

from .plots import FONT


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
