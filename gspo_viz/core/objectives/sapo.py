"""SAPO (arXiv 2511.20347): a soft sigmoid gate on the ratio instead of a hard clip; no token is zeroed."""
from __future__ import annotations

import math

import torch

from .base import NONE, Objective, Step, Terms, Token, factor_step, logratio, n, token_adv


class Sapo(Objective):
    name = "sapo"
    title = "SAPO"
    paper = "arXiv 2511.20347"
    color = "#999933"   # olive
    dash = "solid"
    aggregation = "seq-mean-token-mean"
    zeroes_clipped = False
    defaults = {"tau_pos": 1.0, "tau_neg": 1.05}
    knobs = ("tau_pos", "tau_neg")
    clip_form = "soft gate"
    gate_name = "4σ(1−σ)"

    def terms(self, logp, logp_old, advantages, mask, cfg):
        """SAPO (2511.20347, eqs. 4–6), per token, a soft gate instead of a hard clip:

            f(r) = σ(τ·(r − 1))·4/τ,  τ = τ_pos if A > 0 else τ_neg;   term f(r_{i,t})·A_{i,t}
            aggregated (1/G) Σ_i (1/|y_i|) Σ_t.   Gradient weight 4·σ(1−σ)·r·A: equal to r·A at r = 1, fading away from it.
        """
        ratio = logratio(logp, logp_old, mask).exp()  # (G, T)
        adv = token_adv(advantages)
        tau = self.tau(adv, cfg)
        return Terms(torch.sigmoid(tau * (ratio - 1)) * (4 / tau) * adv, ratio, None)

    @staticmethod
    def tau(adv, cfg):
        return torch.where(adv > 0, torch.full_like(adv, cfg.tau_pos), torch.full_like(adv, cfg.tau_neg))

    def gate(self, delta, advantages, cfg):
        """4σ(1−σ) with σ = σ(τ(r − 1)): the factor SAPO puts on r·A (1 at r = 1)."""
        sig = torch.sigmoid(self.tau(token_adv(advantages), cfg) * (delta.exp() - 1))
        return 4 * sig * (1 - sig)

    def clip_codes(self, delta, advantages, mask, cfg):
        return torch.full_like(delta, NONE, dtype=torch.long)

    def policy_grad(self, delta, advantages, mask, w, codes, cfg):
        """w·4σ(1−σ)·r·A, σ = σ(τ(r−1))."""
        return w * self.gate(delta, advantages, cfg) * delta.exp() * token_adv(advantages)

    def clip_convention(self, cfg):
        return f"soft gate: τ_pos = {cfg.tau_pos:g}, τ_neg = {cfg.tau_neg:g} (no hard clip)"

    def steps(self, tok: Token) -> list[Step]:
        cfg, r, A = tok.cfg, tok.r, tok.A
        tau = cfg.tau_pos if A > 0 else cfg.tau_neg
        sig = 1 / (1 + math.exp(-tau * (r - 1)))
        f = sig * 4 / tau
        gate = 4 * sig * (1 - sig)
        g = tok.factor * gate * r * A
        return [Step("temperature", rf"\tau = \tau_{{{'pos' if A > 0 else 'neg'}}} = {n(tau)}", tau),
                Step("gate", rf"\sigma(\tau(r - 1)) = \sigma({n(tau)} \cdot {n(r - 1)}) = {n(sig)}", sig),
                Step("term", rf"f(r) A = \sigma \cdot \frac{{4}}{{\tau}} \cdot A = {n(f)} \cdot {n(A)} = {n(f * A)}",
                     f * A),
                Step("soft gate weight", rf"4\sigma(1-\sigma) = {n(gate)}", gate),
                factor_step(tok),
                Step("policy gradient weight", rf"\text{{factor}} \cdot 4\sigma(1-\sigma) \cdot r \cdot A = "
                                               rf"{n(tok.factor)} \cdot {n(gate)} \cdot {n(r)} \cdot {n(A)} = {n(g)}", g)]

    def hover(self, tok: Token) -> str:
        cfg, A = tok.cfg, tok.A
        tau = cfg.tau_pos if A > 0 else cfg.tau_neg
        sig = 1 / (1 + math.exp(-tau * (tok.r - 1)))
        return f"gate 4σ(1−σ) = {4 * sig * (1 - sig):.6g} with σ = σ({tau:g}·(r − 1)) = {sig:.6g}"

    def to_verl(self, cfg):
        notes = [] if cfg.loss_agg_mode == "seq-mean-token-mean" else [
            f"verl's sapo loss aggregates by seq-mean-token-mean whatever loss_agg_mode says, not by "
            f"{cfg.loss_agg_mode}"]
        return {"policy_loss.loss_mode": "sapo", "tau_pos": cfg.tau_pos, "tau_neg": cfg.tau_neg}, notes

    def from_verl(self, actor):
        if actor["policy_loss.loss_mode"] != "sapo":
            return None
        return {"objective": self.name, "tau_pos": actor["tau_pos"], "tau_neg": actor["tau_neg"],
                "loss_agg_mode": "seq-mean-token-mean"}, []

    def to_trl(self, cfg, loss_type):
        notes = [] if cfg.loss_agg_mode == "seq-mean-token-mean" else [
            f"TRL's sapo loss aggregates by seq-mean-token-mean, not by {cfg.loss_agg_mode}"]
        return {"loss_type": "sapo", "sapo_temperature_pos": cfg.tau_pos, "sapo_temperature_neg": cfg.tau_neg}, notes

    def from_trl(self, kwargs):
        if kwargs["loss_type"] != "sapo":
            return None
        return {"objective": self.name, "tau_pos": kwargs["sapo_temperature_pos"],
                "tau_neg": kwargs["sapo_temperature_neg"], "loss_agg_mode": "seq-mean-token-mean"}, []


OBJECTIVE = Sapo()
