"""Curves for the Clip Explorer and the Length & Aggregation page, computed by the same objective functions."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch

from .advantages import overlong_penalty
from .aggregation import AGGREGATIONS, aggregation_weights, longest
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


@dataclass(frozen=True)
class Axis:
    grid: tuple[float, float, int, float]   # ratio_grid's parameters (center, half_width, n, low)
    low: float                              # the first ratio of the grid
    high: float                             # the last ratio of the grid
    extended: bool                          # the grid was widened past [low, x_max] to reach a marked ratio


def ratio_axis(x_max: float, marks: tuple[float, ...] = (), low: float = 0.01, per_unit: int = 100,
               max_points: int = 2001) -> Axis:
    """A ratio grid from `low` to x_max, widened so that every marked ratio lies inside it (10 % headroom above the
    largest, half the smallest below). About `per_unit` points per unit of ratio, at least 401, at most max_points."""
    marks = tuple(m for m in marks if m is not None and math.isfinite(m) and m > 0)
    hi = max([x_max] + [1.1 * m for m in marks])
    lo = min([low] + [m / 2 for m in marks])
    n = max(401, min(max_points, math.ceil(per_unit * hi) + 1))
    return Axis((hi / 2, hi / 2, n, lo), lo, hi, hi > x_max or lo < low)


def zoom_axis(bands: list["Band"], factor: float = 5.0, min_half: float = 1e-3, n: int = 401) -> Axis:
    """A grid centred on 1 wide enough to show every band: ±factor × the farthest bound's distance from 1."""
    half = max([min_half] + [factor * max(abs(1 - b.low), abs(b.high - 1)) for b in bands])
    lo, hi = max(1e-3, 1 - half), 1 + half
    return Axis((1.0, half, n, 1e-3), lo, hi, False)


def reach_axis(bands: list["Band"], marks: tuple[float, ...], margin: float = 0.1, n: int = 801) -> Axis:
    """A grid from the clip bands to every marked ratio, for a mark that zoom_axis's view of the bands leaves out:
    it spans [min, max] of the bands' bounds, 1 and the marks, plus `margin` × that span on each side (below, never
    past half the smallest point, so the ratio stays positive)."""
    marks = tuple(m for m in marks if m is not None and math.isfinite(m) and m > 0)
    points = [1.0] + [b.low for b in bands] + [b.high for b in bands] + list(marks)
    lo, hi = min(points), max(points)
    pad = margin * (hi - lo)
    lo, hi = max(lo - pad, lo / 2), hi + pad
    return Axis(((lo + hi) / 2, (hi - lo) / 2, n, lo), lo, hi, True)


@dataclass(frozen=True)
class Band:
    low: float    # the clip range [low, high] on the ratio the objective's clip acts on (r or s)
    high: float

    @property
    def width(self) -> float:
        return self.high - self.low


def clip_band(name: str, settings: Settings) -> Optional[Band]:
    """The objective's PPO clip range [1 − ε_low, 1 + ε_high] on the ratio its clip acts on (r_{i,t} for
    level 'token', s_i for level 'sequence'), or None when its clip is not of that form (clip_form != 'ppo')."""
    obj = OBJECTIVES[name]
    if obj.clip_form != "ppo":
        return None
    cfg = settings.with_(objective=name).resolved()
    return Band(1 - cfg.eps_low, 1 + cfg.eps_high)


def same_curves(curves: dict[str, list[list[float]]], rel: float = 1e-12) -> dict[str, str]:
    """{key: the first earlier key whose lists are all equal to its own (within rel)}, for curves that lie exactly on
    another one. A list may hold None (e.g. CISPO's value): then both must be None."""
    out = {}
    keys = list(curves)
    for k, key in enumerate(keys):
        for earlier in keys[:k]:
            if earlier in out:
                continue
            if _all_close(curves[key], curves[earlier], rel):
                out[key] = earlier
                break
    return out


def _all_close(a: list, b: list, rel: float) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x is None or y is None:
            if x is not y:
                return False
            continue
        if len(x) != len(y) or any(abs(u - v) > rel * max(1.0, abs(u), abs(v)) for u, v in zip(x, y)):
            return False
    return True


