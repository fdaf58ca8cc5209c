"""The objectives: one function per paper giving per-token (or per-sequence) terms, a named aggregation, and a registry.

Notation (all tensors padded to (G, T) with a 0/1 `mask`):
    Δ_{i,t} = log π_θ(y_{i,t}) − log π_old(y_{i,t})      token log-ratio
    r_{i,t} = exp(Δ_{i,t})                               token ratio
    s_i     = exp((1/|y_i|) Σ_t Δ_{i,t})                  GSPO's sequence ratio
J is maximised; the loss is −J. `objective_loss` is the fast path used for training: no explanation, just a
differentiable scalar. `clip_decisions` and `closed_form_grad` give what the explain path shows beside it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import Tensor

from .advantages import kl_derivative, kl_estimate
from .settings import Settings

NONE, UPPER, LOWER, DUAL = 0, 1, 2, 3
CLIP_NAMES = ("none", "upper", "lower", "dual")


@dataclass
class Terms:
    value: Tensor                 # (G, T) per-token terms, or (G,) per-sequence terms, before aggregation
    ratio: Tensor                 # (G, T) the ratio each token's term uses
    seq_ratio: Optional[Tensor]   # (G,) the sequence ratio, for objectives that have one


# --------------------------------------------------------------------------- shared pieces

def _logratio(logp: Tensor, logp_old: Tensor, mask: Tensor) -> Tensor:
    """Δ = log π_θ − log π_old, set to 0 on padding so nothing there can overflow."""
    return torch.where(mask > 0, logp - logp_old, torch.zeros_like(logp))  # (G, T)


def _lengths(mask: Tensor) -> Tensor:
    return mask.sum(dim=-1).clamp_min(1)  # (G,)


def _token_adv(advantages: Tensor) -> Tensor:
    return advantages.unsqueeze(-1) if advantages.dim() == 1 else advantages  # (G, 1) or (G, T)


def _seq_adv(advantages: Tensor, mask: Tensor) -> Tensor:
    """One advantage per response: as given if (G,), else the masked mean of (G, T)."""
    if advantages.dim() == 1:
        return advantages
    return (advantages * mask).sum(-1) / _lengths(mask)  # (G,)


def ppo_clip(ratio: Tensor, adv: Tensor, eps_low: float, eps_high: float) -> Tensor:
    """PPO's clipped surrogate: min(r·A, clip(r, 1−ε_low, 1+ε_high)·A)."""
    return torch.minimum(ratio * adv, torch.clamp(ratio, 1 - eps_low, 1 + eps_high) * adv)


# --------------------------------------------------------------------------- the objectives (per-token terms)

def grpo(logp, logp_old, advantages, mask, cfg: Settings) -> Terms:
    """GRPO (DeepSeekMath 2402.03300, eq. 3), per token:

        min(r_{i,t}·A_i, clip(r_{i,t}, 1−ε_low, 1+ε_high)·A_i)      aggregated (1/G) Σ_i (1/|y_i|) Σ_t
    """
    ratio = torch.exp(_logratio(logp, logp_old, mask))  # (G, T)
    return Terms(ppo_clip(ratio, _token_adv(advantages), cfg.eps_low, cfg.eps_high), ratio, None)


def dual_clip(logp, logp_old, advantages, mask, cfg: Settings) -> Terms:
    """Dual-Clip PPO (Ye et al. 2020, arXiv 1912.09729, eq. 5), per token:

        A ≥ 0:  min(r·A, clip(r, 1−ε_low, 1+ε_high)·A)
        A < 0:  max(min(r·A, clip(r, 1−ε_low, 1+ε_high)·A), c·A)      c > 1; aggregated as GRPO
    """
    ratio = torch.exp(_logratio(logp, logp_old, mask))  # (G, T)
    adv = _token_adv(advantages)
    value = ppo_clip(ratio, adv, cfg.eps_low, cfg.eps_high)
    value = torch.where(adv < 0, torch.maximum(value, cfg.dual_clip_c * adv), value)
    return Terms(value, ratio, None)


def dapo(logp, logp_old, advantages, mask, cfg: Settings) -> Terms:
    """DAPO (2503.14476, eq. 8): GRPO's per-token term with decoupled ε_low/ε_high ("clip-higher"),

        min(r·A, clip(r, 1−ε_low, 1+ε_high)·A)      aggregated token-level: (1/Σ_i |y_i|) Σ_i Σ_t
    """
    return grpo(logp, logp_old, advantages, mask, cfg)


