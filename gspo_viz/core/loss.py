"""The objectives at work, whatever the objective: J and its terms, the fast training path, clip decisions and
closed-form gradients. Each asks the objective's own definition (core/objectives/<name>.py)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from .advantages import kl_derivative, kl_estimate
from .aggregation import aggregation_weights, longest, term_weights
from . import objectives as registry
from .objectives.base import NONE, Objective, Terms, logratio
from .settings import Settings


def get(name: str) -> Objective:
    return registry.OBJECTIVES[name]


def kl_weights(part: Tensor, cfg: Settings, l_max: int) -> Tensor:
    """Aggregation of the per-token KL: the run's loss_agg_mode (GRPO's seq-mean-token-mean under 'seq-mean')."""
    mode = "seq-mean-token-mean" if cfg.loss_agg_mode == "seq-mean" else cfg.loss_agg_mode
    return aggregation_weights(part, mode, l_max)


def policy_weights(obj: Objective, part: Tensor, cfg: Settings, l_max: int,
                   rollout_w: Optional[Tensor] = None) -> Tensor:
    """The weights of the objective's terms under the run's loss_agg_mode: (G, T), or (G,) for per-sequence terms,
    times the rollout-correction weights (core/rollout.py) when given: (G, T), the same on a response's tokens at the
    sequence level (the only level a per-sequence term takes)."""
    w = term_weights(part, cfg.loss_agg_mode, l_max, obj.per_sequence_terms)
    if rollout_w is not None:
        w = w * (rollout_w[:, 0] if obj.per_sequence_terms else rollout_w)
    return w


def objective_parts(name: str, logp: Tensor, logp_old: Tensor, advantages: Tensor, mask: Tensor, cfg: Settings,
                    logp_ref: Optional[Tensor] = None, loss_mask: Optional[Tensor] = None,
                    rollout_w: Optional[Tensor] = None) -> tuple[Tensor, Tensor, Terms]:
    """(J_policy, J_kl, terms) with J = J_policy − β·J_kl. cfg must be resolved (Settings.resolved()).

    mask (G, T) marks the tokens that exist; loss_mask (default: mask) those that take part in the aggregation
    (DAPO's overlong filter and dynamic sampling take whole responses out).
    """
    obj = get(name)
    mask = mask.to(logp.dtype)
    part = mask if loss_mask is None else loss_mask.to(logp.dtype)
    l_max = longest(mask, cfg.max_tokens)
    terms = obj.terms(logp, logp_old, advantages, mask, cfg)
    w = policy_weights(obj, part, cfg, l_max, rollout_w)
    J_policy = (torch.where(w > 0, terms.value, torch.zeros_like(terms.value)) * w).sum()
    J_kl = torch.zeros((), dtype=logp.dtype)
    if logp_ref is not None and cfg.beta:
        kl = torch.where(part > 0, kl_estimate(logp, logp_ref, cfg.kl), torch.zeros_like(logp))
        J_kl = (kl * kl_weights(part, cfg, l_max)).sum()
    return J_policy, J_kl, terms


def objective_value(name: str, logp: Tensor, logp_old: Tensor, advantages: Tensor, mask: Tensor, cfg: Settings,
                    logp_ref: Optional[Tensor] = None, loss_mask: Optional[Tensor] = None,
                    rollout_w: Optional[Tensor] = None) -> tuple[Tensor, Terms]:
    """J (to maximise) and the terms it was aggregated from."""
    J_policy, J_kl, terms = objective_parts(name, logp, logp_old, advantages, mask, cfg, logp_ref, loss_mask,
                                            rollout_w)
    return (J_policy - cfg.beta * J_kl if cfg.beta else J_policy), terms


def objective_loss(name: str, logp: Tensor, logp_old: Tensor, advantages: Tensor, mask: Tensor, cfg: Settings,
                   logp_ref: Optional[Tensor] = None, loss_mask: Optional[Tensor] = None,
                   rollout_w: Optional[Tensor] = None) -> Tensor:
    """The fast path for training: loss = −J on batched (G, T) tensors with a mask; no per-token explanation.

    logp (G, T) requires grad; logp_old (G, T), advantages ((G,) or (G, T)), mask (G, T) and logp_ref do not.
    Padding positions must hold finite numbers (they are masked, never read as data).
    """
    J, _ = objective_value(name, logp, logp_old, advantages, mask, cfg, logp_ref, loss_mask, rollout_w)
    return -J


def clip_decisions(name: str, logp: Tensor, logp_old: Tensor, advantages: Tensor, mask: Tensor,
                   cfg: Settings) -> Tensor:
    """(G, T) codes: 0 none, 1 upper, 2 lower, 3 dual (see CLIP_NAMES); 0 on padding."""
    with torch.no_grad():
        obj = get(name)
        extra = {"logp_old": logp_old} if obj.needs_logp_old else {}
        codes = obj.clip_codes(logratio(logp, logp_old, mask), advantages, mask, cfg, **extra)
        return torch.where(mask > 0, codes.expand(logp.shape), NONE)


def closed_form_grad(name: str, logp: Tensor, logp_old: Tensor, advantages: Tensor, mask: Tensor,
                     cfg: Settings, logp_ref: Optional[Tensor] = None, loss_mask: Optional[Tensor] = None,
                     codes: Optional[Tensor] = None, policy_only: bool = False,
                     rollout_w: Optional[Tensor] = None) -> Tensor:
    """∂J/∂log π_θ(y_{i,t}) by hand: the objective's policy_grad with its aggregation weights, plus the KL term
    −β·w_{i,t}·∂k/∂log π_θ (unless policy_only). `codes` (from clip_decisions) may be passed to save recomputing."""
    obj = get(name)
    with torch.no_grad():
        if codes is None:
            codes = clip_decisions(name, logp, logp_old, advantages, mask, cfg)
        part = mask if loss_mask is None else loss_mask
        l_max = longest(mask, cfg.max_tokens)
        w = policy_weights(obj, part, cfg, l_max, rollout_w)
        extra = {"logp_old": logp_old} if obj.needs_logp_old else {}
        grad = obj.policy_grad(logratio(logp, logp_old, mask), advantages, mask, w, codes, cfg, **extra)
        if logp_ref is not None and cfg.beta and not policy_only:
            grad = grad - cfg.beta * kl_weights(part, cfg, l_max) * kl_derivative(logp, logp_ref, cfg.kl)
        return torch.where(part > 0, grad.expand(logp.shape), torch.zeros_like(logp))
