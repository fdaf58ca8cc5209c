"""One colour per objective (colour-blind safe: Okabe–Ito, plus Tol's wine and olive), symbols and number formats."""
from __future__ import annotations

COLORS = {
    "grpo": "#0072B2",        # blue
    "gspo": "#D55E00",        # vermillion
    "dual_clip": "#009E73",   # bluish green
    "dapo": "#CC79A7",        # reddish purple
    "dr_grpo": "#56B4E9",     # sky blue
    "gspo_token": "#E69F00",  # orange
    "cispo": "#882255",       # wine
    "gmpo": "#000000",        # black
    "sapo": "#999933",        # olive
}
CLIP_SYMBOLS = {"none": "", "upper": "▲", "lower": "▼", "dual": "✕"}
CLIP_MEANING = {
    "upper": "▲ upper: A > 0 and the ratio is above 1 + ε_high (gradient 0; CISPO: weight capped)",
    "lower": "▼ lower: A < 0 and the ratio is below 1 − ε_low (gradient 0; CISPO: weight capped)",
    "dual": "✕ dual: A < 0 and the ratio is above c (Dual-Clip floor c·A, gradient 0)",
}
DECIMALS = 4  # tables show 4 decimals everywhere; hovers and downloads carry full precision
TABLE_FORMAT = f"%.{DECIMALS}f"


def fmt(x: float) -> str:
    """The table rounding, for prose: 4 decimals, trailing zeros dropped (1.2000 → 1.2, 0.00012 → 0.0001)."""
    s = f"{x:.{DECIMALS}f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s

# Line styles, so that curves which coincide (GRPO and Dual-Clip for A > 0) stay visible.
DASHES = {"grpo": "solid", "dual_clip": "dash", "dapo": "dot", "dr_grpo": "dashdot", "gspo": "solid",
          "gspo_token": "dash", "cispo": "longdash", "gmpo": "longdashdot", "sapo": "solid"}