def dr_grpo(logp, logp_old, advantages, mask, cfg: Settings) -> Terms:
    """Dr.GRPO (2503.20783, eq. 4): GRPO's per-token term with A = R − mean(R) (no std),

        min(r·A, clip(r, 1−ε_low, 1+ε_high)·A)      aggregated (1/(G·L_max)) Σ_i Σ_t
    """
    return grpo(logp, logp_old, advantages, mask, cfg)


def gspo(logp, logp_old, advantages, mask, cfg: Settings) -> Terms:
    """GSPO (2507.18071, eqs. 5–7), per sequence:

        s_i = exp((1/|y_i|) Σ_t log(π_θ/π_old)),   min(s_i·A_i, clip(s_i, 1−ε_low, 1+ε_high)·A_i)
        aggregated (1/G) Σ_i
    """
    delta = _logratio(logp, logp_old, mask)               # (G, T)
    seq_ratio = torch.exp(delta.sum(-1) / _lengths(mask))  # (G,)
    value = ppo_clip(seq_ratio, _seq_adv(advantages, mask), cfg.eps_low, cfg.eps_high)  # (G,)
    return Terms(value, seq_ratio.unsqueeze(-1).expand_as(logp), seq_ratio)


def gspo_token(logp, logp_old, advantages, mask, cfg: Settings) -> Terms:
    """GSPO-token (2507.18071, eqs. 13–14), per token:

        s_{i,t} = sg[s_i]·π_θ(y_{i,t}) / sg[π_θ(y_{i,t})]   (value s_i, gradient of log π_θ(y_{i,t}))
        min(s_{i,t}·A_{i,t}, clip(s_{i,t}, 1−ε_low, 1+ε_high)·A_{i,t})      aggregated (1/G) Σ_i (1/|y_i|) Σ_t
    """
    delta = _logratio(logp, logp_old, mask)                         # (G, T)
    log_seq = (delta.sum(-1) / _lengths(mask)).detach()             # (G,)
    log_tok = logp - logp.detach() + log_seq.unsqueeze(-1)          # (G, T)
    ratio = torch.exp(torch.where(mask > 0, log_tok, torch.zeros_like(log_tok)))
    value = ppo_clip(ratio, _token_adv(advantages), cfg.eps_low, cfg.eps_high)
    return Terms(value, ratio, torch.exp(log_seq))


def cispo(logp, logp_old, advantages, mask, cfg: Settings) -> Terms:
    """CISPO (MiniMax-M1 2506.13585, eqs. 4–5), per token:

        sg[clip(r_{i,t}, 1−ε_low, 1+ε_high)]·A_{i,t}·log π_θ(y_{i,t})    aggregated (1/Σ_i |y_i|) Σ_i Σ_t
        (no lower bound unless ε_low is set). The weight is capped, never zeroed: every token keeps a gradient.
    """
    ratio = torch.exp(_logratio(logp, logp_old, mask))  # (G, T)
    low = None if cfg.eps_low is None else 1 - cfg.eps_low
    weight = torch.clamp(ratio, low, 1 + cfg.eps_high).detach()
    logp_safe = torch.where(mask > 0, logp, torch.zeros_like(logp))
    return Terms(weight * _token_adv(advantages) * logp_safe, ratio, None)


def gmpo(logp, logp_old, advantages, mask, cfg: Settings) -> Terms:
    """GMPO (2507.20673, eq. 4), per sequence, clipping each token in log space, sign-aware:

        Δ̃_{i,t} = sgn(A_i)·min(sgn(A_i)·Δ_{i,t}, sgn(A_i)·clip(Δ_{i,t}, −ε, ε))
        ρ_i = exp((1/|y_i|) Σ_t Δ̃_{i,t}),   term ρ_i·A_i      aggregated (1/G) Σ_i
    """
    delta = _logratio(logp, logp_old, mask)                  # (G, T)
    adv = _seq_adv(advantages, mask)                         # (G,)
    sgn = torch.sign(adv).unsqueeze(-1)                      # (G, 1)
    clipped = sgn * torch.minimum(sgn * delta, sgn * torch.clamp(delta, -cfg.gmpo_eps, cfg.gmpo_eps))
    seq_ratio = torch.exp((clipped * mask).sum(-1) / _lengths(mask))  # (G,)
    return Terms(seq_ratio * adv, torch.exp(delta), seq_ratio)