# --------------------------------------------------------------------------- length and aggregation

def papers_using(mode: str) -> list[str]:
    """The objectives whose paper aggregates with `mode` (their default loss_agg_mode)."""
    return [n for n, o in OBJECTIVES.items() if o.aggregation == mode]


def per_token_weight_vs_length(lengths: list[int], G: int = 8, other_len: int = 32,
                               max_tokens: Optional[int] = None) -> dict[str, list[float]]:
    """Gradient weight of one token of a response of length L (A = 1, ratio 1) when the G − 1 others have other_len,
    per loss_agg_mode (verl's names, AGGREGATIONS): seq-mean-token-mean (1/G)(1/L); token-mean 1/(L + (G−1)·other_len);
    seq-mean-token-sum 1/G; seq-mean-token-sum-norm 1/(G·L_max); seq-mean (1/G)·s·A/L with s = 1 (a per-sequence
    term's weight spread over its L tokens). Computed from the core's aggregation weights, one group per L.
    """
    out = {mode: [] for mode in AGGREGATIONS}
    for L in lengths:
        T = max(L, other_len)
        mask = torch.zeros(G, T, dtype=torch.float64)
        mask[0, :L] = 1
        mask[1:, :other_len] = 1
        for mode in AGGREGATIONS:
            w = aggregation_weights(mask, mode, longest(mask, max_tokens))
            out[mode].append(float(w[0] / L) if w.dim() == 1 else float(w[0, 0]))
    return out


def whole_answer_weights(lengths: list[int], per_token: list[float]) -> list[float]:
    """The whole answer's weight: L tokens times the per-token weight."""
    return [L * w for L, w in zip(lengths, per_token)]


def trend(values: list[float], rel: float = 1e-9) -> str:
    """'constant', 'rises' or 'falls' (monotonically, within rel), else 'varies'."""
    steps = [b - a for a, b in zip(values, values[1:])]
    tol = [rel * max(abs(a), abs(b), 1e-300) for a, b in zip(values, values[1:])]
    if all(abs(d) <= t for d, t in zip(steps, tol)):
        return "constant"
    if all(d >= -t for d, t in zip(steps, tol)):
        return "rises"
    if all(d <= t for d, t in zip(steps, tol)):
        return "falls"
    return "varies"


def sequence_ratio_band(lengths: list[int], eps_low: float, eps_high: float) -> tuple[list[float], list[float]]:
    """[(1−ε_low)^L, (1+ε_high)^L] for each L.

    Token-level clipping: the whole-sequence likelihood ratio π_θ(y)/π_old(y) when every token sits on its bound,
    the extremes reachable with no token clipped. Sequence-level clipping of s_i = (π_θ(y)/π_old(y))^(1/L): exactly
    the range of the whole-sequence ratio inside which the response is not clipped."""
    return [(1 - eps_low) ** L for L in lengths], [(1 + eps_high) ** L for L in lengths]


def sequence_objectives() -> list[str]:
    """The objectives whose clip acts on the sequence ratio s_i (level 'sequence')."""
    return [n for n, o in OBJECTIVES.items() if o.level == "sequence"]


