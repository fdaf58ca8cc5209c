"""Advantages from rewards (group z-score, Dr.GRPO's mean-centring, RLOO), DAPO's overlong shaping, and KL estimators."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class GroupStats:
    """What a person needs to redo the advantage by hand."""

    mean: Tensor       # (...,) group mean of the rewards
    std: Tensor        # (...,) group std under the chosen convention (0 where it is undefined)
    no_signal: Tensor  # (...,) bool: all rewards in the group are equal, so every advantage is 0


def group_advantages(rewards: Tensor, mode: str = "group", std: str = "sample",
                     adv_eps: float = 1e-6) -> tuple[Tensor, GroupStats]:
    """Advantages of G responses to one prompt; rewards (..., G) → advantages (..., G).

    group (GRPO, DeepSeekMath eq. 3 outcome supervision):  A_i = (R_i − mean(R)) / (std(R) + adv_eps)
        std 'sample' divides by G − 1 (torch.std, as TRL and verl do); 'population' divides by G.
    mean  (Dr.GRPO §3.1):                                   A_i = R_i − mean(R)
    rloo  (leave-one-out baseline):                         A_i = R_i − (1/(G−1)) Σ_{j≠i} R_j = G/(G−1)·(R_i − mean(R))

    A group whose rewards are all equal gets exactly 0 for every response (no learning signal;
    DAPO's dynamic sampling would drop it).

    >>> a, s = group_advantages(torch.tensor([9., 8., 5.], dtype=torch.float64))
    >>> [round(x, 4) for x in a.tolist()], round(s.std.item(), 4)
    ([0.8006, 0.3203, -1.1209], 2.0817)
    """
    G = rewards.shape[-1]
    if G < 2:
        raise ValueError(f"a group advantage needs at least 2 responses to compare, got {G}; "
                         "give each response an 'advantage' directly instead")
    mean = rewards.mean(dim=-1, keepdim=True)                             # (..., 1)
    sd = rewards.std(dim=-1, keepdim=True, correction=1 if std == "sample" else 0)  # (..., 1)
    centred = rewards - mean                                              # (..., G)
    if mode == "group":
        adv = centred / (sd + adv_eps)
    elif mode == "mean":
        adv = centred
    elif mode == "rloo":
        adv = centred * (G / (G - 1))
    else:
        raise ValueError(f"unknown advantage mode {mode!r}; valid: group, mean, rloo")
    no_signal = (rewards == rewards[..., :1]).all(dim=-1)                 # (...,)
    adv = torch.where(no_signal.unsqueeze(-1), torch.zeros_like(adv), adv)
    return adv, GroupStats(mean.squeeze(-1), sd.squeeze(-1), no_signal)


def overlong_penalty(length: Tensor, l_max: int, l_cache: int) -> Tensor:
    """DAPO's soft overlong punishment (DAPO eq. 13), added to the reward.

    R_length(y) = 0                                   if |y| <= L_max − L_cache
                = ((L_max − L_cache) − |y|) / L_cache if L_max − L_cache < |y| <= L_max
                = −1                                  if |y| > L_max
    """
    length = length.to(torch.float64)
    start = l_max - l_cache
    ramp = (start - length) / l_cache
    return torch.where(length <= start, torch.zeros_like(length),
                       torch.where(length <= l_max, ramp, -torch.ones_like(length)))


# KL(π_θ ‖ π_ref) estimated per token from the sampled token (Schulman's k1, k2, k3).
# Each returns the estimate and its derivative with respect to log π_θ (for the closed-form gradient).
def kl_estimate(logp: Tensor, logp_ref: Tensor, kind: str = "k3") -> Tensor:
    """k1 = log(π/π_ref);  k2 = ½·log(π/π_ref)²;  k3 = π_ref/π − log(π_ref/π) − 1 (GRPO's choice, always >= 0)."""
    d = logp - logp_ref
    if kind == "k1":
        return d
    if kind == "k2":
        return 0.5 * d * d
    if kind == "k3":
        return torch.exp(-d) + d - 1
    raise ValueError(f"unknown KL estimator {kind!r}; valid: k1, k2, k3")


def kl_derivative(logp: Tensor, logp_ref: Tensor, kind: str = "k3") -> Tensor:
    """∂k/∂log π_θ:  k1 → 1;  k2 → log(π/π_ref);  k3 → 1 − π_ref/π."""
    d = logp - logp_ref
    if kind == "k1":
        return torch.ones_like(d)
    if kind == "k2":
        return d
    if kind == "k3":
        return 1 - torch.exp(-d)
    raise ValueError(f"unknown KL estimator {kind!r}; valid: k1, k2, k3")


def advantage_panel(rewards: list[float], adv_eps: float = 1e-6) -> dict:
    """Rewards → mean, std → advantages under every convention, side by side (for the advantages panel)."""
    R = torch.tensor(rewards, dtype=torch.float64)
    out = {"rewards": list(rewards), "mean": float(R.mean())}
    if len(rewards) < 2:
        return out | {"no_signal": True, "std_sample": 0.0, "std_population": 0.0, "advantages": {}}
    conventions = {"z-score, std over G − 1 (TRL, verl)": ("group", "sample"),
                   "z-score, std over G": ("group", "population"),
                   "mean-centred (Dr.GRPO)": ("mean", "sample"),
                   "leave-one-out (RLOO)": ("rloo", "sample")}
    advs = {}
    for label, (mode, std) in conventions.items():
        a, stats = group_advantages(R, mode, std, adv_eps)
        advs[label] = a.tolist()
    return out | {"std_sample": float(R.std(correction=1)), "std_population": float(R.std(correction=0)),
                  "no_signal": bool(stats.no_signal), "advantages": advs}