def sapo(logp, logp_old, advantages, mask, cfg: Settings) -> Terms:
    """SAPO (2511.20347, eqs. 4–6), per token, a soft gate instead of a hard clip:

        f(r) = σ(τ·(r − 1))·4/τ,  τ = τ_pos if A > 0 else τ_neg;   term f(r_{i,t})·A_{i,t}
        aggregated (1/G) Σ_i (1/|y_i|) Σ_t.   Gradient weight 4·σ(1−σ)·r·A: equal to r·A at r = 1, fading away from it.
    """
    ratio = torch.exp(_logratio(logp, logp_old, mask))  # (G, T)
    adv = _token_adv(advantages)
    tau = torch.where(adv > 0, torch.full_like(adv, cfg.tau_pos), torch.full_like(adv, cfg.tau_neg))
    return Terms(torch.sigmoid(tau * (ratio - 1)) * (4 / tau) * adv, ratio, None)


# --------------------------------------------------------------------------- aggregation (a separate, named step)

AGGREGATIONS = {
    "seq-mean-token-mean": "(1/G) Σ_i (1/|y_i|) Σ_t",
    "token-mean": "(1/Σ_i |y_i|) Σ_i Σ_t",
    "seq-mean-token-sum-norm": "(1/(G·L_max)) Σ_i Σ_t",
    "seq-mean": "(1/G) Σ_i",
}


def aggregation_weights(mask: Tensor, mode: str, max_tokens: Optional[int] = None) -> Tensor:
    """w such that J = Σ w·term: (G, T) for token-level modes, (G,) for 'seq-mean'.

    G counts the responses with at least one unmasked token (masked-out responses take no part).
    """
    lengths = mask.sum(-1)                                 # (G,)
    n_seq = (lengths > 0).sum().clamp_min(1)
    if mode == "seq-mean":
        return (lengths > 0).to(mask.dtype) / n_seq        # (G,)
    if mode == "seq-mean-token-mean":
        return mask / (lengths.clamp_min(1).unsqueeze(-1) * n_seq)  # (G, T)
    if mode == "token-mean":
        return mask / mask.sum().clamp_min(1)
    if mode == "seq-mean-token-sum-norm":
        l_max = max_tokens if max_tokens is not None else int(lengths.max().item()) if lengths.numel() else 1
        return mask / (n_seq * max(l_max, 1))
    raise ValueError(f"unknown aggregation {mode!r}; valid: {', '.join(AGGREGATIONS)}")


def aggregate(value: Tensor, mask: Tensor, mode: str, max_tokens: Optional[int] = None) -> Tensor:
    """J = Σ w·term with the weights of `aggregation_weights`."""
    w = aggregation_weights(mask, mode, max_tokens)
    value = torch.where(w > 0, value, torch.zeros_like(value))
    return (value * w).sum()


# --------------------------------------------------------------------------- clip decisions and closed forms

def _ppo_decisions(ratio: Tensor, adv: Tensor, cfg: Settings, dual: bool = False) -> Tensor:
    """Which branch of min(r·A, clip(r)·A) zeroes a token's gradient (strict: at the bound both branches agree)."""
    codes = torch.where((adv > 0) & (ratio > 1 + cfg.eps_high), UPPER, NONE)
    codes = torch.where((adv < 0) & (ratio < 1 - cfg.eps_low), LOWER, codes)
    if dual:
        codes = torch.where((adv < 0) & (ratio > cfg.dual_clip_c), DUAL, codes)
    return codes


