"""CISPO (MiniMax-M1, arXiv 2506.13585): a capped, detached importance weight times A·log π; no token is zeroed."""
from __future__ import annotations

import torch

from ..settings import SettingsError
from .base import LOWER, NONE, UPPER, Objective, Step, Terms, Token, factor_step, logratio, n, token_adv


class Cispo(Objective):
    name = "cispo"
    title = "CISPO"
    paper = "MiniMax-M1, arXiv 2506.13585"
    color = "#882255"   # wine
    dash = "longdash"
    aggregation = "token-mean"
    zeroes_clipped = False
    has_surrogate = False       # A·sg[w]·log π is not a function of the ratio to compare: only its gradient is
    defaults = {"eps_low": None, "eps_high": 0.2}
    knobs = ("eps_low", "eps_high")
    reasons = {"upper": "rose above 1 + ε_high = {hi}", "lower": "fell below 1 − ε_low = {lo}"}
    marks = {"upper": "▲ the ratio is above 1 + ε_high, whatever A's sign: its weight is capped at 1 + ε_high, "
                      "the gradient still flows",
             "lower": "▼ the ratio is below 1 − ε_low (only when ε_low is set), whatever A's sign: its weight is "
                      "raised to 1 − ε_low, the gradient still flows"}
    effect = "weight capped at the bound, gradient still flows"
    clip_form = "capped weight"
    nothing_marked = "no ratio is outside the cap (above 1 + ε_high = {hi})"

    def terms(self, logp, logp_old, advantages, mask, cfg):
        """CISPO (MiniMax-M1 2506.13585, eqs. 4–5), per token:

            sg[clip(r_{i,t}, 1−ε_low, 1+ε_high)]·A_{i,t}·log π_θ(y_{i,t})    aggregated (1/Σ_i |y_i|) Σ_i Σ_t
            (no lower bound unless ε_low is set). The weight is capped, never zeroed: every token keeps a gradient.
        """
        ratio = logratio(logp, logp_old, mask).exp()  # (G, T)
        weight = self.weight(ratio, cfg).detach()
        logp_safe = torch.where(mask > 0, logp, torch.zeros_like(logp))
        return Terms(weight * token_adv(advantages) * logp_safe, ratio, None)

    @staticmethod
    def weight(ratio, cfg):
        return torch.clamp(ratio, None if cfg.eps_low is None else 1 - cfg.eps_low, 1 + cfg.eps_high)

    def clip_codes(self, delta, advantages, mask, cfg):
        r = delta.exp()
        codes = torch.where(r > 1 + cfg.eps_high, UPPER, NONE)
        return codes if cfg.eps_low is None else torch.where(r < 1 - cfg.eps_low, LOWER, codes)

    def policy_grad(self, delta, advantages, mask, w, codes, cfg):
        """w·clip(r)·A (never 0)."""
        return w * self.weight(delta.exp(), cfg) * token_adv(advantages)

    def steps(self, tok: Token) -> list[Step]:
        cfg, r, A = tok.cfg, tok.r, tok.A
        low = 0.0 if cfg.eps_low is None else 1 - cfg.eps_low
        w = min(max(r, low), 1 + cfg.eps_high)
        low_text = r"\text{no lower bound}" if cfg.eps_low is None else n(low)
        g = tok.factor * w * A
        return [Step("capped IS weight (stop-gradient)", rf"\hat r = \mathrm{{sg}}[\mathrm{{clip}}(r, {low_text}, "
                                                         rf"{n(1 + cfg.eps_high)})] = {n(w)}", w),
                Step("term", rf"\hat r \cdot A \cdot \log\pi_\theta \text{{, so }} \partial/\partial\log\pi_\theta = "
                             rf"\hat r \cdot A = {n(w)} \cdot {n(A)} = {n(w * A)}", w * A),
                factor_step(tok),
                Step("policy gradient weight (never zeroed)", rf"\text{{factor}} \cdot \hat r \cdot A = {n(tok.factor)}"
                                                              rf" \cdot {n(w)} \cdot {n(A)} = {n(g)}", g)]

    def hover(self, tok: Token) -> str:
        cfg = tok.cfg
        low = 0.0 if cfg.eps_low is None else 1 - cfg.eps_low
        return f"weight sg[clip(r)] = {min(max(tok.r, low), 1 + cfg.eps_high):.6g} (never zeroed)"

    def to_verl(self, cfg):
        notes = [] if cfg.eps_low is not None else [
            "clip_ratio_low=1.0 puts verl's lower bound 1 − clip_ratio_low at 0: no lower bound, as here"]
        return {"policy_loss.loss_mode": "cispo", "clip_ratio_low": 1.0 if cfg.eps_low is None else cfg.eps_low,
                "clip_ratio_high": cfg.eps_high}, notes

    def from_verl(self, actor):
        if actor["policy_loss.loss_mode"] != "cispo":
            return None
        low = actor["clip_ratio_low"]
        return {"objective": self.name, "eps_low": None if low >= 1 else low, "eps_high": actor["clip_ratio_high"]}, []

    def to_trl(self, cfg, loss_type):
        notes = ["TRL's cispo caps the ratio at epsilon_high itself (ScaleRL's ε_max), not at 1 + epsilon_high: "
                 f"epsilon_high = 1 + ε_high = {1 + cfg.eps_high:g}"]
        if cfg.eps_low is not None:
            notes.append(f"TRL's cispo has no lower bound: ε_low = {cfg.eps_low:g} has no counterpart")
        if cfg.loss_agg_mode != "token-mean":
            notes.append(f"TRL's cispo loss aggregates by token-mean, not by {cfg.loss_agg_mode}")
        return {"loss_type": "cispo", "epsilon_high": 1 + cfg.eps_high}, notes

    def from_trl(self, kwargs):
        if kwargs["loss_type"] != "cispo":
            return None
        if kwargs["epsilon_high"] <= 1:
            raise SettingsError("epsilon_high", f"TRL's cispo caps the ratio at epsilon_high itself (e.g. 5, "
                                                f"ScaleRL's ε_max); {kwargs['epsilon_high']:g} <= 1 would cap every "
                                                "ratio below 1")
        return {"objective": self.name, "eps_low": None, "eps_high": float(f"{kwargs['epsilon_high'] - 1:.12g}"),
                "loss_agg_mode": "token-mean"}, []


OBJECTIVE = Cispo()