def _drift_batch(lengths: list[int], delta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One response per length whose first token has log-ratio δ and the others 0: (logp, logp_old, mask)."""
    T = max(lengths)
    n = len(lengths)
    logp_old = torch.zeros(n, T, dtype=torch.float64)
    logp = logp_old.clone()
    logp[:, 0] = delta
    mask = (torch.arange(T).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)).to(torch.float64)
    return logp, logp_old, mask


def drift_sequence_ratio(lengths: list[int], delta: float, name: Optional[str] = None) -> list[float]:
    """s_i when one token of a response drifts by log-ratio δ and the others do not: exp(δ/L).

    Computed by a sequence-level objective itself (`name`, default the first of sequence_objectives()) on one
    response per length.
    """
    name = name or sequence_objectives()[0]
    logp, logp_old, mask = _drift_batch(lengths, delta)
    terms = OBJECTIVES[name].terms(logp, logp_old, torch.ones(len(lengths), dtype=torch.float64), mask,
                                   Settings(objective=name).resolved())
    return terms.seq_ratio.tolist()


def drift_clip(lengths: list[int], delta: float, adv_sign: float, name: str, settings: Settings) -> list[str]:
    """The drifting token's clip decision (CLIP_NAMES: 'none', 'upper', 'lower', 'dual') for each length, with
    advantage adv_sign on the response, from the objective's own clip rule. For a sequence-level objective it is the
    response's decision; for a token-level one the token's own."""
    from .objectives.base import CLIP_NAMES
    cfg = settings.with_(objective=name).resolved()
    logp, logp_old, mask = _drift_batch(lengths, delta)
    adv = torch.full((len(lengths),), float(adv_sign), dtype=torch.float64)
    codes = OBJECTIVES[name].clip_codes(logp - logp_old, adv, mask, cfg)
    codes = torch.as_tensor(codes).expand(logp.shape)
    return [CLIP_NAMES[int(c)] for c in codes[:, 0].tolist()]


def shortest_unclipped_length(delta: float, eps_low: Optional[float], eps_high: float) -> Optional[int]:
    """The smallest L ≥ 1 with exp(δ/L) inside [1 − ε_low, 1 + ε_high] (a ratio on a bound is inside: the clip is
    strict), or None if no length brings it inside. ε_low None: no lower bound.

    exp(δ/L) moves monotonically towards 1 as L grows, so the answer is L = ⌈δ / ln(1 + ε_high)⌉ for δ > 0,
    ⌈δ / ln(1 − ε_low)⌉ for δ < 0 and 1 for δ = 0; it is then checked (and corrected) with exp(δ/L) itself at L and
    L − 1, so that a quotient that is an exact integer in exact arithmetic but lands a hair off in floating point
    still gives the length within_band agrees with.
    """
    def inside(L: int) -> bool:
        x = delta / L
        return within_band(math.exp(x), eps_low, eps_high) if x < 700 else False   # e^700 is past any ε_high

    if delta == 0 or inside(1):
        return 1
    if delta > 0:
        if eps_high <= 0:
            return None                       # exp(δ/L) > 1 = 1 + ε_high for every L
        L = math.ceil(delta / math.log1p(eps_high))
    else:
        if eps_low is None or eps_low >= 1:
            return 1
        if eps_low <= 0:
            return None                       # exp(δ/L) < 1 = 1 − ε_low for every L
        L = math.ceil(delta / math.log1p(-eps_low))
    L = max(L, 1)
    while L > 1 and inside(L - 1):
        L -= 1
    while not inside(L):
        L += 1
    return L


def drift_curves(lengths: list[int], delta: float) -> tuple[list[float], list[float]]:
    """(s_i, |s_i − 1|) for the drift of drift_sequence_ratio, from one run of a sequence-level objective."""
    s = drift_sequence_ratio(lengths, delta)
    return s, [abs(x - 1) for x in s]


def drift_distance(lengths: list[int], delta: float) -> list[float]:
    """|s_i − 1| for the drift of drift_sequence_ratio: how far the response sits from GSPO's centre."""
    return drift_curves(lengths, delta)[1]


def within_band(ratio: float, eps_low: Optional[float], eps_high: float) -> bool:
    """Is the ratio inside the clip range [1 − ε_low, 1 + ε_high] (bounds included: the clip is strict)?
    ε_low None: no lower bound."""
    return (eps_low is None or 1 - eps_low <= ratio) and ratio <= 1 + eps_high


def first_length_within(lengths: list[int], ratios: list[float], eps_low: float, eps_high: float) -> Optional[int]:
    """The first of the sampled `lengths` whose ratio lies inside [1 − ε_low, 1 + ε_high], or None. Only as exact as
    the sampling: shortest_unclipped_length solves for the exact length."""
    return next((L for L, r in zip(lengths, ratios) if within_band(r, eps_low, eps_high)), None)


def overlong_curve(lengths: list[int], l_max: int, l_cache: int) -> list[float]:
    """DAPO's soft overlong punishment for each length."""
    return overlong_penalty(torch.tensor(lengths), l_max, l_cache).tolist()


def overlong_free_until(l_max: int, l_cache: int) -> int:
    """The longest response the soft overlong punishment leaves alone: L_max − L_cache."""
    return l_max - l_cache