def clip_decisions(name: str, logp: Tensor, logp_old: Tensor, advantages: Tensor, mask: Tensor,
                   cfg: Settings) -> Tensor:
    """(G, T) codes: 0 none, 1 upper, 2 lower, 3 dual (see CLIP_NAMES). For GSPO, the sequence's decision on every token."""
    with torch.no_grad():
        delta = _logratio(logp, logp_old, mask)
        lengths = _lengths(mask)
        if name in ("grpo", "dapo", "dr_grpo", "dual_clip"):
            codes = _ppo_decisions(torch.exp(delta), _token_adv(advantages), cfg, dual=name == "dual_clip")
        elif name in ("gspo", "gspo_token"):
            s = torch.exp(delta.sum(-1) / lengths).unsqueeze(-1)                  # (G, 1)
            adv = _seq_adv(advantages, mask).unsqueeze(-1) if name == "gspo" else _token_adv(advantages)
            codes = _ppo_decisions(s, adv, cfg)
        elif name == "cispo":
            r = torch.exp(delta)
            codes = torch.where(r > 1 + cfg.eps_high, UPPER, NONE)
            if cfg.eps_low is not None:
                codes = torch.where(r < 1 - cfg.eps_low, LOWER, codes)
        elif name == "gmpo":
            adv = _seq_adv(advantages, mask).unsqueeze(-1)
            codes = torch.where((adv > 0) & (delta > cfg.gmpo_eps), UPPER, NONE)
            codes = torch.where((adv < 0) & (delta < -cfg.gmpo_eps), LOWER, codes)
        elif name == "sapo":
            codes = torch.zeros_like(delta, dtype=torch.long)
        else:
            raise KeyError(name)
        codes = codes.expand(logp.shape)
        return torch.where(mask > 0, codes, NONE)


def closed_form_grad(name: str, logp: Tensor, logp_old: Tensor, advantages: Tensor, mask: Tensor,
                     cfg: Settings, logp_ref: Optional[Tensor] = None, loss_mask: Optional[Tensor] = None,
                     codes: Optional[Tensor] = None) -> Tensor:
    """∂J/∂log π_θ(y_{i,t}) by hand: (aggregation weight) × (derivative of the token's or sequence's term).

        GRPO, DAPO, Dr.GRPO, Dual-Clip:  w_{i,t}·r·A            where not clipped, else 0
        GSPO:                            (1/G)·s_i·A_i/|y_i|     where the sequence is not clipped, else 0
        GSPO-token:                      w_{i,t}·s_i·A_{i,t}     where not clipped, else 0
        CISPO:                           w_{i,t}·clip(r)·A       (never 0)
        GMPO:                            (1/G)·ρ_i·A_i/|y_i|     where the token's log-ratio is not clipped, else 0
        SAPO:                            w_{i,t}·4σ(1−σ)·r·A     σ = σ(τ(r−1))
    plus the KL term −β·w_{i,t}·∂k/∂log π_θ. `codes` (from clip_decisions) may be passed to save recomputing them.
    """
    obj = OBJECTIVES[name]
    with torch.no_grad():
        if codes is None:
            codes = clip_decisions(name, logp, logp_old, advantages, mask, cfg)
        free = (codes == NONE).to(logp.dtype)
        delta = _logratio(logp, logp_old, mask)
        r = torch.exp(delta)
        lengths = _lengths(mask).unsqueeze(-1)
        adv_t = _token_adv(advantages)
        part = mask if loss_mask is None else loss_mask
        w = aggregation_weights(part, obj.aggregation, cfg.max_tokens)
        if name in ("grpo", "dapo", "dr_grpo", "dual_clip"):
            grad = w * free * r * adv_t
        elif name == "gspo":
            s = torch.exp(delta.sum(-1, keepdim=True) / lengths)
            grad = w.unsqueeze(-1) * free * s * _seq_adv(advantages, mask).unsqueeze(-1) / lengths
        elif name == "gspo_token":
            s = torch.exp(delta.sum(-1, keepdim=True) / lengths)
            grad = w * free * s * adv_t
        elif name == "cispo":
            low = None if cfg.eps_low is None else 1 - cfg.eps_low
            grad = w * torch.clamp(r, low, 1 + cfg.eps_high) * adv_t
        elif name == "gmpo":
            bounded = torch.where(codes == UPPER, cfg.gmpo_eps, torch.where(codes == LOWER, -cfg.gmpo_eps, delta))
            rho = torch.exp((bounded * mask).sum(-1, keepdim=True) / lengths)   # (G, 1)
            adv = _seq_adv(advantages, mask).unsqueeze(-1)
            grad = w.unsqueeze(-1) * free * rho * adv / lengths
        elif name == "sapo":
            tau = torch.where(adv_t > 0, torch.full_like(adv_t, cfg.tau_pos), torch.full_like(adv_t, cfg.tau_neg))
            sig = torch.sigmoid(tau * (r - 1))
            grad = w * 4 * sig * (1 - sig) * r * adv_t
        else:
            raise KeyError(name)
        if logp_ref is not None and cfg.beta:
            grad = grad - cfg.beta * kl_weights(part, obj, cfg) * kl_derivative(logp, logp_ref, cfg.kl)
        return torch.where(part > 0, grad.expand(logp.shape), torch.zeros_like(logp))


