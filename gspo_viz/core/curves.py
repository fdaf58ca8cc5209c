"""Curves for the Clip Explorer and the Length & Aggregation page, computed by the same objective functions."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from .advantages import overlong_penalty
from .aggregation import aggregation_weights, longest
from .objectives import OBJECTIVES
from .settings import Settings


@dataclass
class ClipCurve:
    ratio: list[float]              # x: the ratio the clip acts on (r for token objectives, s for GSPO)
    value: Optional[list[float]]    # the per-token (per-sequence) term with |A| = 1; None for CISPO (no surrogate)
    grad: list[float]               # its derivative with respect to log π_θ
    zero_regions: list[tuple[float, float]]  # ranges of the ratio where the gradient is exactly 0


def clip_curve(name: str, ratios: list[float], adv_sign: float, settings: Settings) -> ClipCurve:
    """The term and its gradient weight as functions of the ratio, for one token with A = ±1 (no aggregation).

    Each grid point is a one-token response, so r = s = ρ and the objective's own function gives the curve.
    """
    cfg = settings.with_(objective=name).resolved()
    r = torch.tensor(ratios, dtype=torch.float64).unsqueeze(-1)  # (N, 1)
    logp = torch.log(r).requires_grad_(True)
    logp_old = torch.zeros_like(r)
    adv = torch.full((r.shape[0],), float(adv_sign), dtype=torch.float64)
    mask = torch.ones_like(r)
    terms = OBJECTIVES[name].terms(logp, logp_old, adv, mask, cfg)
    value = terms.value.reshape(-1)
    (grad,) = torch.autograd.grad(value.sum(), logp)                # rows are independent: d term_i / d log π_i
    grad = grad.reshape(-1)
    zero = (grad == 0).tolist()
    regions, start = [], None
    for k, z in enumerate(zero + [False]):
        if z and start is None:
            start = k
        if not z and start is not None:
            regions.append((ratios[start], ratios[k - 1]))
            start = None
    show_value = value.detach().tolist() if OBJECTIVES[name].has_surrogate else None
    return ClipCurve(list(ratios), show_value, grad.tolist(), regions)


def ratio_grid(center: float = 1.0, half_width: float = 1.0, n: int = 401, low: float = 1e-3) -> list[float]:
    """Evenly spaced ratios around `center`, kept positive."""
    lo, hi = max(low, center - half_width), center + half_width
    return [lo + (hi - lo) * k / (n - 1) for k in range(n)]


# --------------------------------------------------------------------------- length and aggregation

AGG_OBJECTIVES = ("grpo", "dapo", "dr_grpo", "gspo")


def per_token_weight_vs_length(lengths: list[int], G: int = 8, other_len: int = 32,
                               max_tokens: Optional[int] = None) -> dict[str, list[float]]:
    """Gradient weight of one token of a response of length L (A = 1, ratio 1) when the G − 1 others have other_len.

    grpo (1/G)(1/L);  dapo 1/(L + (G−1)·other_len);  dr_grpo 1/(G·L_max);  gspo (1/G)·s·A/L with s = 1.
    Computed from the core's aggregation weights, one group per L.
    """
    out = {name: [] for name in AGG_OBJECTIVES}
    for L in lengths:
        T = max(L, other_len)
        mask = torch.zeros(G, T, dtype=torch.float64)
        mask[0, :L] = 1
        mask[1:, :other_len] = 1
        l_max = max_tokens if max_tokens is not None else None
        for name in AGG_OBJECTIVES:
            w = aggregation_weights(mask, OBJECTIVES[name].aggregation, longest(mask, l_max))
            # a per-sequence term spreads its response's weight over its L tokens
            out[name].append(float(w[0] / L) if w.dim() == 1 else float(w[0, 0]))
    return out


def sequence_ratio_band(lengths: list[int], eps_low: float, eps_high: float) -> tuple[list[float], list[float]]:
    """The whole-sequence likelihood ratio π_θ(y)/π_old(y) reachable before every token is clipped:
    [(1−ε_low)^L, (1+ε_high)^L] under token-level clipping; under GSPO's clip of s_i = ratio^(1/L) the same
    formula with GSPO's ε."""
    return [(1 - eps_low) ** L for L in lengths], [(1 + eps_high) ** L for L in lengths]


def drift_sequence_ratio(lengths: list[int], delta: float) -> list[float]:
    """GSPO's s_i when one token of a response drifts by log-ratio δ and the others do not: exp(δ/L).

    Computed by the gspo objective itself on one response per length.
    """
    T = max(lengths)
    n = len(lengths)
    logp_old = torch.zeros(n, T, dtype=torch.float64)
    logp = logp_old.clone()
    logp[:, 0] = delta
    mask = (torch.arange(T).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)).to(torch.float64)
    terms = OBJECTIVES["gspo"].terms(logp, logp_old, torch.ones(n, dtype=torch.float64), mask,
                                     Settings(objective="gspo").resolved())
    return terms.seq_ratio.tolist()


def drift_curves(lengths: list[int], delta: float) -> tuple[list[float], list[float]]:
    """(s_i, |s_i − 1|) for the drift of drift_sequence_ratio, from one run of the gspo objective."""
    s = drift_sequence_ratio(lengths, delta)
    return s, [abs(x - 1) for x in s]


def drift_distance(lengths: list[int], delta: float) -> list[float]:
    """|s_i − 1| for the drift of drift_sequence_ratio: how far the response sits from GSPO's centre."""
    return drift_curves(lengths, delta)[1]


def within_band(ratio: float, eps_low: float, eps_high: float) -> bool:
    """Is the ratio inside the clip range [1 − ε_low, 1 + ε_high]?"""
    return 1 - eps_low <= ratio <= 1 + eps_high


def first_length_within(lengths: list[int], ratios: list[float], eps_low: float, eps_high: float) -> Optional[int]:
    """The first length whose ratio lies inside [1 − ε_low, 1 + ε_high], or None."""
    return next((L for L, r in zip(lengths, ratios) if within_band(r, eps_low, eps_high)), None)


def overlong_curve(lengths: list[int], l_max: int, l_cache: int) -> list[float]:
    """DAPO's soft overlong punishment for each length."""
    return overlong_penalty(torch.tensor(lengths), l_max, l_cache).tolist()
