"""Symbols, fonts, the tokens' English glosses, the clip legend and number formats shared by the views (each
objective's colour and dash live in its own definition, core/objectives/<name>.py)."""
from __future__ import annotations

import html
import unicodedata
from typing import Optional

# The charts' fonts: Streamlit's own Source Sans (served with the app), then Noto Sans CJK for Chinese and Japanese
# tokens (the seed examples'), which the viewer's system must have (Debian/Ubuntu: apt-get install fonts-noto-cjk);
# without it a CJK token shows as boxes, and its English gloss (GLOSS) keeps it readable.
FONT_FAMILY = ("'Source Sans', 'Source Sans Pro', 'Noto Sans CJK SC', 'Noto Sans CJK JP', 'Noto Sans SC', "
               "'Noto Sans', sans-serif")

# English glosses of the seed examples' Chinese tokens (the prompt is 推荐一部电影, "recommend a movie"): shown beside
# the token in the heatmaps' cells when there is room, in their hovers, and in a line under the charts.
GLOSS = {
    "《": "«", "》": "»", "，": ",", "肖申克": "Shawshank", "的救赎》": "Redemption»", "《肖申克》": "«Shawshank»",
    "《肖申克的救赎》": "«The Shawshank Redemption»", "很好看": "very good", "还行": "it's OK",
    "它探讨了": "it explores", "希望": "hope", "与自由": "and freedom", "非常经典": "a true classic",
}

CLIP_SYMBOLS = {"none": "", "upper": "▲", "lower": "▼", "dual": "✕"}
DECIMALS = 4  # tables show 4 decimals everywhere; hovers and downloads carry full precision
TABLE_FORMAT = f"%.{DECIMALS}f"


def fmt(x: float) -> str:
    """The table rounding, for prose: 4 decimals, trailing zeros dropped (1.2000 → 1.2, 0.00012 → 0.0001)."""
    s = f"{x:.{DECIMALS}f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def gloss(token: str) -> Optional[str]:
    """The token's English gloss (GLOSS), or None when it has none."""
    return GLOSS.get(token)


def text_px(text: str, size: float) -> float:
    """An estimate of the width in pixels of `text` (plain, no tags) at font `size`, a little above Source Sans's
    (digits 0.5 em, letters about 0.5, full-width characters 1 em; the clip marks, from a fallback font, 0.9)."""
    em = 0.0
    for c in html.unescape(text):
        if c.isdigit():
            em += 0.52
        elif c in ".,:;' ":
            em += 0.28
        elif c in "▲▼✕":
            em += 0.9
        elif unicodedata.east_asian_width(c) in "WF":
            em += 1.0
        else:
            em += 0.6
    return size * em


def bounds(cfg) -> dict:
    """The numbers an objective's reasons quote ({hi}, {lo}, {eh}, {el}, {c}, {eps}), rounded as the tables are."""
    def f(x):
        return "" if x is None else fmt(x)
    return {"hi": f(None if cfg.eps_high is None else 1 + cfg.eps_high),
            "lo": f(None if cfg.eps_low is None else 1 - cfg.eps_low),
            "eh": f(cfg.eps_high), "el": f(cfg.eps_low),
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
            lines.append(f"{obj.title}: no marks (nothing is clipped; "
                         + (obj.scales or f"its soft gate {obj.gate_name} scales every token") + ").")
    return lines
