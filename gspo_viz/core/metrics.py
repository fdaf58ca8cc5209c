"""The metrics shown beside a loss, each defined once: the explain path and the toy's trainer both call these."""
from __future__ import annotations

from torch import Tensor

from .advantages import kl_estimate
from .objectives.base import CLIP_NAMES, NONE


def clip_counts(codes: Tensor, valid: Tensor) -> dict:
    """Tokens that take part, and how many of them got each clip decision (codes, valid: (G, T))."""
    picked = codes[valid]
    return {"tokens": int(valid.sum())} | {name: int((picked == k).sum()) for k, name in enumerate(CLIP_NAMES)}


def clip_fractions(codes: Tensor, valid: Tensor) -> dict:
    """clip_fraction (any mark), and per mark, over the tokens that take part (0 when none does)."""
    c = clip_counts(codes, valid)
    n = max(c["tokens"], 1)
    return {"clip_fraction": (c["tokens"] - c["none"]) / n if c["tokens"] else 0.0,
            "clip_fraction_upper": c["upper"] / n, "clip_fraction_lower": c["lower"] / n,
            "clip_fraction_dual": c["dual"] / n}


def seq_clip_fraction(codes: Tensor, valid: Tensor) -> float:
    """Responses with at least one marked token, over the responses that take part."""
    rows = valid.any(-1)
    clipped = ((codes != NONE) & valid).any(-1) & rows
    return float(clipped.sum()) / max(int(rows.sum()), 1)


def log_ratio_std(delta: Tensor, valid: Tensor) -> float:
    """Spread of the token log-ratios log π_θ/π_old over the tokens that take part: the population std (÷ N)."""
    d = delta[valid]
    return float(d.std(correction=0)) if d.numel() > 1 else 0.0


def kl_old_new(logp: Tensor, logp_old: Tensor, valid: Tensor) -> float:
    """KL(π_old ‖ π_θ) per token, Schulman's k3 from tokens drawn from π_old: mean of (r − 1) − log r, r = π_θ/π_old.

    (kl_estimate(a, b, "k3") estimates KL(π_a ‖ π_b) from samples of π_a, so π_old goes first.)"""
    k = kl_estimate(logp_old, logp, "k3")[valid]
    return float(k.mean()) if k.numel() else 0.0

