"""What every objective declares (the Objective base class) and the pieces several objectives share.

Notation (all tensors padded to (G, T) with a 0/1 `mask`):
    Δ_{i,t} = log π_θ(y_{i,t}) − log π_old(y_{i,t})      token log-ratio
    r_{i,t} = exp(Δ_{i,t})                               token ratio
    s_i     = exp((1/|y_i|) Σ_t Δ_{i,t})                  GSPO's sequence ratio
J is maximised; the loss is −J.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from ..settings import Settings
from .libraries import TRL_PPO_LOSSES  # noqa: F401 (the objectives' mappings import it from here)

NONE, UPPER, LOWER, DUAL = 0, 1, 2, 3
CLIP_NAMES = ("none", "upper", "lower", "dual")


@dataclass
class Terms:
    value: Tensor                 # (G, T) per-token terms, or (G,) per-sequence terms, before aggregation
    ratio: Tensor                 # (G, T) the ratio each token's term uses
    seq_ratio: Optional[Tensor]   # (G,) the sequence ratio, for objectives that have one


@dataclass
class Step:
    """One line of a token's computation: what it is, the formula with the numbers filled in, and its value."""
    label: str
    latex: str
    value: float


@dataclass(frozen=True)
class Token:
    """One token's numbers, as an objective's formula steps and hover text need them (indices from 0)."""
    i: int
    t: int
    deltas: tuple[float, ...]   # Δ of every token of the response
    A: float                    # this token's advantage
    s: Optional[float]          # the objective's sequence ratio of the response (None if it has none)
    code: int                   # this token's clip decision (CLIP_NAMES)
    factor: float               # its aggregation weight (the response's, for per-sequence terms)
    factor_latex: str
    cfg: Settings               # resolved
    logp_old: Optional[float] = None   # log π_old of this token (objectives whose rule reads π itself: needs_logp_old)

    @property
    def L(self) -> int:
        return len(self.deltas)

    @property
    def delta(self) -> float:
        return self.deltas[self.t]

    @property
    def r(self) -> float:
        return math.exp(self.delta)


def n(x: float) -> str:
    """A number for a formula: 6 significant digits, negative numbers in parentheses."""
    s = f"{x:.6g}"
    return f"({s})" if x < 0 else s


# --------------------------------------------------------------------------- shared tensor pieces

def logratio(logp: Tensor, logp_old: Tensor, mask: Tensor) -> Tensor:
    """Δ = log π_θ − log π_old, set to 0 on padding so nothing there can overflow."""
    return torch.where(mask > 0, logp - logp_old, torch.zeros_like(logp))  # (G, T)


def lengths(mask: Tensor) -> Tensor:
    return mask.sum(dim=-1).clamp_min(1)  # (G,)


def token_adv(advantages: Tensor) -> Tensor:
    return advantages.unsqueeze(-1) if advantages.dim() == 1 else advantages  # (G, 1) or (G, T)


def seq_adv(advantages: Tensor, mask: Tensor) -> Tensor:
    """One advantage per response: as given if (G,), else the masked mean of (G, T)."""
    if advantages.dim() == 1:
        return advantages
    return (advantages * mask).sum(-1) / lengths(mask)  # (G,)


def ppo_clip(ratio: Tensor, adv: Tensor, eps_low: float, eps_high: float) -> Tensor:
    """PPO's clipped surrogate: min(r·A, clip(r, 1−ε_low, 1+ε_high)·A)."""
    return torch.minimum(ratio * adv, torch.clamp(ratio, 1 - eps_low, 1 + eps_high) * adv)


def ppo_codes(ratio: Tensor, adv: Tensor, cfg: Settings) -> Tensor:
    """Which branch of min(r·A, clip(r)·A) zeroes a token's gradient (strict: at the bound both branches agree)."""
    codes = torch.where((adv > 0) & (ratio > 1 + cfg.eps_high), UPPER, NONE)
    return torch.where((adv < 0) & (ratio < 1 - cfg.eps_low), LOWER, codes)


PPO_REASONS = {
    "upper": "rose above 1 + ε_high = {hi} with A > 0",
    "lower": "fell below 1 − ε_low = {lo} with A < 0",
}
NO_FLOOR = 1e9   # verl's vanilla policy loss always floors an A < 0 term at clip_ratio_c·A: this c never binds
FLOOR_OFF = 1e6  # read back from verl, a clip_ratio_c at least this large is taken as no floor


