"""The explain path: every per-token number of an objective on one batch, with autograd as the answer key."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import Tensor

from .advantages import kl_estimate
from .objectives import CLIP_NAMES, DUAL, LOWER, NONE, OBJECTIVES, UPPER, clip_decisions, closed_form_grad, \
    objective_value
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
    grad_weight: Tensor         # (G, T) ∂J/∂log π_θ(y_{i,t}) by autograd
    closed_grad: Tensor         # (G, T) the same by the closed form
    mask: Tensor                # (G, T) 0/1: the token exists
    loss_mask: Tensor           # (G, T) 0/1: the token takes part in the loss
    metrics: dict = field(default_factory=dict)

    def clip_name(self, i: int, t: int) -> str:
        return CLIP_NAMES[int(self.clip[i, t])]


def explain(name: str, logp: Tensor, logp_old: Tensor, advantages: Tensor, mask: Tensor, settings: Settings,
            logp_ref: Optional[Tensor] = None, loss_mask: Optional[Tensor] = None) -> Explanation:
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

    J, terms = objective_value(name, logp, logp_old, advantages, mask, cfg, ref, part)
    (grad,) = torch.autograd.grad(J, logp)
    logp = logp.detach()
    grad = torch.where(part > 0, grad, torch.zeros_like(grad))
    codes = clip_decisions(name, logp, logp_old, advantages, mask, cfg)
    closed = closed_form_grad(name, logp, logp_old, advantages, mask, cfg, ref, part, codes)
    token_ratio = torch.exp(torch.where(mask > 0, logp - logp_old, torch.zeros_like(logp)))
    seq_ratio = None if terms.seq_ratio is None else terms.seq_ratio.detach()
    J_value = float(J.detach()) + 0.0  # + 0.0 turns −0.0 into 0.0
    return Explanation(name, cfg, J_value, 0.0 - J_value, token_ratio, terms.ratio.detach(), seq_ratio, codes,
                       grad, closed, mask, part, _metrics(name, logp, token_ratio, codes, part, seq_ratio, cfg, ref))


def _metrics(name, logp, token_ratio, codes, mask, seq_ratio, cfg, ref) -> dict:
    valid = mask > 0
    n_tok = int(valid.sum())
    n = max(n_tok, 1)
    counts = torch.bincount(codes[valid], minlength=len(CLIP_NAMES)).tolist()
    r = token_ratio[valid]
    if n_tok:
        logr = torch.log(r)
        stats = torch.stack([r.mean(), r.min(), r.max(), logr.std(correction=0)]).tolist()
    else:
        stats = [1.0, 1.0, 1.0, 0.0]
    out = {
        "clip_fraction": (n_tok - counts[NONE]) / n if n_tok else 0.0,
        "clip_fraction_upper": counts[UPPER] / n,
        "clip_fraction_lower": counts[LOWER] / n,
        "clip_fraction_dual": counts[DUAL] / n,
        "tokens": n_tok,
        "ratio_mean": stats[0], "ratio_min": stats[1], "ratio_max": stats[2], "log_ratio_std": stats[3],
    }
    if OBJECTIVES[name].level == "sequence":
        rows = valid.any(-1)
        clipped_rows = ((codes != NONE) & valid).any(-1) & rows
        out["seq_clip_fraction"] = float(clipped_rows.sum()) / max(int(rows.sum()), 1)
    if ref is not None:
        out["kl"] = float(kl_estimate(logp, ref, cfg.kl)[valid].mean()) if n_tok else 0.0
    return out