# --------------------------------------------------------------------------- registry and the fast path

@dataclass(frozen=True)
class Objective:
    name: str
    title: str
    paper: str
    fn: Callable[..., Terms]
    aggregation: str
    level: str                  # 'token' or 'sequence': where the clip acts
    has_seq_ratio: bool
    zeroes_clipped: bool        # True for the PPO family: a clipped token's gradient is exactly 0

    @property
    def formula(self) -> str:
        return (self.fn.__doc__ or "").strip()


OBJECTIVES: dict[str, Objective] = {o.name: o for o in (
    Objective("grpo", "GRPO", "DeepSeekMath, arXiv 2402.03300", grpo, "seq-mean-token-mean", "token", False, True),
    Objective("dual_clip", "Dual-Clip PPO", "Ye et al., arXiv 1912.09729", dual_clip, "seq-mean-token-mean",
              "token", False, True),
    Objective("dapo", "DAPO", "arXiv 2503.14476", dapo, "token-mean", "token", False, True),
    Objective("dr_grpo", "Dr.GRPO", "arXiv 2503.20783", dr_grpo, "seq-mean-token-sum-norm", "token", False, True),
    Objective("gspo", "GSPO", "arXiv 2507.18071", gspo, "seq-mean", "sequence", True, True),
    Objective("gspo_token", "GSPO-token", "arXiv 2507.18071 §4.3", gspo_token, "seq-mean-token-mean",
              "sequence", True, True),
    Objective("cispo", "CISPO", "MiniMax-M1, arXiv 2506.13585", cispo, "token-mean", "token", False, False),
    Objective("gmpo", "GMPO", "arXiv 2507.20673", gmpo, "seq-mean", "token", True, True),
    Objective("sapo", "SAPO", "arXiv 2511.20347", sapo, "seq-mean-token-mean", "token", False, False),
)}


def kl_weights(mask: Tensor, obj: Objective, cfg: Settings) -> Tensor:
    """Aggregation of the per-token KL: the objective's own token aggregation (GRPO's for sequence-level objectives)."""
    mode = "seq-mean-token-mean" if obj.aggregation == "seq-mean" else obj.aggregation
    return aggregation_weights(mask, mode, cfg.max_tokens)


def objective_value(name: str, logp: Tensor, logp_old: Tensor, advantages: Tensor, mask: Tensor, cfg: Settings,
                    logp_ref: Optional[Tensor] = None, loss_mask: Optional[Tensor] = None) -> tuple[Tensor, Terms]:
    """J (to maximise) and the terms it was aggregated from. cfg must be resolved (Settings.resolved()).

    mask marks the tokens that exist; loss_mask (default: mask) those that take part in the aggregation
    (DAPO's overlong filter and dynamic sampling take whole responses out).
    """
    obj = OBJECTIVES[name]
    mask = mask.to(logp.dtype)
    part = mask if loss_mask is None else loss_mask.to(logp.dtype)
    terms = obj.fn(logp, logp_old, advantages, mask, cfg)
    J = aggregate(terms.value, part, obj.aggregation, cfg.max_tokens)
    if logp_ref is not None and cfg.beta:
        kl = torch.where(part > 0, kl_estimate(logp, logp_ref, cfg.kl), torch.zeros_like(logp))
        J = J - cfg.beta * (kl * kl_weights(part, obj, cfg)).sum()
    return J, terms


def objective_loss(name: str, logp: Tensor, logp_old: Tensor, advantages: Tensor, mask: Tensor, cfg: Settings,
                   logp_ref: Optional[Tensor] = None) -> Tensor:
    """The fast path for training: loss = −J on batched (G, T) tensors with a mask; no per-token explanation.

    logp requires grad; logp_old, advantages ((G,) or (G, T)), mask and logp_ref do not.
    Padding positions must hold finite numbers (they are masked, never read as data).
    """
    J, _ = objective_value(name, logp, logp_old, advantages, mask, cfg, logp_ref)
    return -J