def ppo_to_verl(cfg: Settings, c: float = NO_FLOOR) -> tuple[dict, list[str]]:
    """verl's vanilla loss with ε_low, ε_high and Dual-Clip's c (never binding unless given)."""
    notes = [] if c != NO_FLOOR else [f"verl's vanilla loss always applies Dual-Clip's floor at clip_ratio_c (3 by "
                                      f"default); clip_ratio_c={NO_FLOOR:g} never binds, which is this objective"]
    return {"policy_loss.loss_mode": "vanilla", "clip_ratio_low": cfg.eps_low, "clip_ratio_high": cfg.eps_high,
            "clip_ratio_c": c}, notes


def ppo_to_trl(cfg: Settings, loss_type: Optional[str], **extra) -> tuple[dict, list[str]]:
    """TRL's PPO-clip losses (grpo, dapo, dr_grpo, luspo) with ε_low as epsilon and ε_high as epsilon_high."""
    if loss_type is None:
        return {}, [f"TRL 1.16 has no PPO-clip loss_type that aggregates by {cfg.loss_agg_mode}"]
    return {"loss_type": loss_type, "epsilon": cfg.eps_low, "epsilon_high": cfg.eps_high} | extra, []


PPO_MARKS = {
    "upper": "▲ A > 0 and the ratio is above 1 + ε_high: policy gradient 0",
    "lower": "▼ A < 0 and the ratio is below 1 − ε_low: policy gradient 0",
}


def ppo_steps(tok: Token, x: float, sym: str, extra: Optional[list[Step]] = None) -> list[Step]:
    """Clip bounds → clipped ratio → the min, for the ratio x (r or s) the clip acts on."""
    cfg = tok.cfg
    A = tok.A
    lo_b, hi_b = 1 - cfg.eps_low, 1 + cfg.eps_high
    clipped = min(max(x, lo_b), hi_b)
    term = min(x * A, clipped * A)
    return [
        Step("clip bounds", rf"[1 - \epsilon_{{low}}, 1 + \epsilon_{{high}}] = [{n(lo_b)}, {n(hi_b)}]", hi_b),
        Step("clipped ratio", rf"\mathrm{{clip}}({sym}, {n(lo_b)}, {n(hi_b)}) = {n(clipped)}", clipped),
        Step("the min", rf"\min({sym}A, \mathrm{{clip}}({sym})A) = \min({n(x)} \cdot {n(A)},\ "
                        rf"{n(clipped)} \cdot {n(A)}) = {n(term)}", term),
    ] + (extra or [])


def decision_step(tok: Token) -> Step:
    name = CLIP_NAMES[tok.code]
    free = tok.code == NONE
    return Step("clip decision", rf"\text{{{name}}}" + (r"\text{: the gradient flows}" if free else
                                                        r"\text{: this branch is constant, policy gradient } 0"),
                1.0 if free else 0.0)


def factor_step(tok: Token) -> Step:
    return Step("aggregation factor", tok.factor_latex + f" = {n(tok.factor)}", tok.factor)


def ppo_hover(tok: Token, x: float, sym: str) -> str:
    cfg = tok.cfg
    lo_b, hi_b = 1 - cfg.eps_low, 1 + cfg.eps_high
    c = min(max(x, lo_b), hi_b)
    A = tok.A
    head = f"s_i = {x:.6g}<br>" if sym == "s" else ""
    return (f"{head}min({sym}·A, clip({sym}, {lo_b:g}, {hi_b:g})·A) = min({x * A:.6g}, {c * A:.6g}) = "
            f"{min(x * A, c * A):.6g}")


# --------------------------------------------------------------------------- the base class

