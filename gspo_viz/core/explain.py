"""The explain path: every per-token number of an objective on one batch, with autograd as the answer key."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import Tensor

from . import metrics as M
from .advantages import kl_estimate
from .loss import clip_decisions, closed_form_grad, get, objective_parts
from .objectives.base import CLIP_NAMES, logratio
from .rollout import RolloutWeights, rollout_weights
from .settings import Settings


@dataclass
class Explanation:
    objective: str
    settings: Settings          # resolved
    J: float                    # objective value (maximised)
    loss: float                 # −J
    token_ratio: Tensor         # (G, T) r_{i,t} = π_θ/π_old
    ratio: Tensor               # (G, T) the ratio each token's term uses (s_i for GSPO)
    seq_ratio: Optional[Tensor]  # (G,) sequence ratio where the objective has one
    clip: Tensor                # (G, T) codes, see CLIP_NAMES
    grad_weight: Tensor         # (G, T) ∂J/∂log π_θ(y_{i,t}) by autograd (policy term and KL)
    policy_grad: Tensor         # (G, T) the policy term's part of it, by autograd (grad_weight = policy_grad + KL's)
    closed_grad: Tensor         # (G, T) grad_weight by the closed form
    mask: Tensor                # (G, T) 0/1: the token exists
    loss_mask: Tensor           # (G, T) 0/1: the token takes part in the loss
    gate: Optional[Tensor] = None  # (G, T) a soft objective's gate on r·A (SAPO), else None
    metrics: dict = field(default_factory=dict)
    rollout: Optional[RolloutWeights] = None   # rollout correction's weights (settings.rollout_is), else None

    def clip_name(self, i: int, t: int) -> str:
        return CLIP_NAMES[int(self.clip[i, t])]


def explain(name: str, logp: Tensor, logp_old: Tensor, advantages: Tensor, mask: Tensor, settings: Settings,
            logp_ref: Optional[Tensor] = None, loss_mask: Optional[Tensor] = None,
            logp_rollout: Optional[Tensor] = None) -> Explanation:
    """Run objective `name` in float64 and return every intermediate number.

    grad_weight is taken by autograd through the same function the fast path trains with; closed_grad is the
    formula the pages show. Tests hold the two equal.
    """
    cfg = settings.with_(objective=name).resolved()
    logp = logp.detach().to(torch.float64).requires_grad_(True)      # (G, T)
    logp_old = logp_old.detach().to(torch.float64)
    advantages = advantages.detach().to(torch.float64)
    mask = mask.detach().to(torch.float64)
    part = mask if loss_mask is None else loss_mask.detach().to(torch.float64)
    ref = None if logp_ref is None else logp_ref.detach().to(torch.float64)

    rollout = None
    if cfg.rollout_is is not None and logp_rollout is not None:
        rollout = rollout_weights(logp_old, logp_rollout.detach().to(torch.float64), mask, cfg.rollout_is,
                                  cfg.rollout_is_threshold, cfg.rollout_is_threshold_lower)
    rw = None if rollout is None else rollout.weight
    J_policy, J_kl, terms = objective_parts(name, logp, logp_old, advantages, mask, cfg, ref, part, rw)
    (policy_grad,) = torch.autograd.grad(J_policy, logp, retain_graph=True, allow_unused=True)
    policy_grad = torch.zeros_like(logp) if policy_grad is None else policy_grad
    grad = policy_grad
    J = J_policy
    if cfg.beta and ref is not None:
        (kl_grad,) = torch.autograd.grad(J_kl, logp)
        grad = policy_grad - cfg.beta * kl_grad
        J = J_policy - cfg.beta * J_kl
    logp = logp.detach()
    grad = torch.where(part > 0, grad, torch.zeros_like(grad))
    policy_grad = torch.where(part > 0, policy_grad, torch.zeros_like(policy_grad))
    codes = clip_decisions(name, logp, logp_old, advantages, mask, cfg)
    closed = closed_form_grad(name, logp, logp_old, advantages, mask, cfg, ref, part, codes, rollout_w=rw)
    delta = logratio(logp, logp_old, mask)
    token_ratio = delta.exp()
    seq_ratio = None if terms.seq_ratio is None else terms.seq_ratio.detach()
    gate = get(name).gate(delta, advantages, cfg)
    J_value = float(J.detach()) + 0.0  # + 0.0 turns −0.0 into 0.0
    valid = part > 0
    metrics = M.clip_fractions(codes, valid) | {"tokens": int(valid.sum())}
    r = token_ratio[valid]
    metrics |= {"ratio_mean": float(r.mean()) if r.numel() else 1.0,
                "ratio_min": float(r.min()) if r.numel() else 1.0,
                "ratio_max": float(r.max()) if r.numel() else 1.0,
                "log_ratio_std": M.log_ratio_std(delta, valid)}
    if get(name).level == "sequence":
        metrics["seq_clip_fraction"] = M.seq_clip_fraction(codes, valid)
    if ref is not None:
        k = kl_estimate(logp, ref, cfg.kl)[valid]
        metrics["kl"] = float(k.mean()) if k.numel() else 0.0
    if rollout is not None:
        gap = (logp_old - logp_rollout.detach().to(torch.float64)).abs()[valid]    # |log π_old − log π_rollout|

        def mean(x: Tensor) -> float:
            return float(x.float().mean()) if x.numel() else 0.0
        metrics |= {"rollout_logp_gap": mean(gap), "rollout_truncated_fraction": mean(rollout.truncated[valid]),
                    "rollout_masked_fraction": mean(rollout.masked[valid])}
    return Explanation(name, cfg, J_value, 0.0 - J_value, token_ratio, terms.ratio.detach(), seq_ratio, codes,
                       grad, policy_grad, closed, mask, part, None if gate is None else gate.detach(), metrics,
                       rollout)
