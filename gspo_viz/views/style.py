"""Symbols, the clip legend and number formats shared by the views (each objective's colour and dash live in its own
definition, core/objectives/<name>.py)."""
from __future__ import annotations

CLIP_SYMBOLS = {"none": "", "upper": "▲", "lower": "▼", "dual": "✕"}
DECIMALS = 4  # tables show 4 decimals everywhere; hovers and downloads carry full precision
TABLE_FORMAT = f"%.{DECIMALS}f"


def fmt(x: float) -> str:
    """The table rounding, for prose: 4 decimals, trailing zeros dropped (1.2000 → 1.2, 0.00012 → 0.0001)."""
    s = f"{x:.{DECIMALS}f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def bounds(cfg) -> dict:
    """The numbers an objective's reasons quote ({hi}, {lo}, {c}, {eps}), rounded as the tables are."""
    def f(x):
        return "" if x is None else fmt(x)
    return {"hi": f(None if cfg.eps_high is None else 1 + cfg.eps_high),
            "lo": f(None if cfg.eps_low is None else 1 - cfg.eps_low),
            "c": f(cfg.dual_clip_c), "eps": f(cfg.gmpo_eps)}


def clip_legend(names: list[str]) -> list[str]:
    """What each mark means, for each of these objectives (each objective says what its own marks mean)."""
    from ..core.objectives import OBJECTIVES
    lines = []
    for name in names:
        obj = OBJECTIVES[name]
        if obj.marks:
            lines.append(f"{obj.title}: " + "; ".join(obj.marks.values()) + ".")
        else:
            lines.append(f"{obj.title}: no marks (nothing is clipped; its soft gate {obj.gate_name} scales every "
                         f"token).")
    return lines