class Objective:
    """One objective, declared in one place: its term, clip rule, closed-form gradient, formula steps, the words its
    sentences and legend use, its defaults and knobs, its title, paper and colour.

    Subclasses set the class attributes and implement `terms`, `clip_codes`, `policy_grad`, `steps` and `hover`.
    """

    name: str = ""
    title: str = ""
    paper: str = ""
    color: str = "#444444"
    dash: str = "solid"
    aggregation: str = "seq-mean-token-mean"   # verl's loss_agg_mode of the paper
    level: str = "token"                       # the ratio the clip acts on: 'token' (r_{i,t}) or 'sequence' (s_i)
    seq_ratio_symbol: Optional[str] = None     # 's' or 'ρ' when the objective has a sequence ratio
    per_token_advantages: bool = True          # False: one advantage per response (per-sequence terms)
    zeroes_clipped: bool = True                # a marked token's policy gradient is exactly 0
    defaults: dict = {}                        # knob defaults (Settings.resolved)
    knobs: tuple[str, ...] = ()                # the knobs this objective reads, besides the common ones
    reasons: dict[str, str] = {}               # clip name → why a token got that mark ({hi}, {lo}, {c}, {eps}:
                                               # views.style.bounds)
    marks: dict[str, str] = {}                 # clip name → what the mark means (the legend)
    effect: str = "policy gradient 0"          # what a mark does to the token
    has_surrogate: bool = True                 # its term is a surrogate worth plotting against the ratio
    clip_form: str = "ppo"                     # 'ppo': min(x·A, clip(x, 1−ε_low, 1+ε_high)·A) on x = r or s
    nothing_marked: str = ("no {x} is past a bound in the direction its advantage pushes (above 1 + ε_high = {hi} "
                           "with A > 0, below 1 − ε_low = {lo} with A < 0)")
    unmarked_note: str = ""                    # what every unmarked token shares, when the objective says so
    gate_name: str = ""                        # a soft objective's gate, e.g. 4σ(1−σ)
    scales: str = ""                           # without marks or gate: what scales every token (the legend)
    needs_logp_old: bool = False               # clip_codes and policy_grad also take logp_old= (π − π_old rules)
    ratio_only: bool = True                    # its term is a function of the token's (or response's) ratio alone,
    #                                            so the Clip Explorer can draw it against the ratio

    @property
    def per_sequence_terms(self) -> bool:
        """One term per response (its paper aggregates with 'seq-mean'), not one per token."""
        return self.aggregation == "seq-mean"

    @property
    def has_seq_ratio(self) -> bool:
        return self.seq_ratio_symbol is not None

    @property
    def formula(self) -> str:
        return (type(self).terms.__doc__ or "").strip()

    # ------------------------------------------------------------------ the math
    def terms(self, logp: Tensor, logp_old: Tensor, advantages: Tensor, mask: Tensor, cfg: Settings) -> Terms:
        """logp, logp_old, mask: (G, T); advantages (G,) or (G, T). Returns the terms before aggregation."""
        raise NotImplementedError

    def clip_codes(self, delta: Tensor, advantages: Tensor, mask: Tensor, cfg: Settings) -> Tensor:
        """(G, T) or broadcastable codes from Δ (G, T): NONE, UPPER, LOWER or DUAL."""
        raise NotImplementedError

    def policy_grad(self, delta: Tensor, advantages: Tensor, mask: Tensor, w: Tensor, codes: Tensor,
                    cfg: Settings) -> Tensor:
        """∂J_policy/∂log π_θ(y_{i,t}) by hand, given the aggregation weights w ((G, T), or (G,) for per-sequence
        terms) and the clip codes: (G, T), before the KL term."""
        raise NotImplementedError

    # ------------------------------------------------------------------ the words
    def steps(self, tok: Token) -> list[Step]:
        """The steps from the token ratio to the policy gradient weight, numbers filled in; the last step's value
        is the token's policy gradient weight."""
        raise NotImplementedError

    def hover(self, tok: Token) -> str:
        """The token's term in one line of numbers (hover text)."""
        raise NotImplementedError

    def clip_convention(self, cfg: Settings) -> str:
        low = "no lower bound" if cfg.eps_low is None else f"1 − ε_low = {1 - cfg.eps_low:g}"
        where = " (on the sequence ratio s_i)" if self.level == "sequence" else " (per token)"
        return f"clip range: {low}, 1 + ε_high = {1 + cfg.eps_high:g}{where}"

    def gate(self, delta: Tensor, advantages: Tensor, cfg: Settings) -> Optional[Tensor]:
        """A soft objective's per-token gate (its gradient weight relative to r·A), else None."""
        return None

    # ------------------------------------------------------------------ in verl's and TRL's words (scenarios/bridge.py)
    # The generic knobs (β, KL, advantages, loss_agg_mode, L_max, overlong, dynamic sampling) are mapped by the
    # bridge; an objective maps its own term: which verl policy loss and TRL loss_type run it, and its knobs.
    def to_verl(self, cfg: Settings) -> tuple[dict, list[str]]:
        """(actor keys relative to actor_rollout_ref.actor, notes) that run this term in verl 0.9."""
        raise NotImplementedError

    def from_verl(self, actor: dict) -> Optional[tuple[dict, list[str]]]:
        """The settings (and notes) this objective reads from verl's actor config (verl's defaults filled in), if
        that config runs this objective's term and the registry should name this objective for it; else None."""
        return None

    def to_trl(self, cfg: Settings, loss_type: Optional[str]) -> tuple[dict, list[str]]:
        """(GRPOConfig keywords, notes) that run this term in TRL 1.16; `loss_type` is the bridge's choice for the
        run's loss_agg_mode among TRL's PPO-clip losses (None when TRL has none for it)."""
        raise NotImplementedError

    def from_trl(self, kwargs: dict) -> Optional[tuple[dict, list[str]]]:
        """As from_verl, for GRPOConfig keywords (TRL's defaults filled in)."""
        return None
