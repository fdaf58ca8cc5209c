"""Rollout correction: the inference engine's probabilities differ from the trainer's for the same weights, so each
token's policy term is weighted by w = π_old/π_rollout (detached), as verl 0.9's algorithm.rollout_correction does
(verl/trainer/ppo/rollout_corr_helper.py, compute_rollout_correction_weights).

    token level:     w_{i,t} = π_old(y_{i,t}) / π_rollout(y_{i,t})
    sequence level:  w_i = Π_t π_old(y_{i,t}) / π_rollout(y_{i,t}), the same on every token of the response
    truncated (TIS, no lower bound set):   w ← min(w, C)
    masked (IcePop, lower bound set):       w ← w if lower ≤ w ≤ C, else 0
The log of w is kept within ±20 before exp (verl's SAFETY_BOUND). The weight multiplies the token's term before
aggregation, so it multiplies its gradient weight too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

SAFETY_BOUND = 20.0
LEVELS = ("token", "sequence")


@dataclass
class RolloutWeights:
    raw: Tensor         # (G, T) π_old/π_rollout per token (or its response's product), 0 on padding
    weight: Tensor      # (G, T) after truncation or masking: what multiplies each token's term
    truncated: Tensor   # (G, T) bool: the weight was capped at C
    masked: Tensor      # (G, T) bool: the weight was set to 0 (outside [lower, C])


def rollout_weights(logp_old: Tensor, logp_rollout: Tensor, mask: Tensor, level: str, upper: float,
                    lower: Optional[float] = None) -> RolloutWeights:
    """The rollout-correction weights of a batch: (G, T) tensors, detached."""
    if level not in LEVELS:
        raise ValueError(f"rollout_is must be one of {LEVELS}, got {level!r}")
    with torch.no_grad():
        log_ratio = torch.where(mask > 0, logp_old - logp_rollout, torch.zeros_like(logp_old))   # (G, T)
        if level == "sequence":
            log_ratio = log_ratio.sum(-1, keepdim=True).expand_as(logp_old)                      # (G, T)
        raw = torch.exp(torch.clamp(log_ratio, -SAFETY_BOUND, SAFETY_BOUND)) * mask
        valid = mask > 0
        if lower is None:
            truncated = valid & (raw > upper)
            masked = torch.zeros_like(truncated)
            weight = torch.clamp(raw, max=upper)
        else:
            masked = valid & ((raw < lower) | (raw > upper))
            truncated = torch.zeros_like(masked)
            weight = torch.where(masked, torch.zeros_like(raw), raw)
        return RolloutWeights(raw, weight, truncated, masked)
