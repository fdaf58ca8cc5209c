"""GMPO (arXiv 2507.20673): a geometric mean of token ratios, each clipped in log space by the sign of A."""
from __future__ import annotations

import torch

from .base import LOWER, NONE, UPPER, Objective, Step, Terms, Token, decision_step, factor_step, lengths, logratio, n, \
    seq_adv


class Gmpo(Objective):
    name = "gmpo"
    title = "GMPO"
    paper = "arXiv 2507.20673"
    color = "#000000"   # black
    dash = "longdashdot"
    aggregation = "seq-mean"
    seq_ratio_symbol = "ρ"
    per_token_advantages = False
    defaults = {"gmpo_eps": 0.4}
    knobs = ("gmpo_eps",)
    reasons = {"upper": "had a log-ratio above +{eps} with A > 0", "lower": "had a log-ratio below −{eps} with A < 0"}
    marks = {"upper": "▲ A > 0 and the log-ratio is above +ε: held at +ε in the geometric mean, policy gradient 0",
             "lower": "▼ A < 0 and the log-ratio is below −ε: held at −ε in the geometric mean, policy gradient 0"}
    effect = "policy gradient 0 (held at ±ε in the geometric mean)"
    clip_form = "log-space"
    nothing_marked = "no log-ratio is beyond ±{eps} in the direction its advantage pushes"

    def terms(self, logp, logp_old, advantages, mask, cfg):
        """GMPO (2507.20673, eq. 4), per sequence, clipping each token in log space, sign-aware:

            Δ̃_{i,t} = sgn(A_i)·min(sgn(A_i)·Δ_{i,t}, sgn(A_i)·clip(Δ_{i,t}, −ε, ε))
            ρ_i = exp((1/|y_i|) Σ_t Δ̃_{i,t}),   term ρ_i·A_i      aggregated (1/G) Σ_i
        """
        delta = logratio(logp, logp_old, mask)                   # (G, T)
        adv = seq_adv(advantages, mask)                          # (G,)
        rho = self.rho(delta, adv, mask, cfg)                    # (G,)
        return Terms(rho * adv, delta.exp(), rho)

    @staticmethod
    def rho(delta, adv, mask, cfg):
        sgn = torch.sign(adv).unsqueeze(-1)                      # (G, 1)
        clipped = sgn * torch.minimum(sgn * delta, sgn * torch.clamp(delta, -cfg.gmpo_eps, cfg.gmpo_eps))
        return ((clipped * mask).sum(-1) / lengths(mask)).exp()  # (G,)

    def clip_codes(self, delta, advantages, mask, cfg):
        adv = seq_adv(advantages, mask).unsqueeze(-1)
        codes = torch.where((adv > 0) & (delta > cfg.gmpo_eps), UPPER, NONE)
        return torch.where((adv < 0) & (delta < -cfg.gmpo_eps), LOWER, codes)

    def policy_grad(self, delta, advantages, mask, w, codes, cfg):
        """(1/G)·ρ_i·A_i/|y_i| where the token's log-ratio is not clipped, else 0."""
        adv = seq_adv(advantages, mask)
        rho = self.rho(delta, adv, mask, cfg).unsqueeze(-1)      # (G, 1)
        return w.unsqueeze(-1) * (codes == NONE) * rho * adv.unsqueeze(-1) / lengths(mask).unsqueeze(-1)

    def clip_convention(self, cfg):
        return f"clip: log-ratio clipped to [−{cfg.gmpo_eps:g}, {cfg.gmpo_eps:g}] by the sign of A"

    def steps(self, tok: Token) -> list[Step]:
        eps, A = tok.cfg.gmpo_eps, tok.A
        sgn = (A > 0) - (A < 0)
        clipped = [sgn * min(sgn * d, sgn * min(max(d, -eps), eps)) for d in tok.deltas]
        rho = tok.s
        free = tok.code == NONE
        g = tok.factor * rho * A / tok.L if free else 0.0
        return [Step("sign-aware clip of this token's log-ratio",
                     rf"\tilde\Delta = \mathrm{{sgn}}(A)\min(\mathrm{{sgn}}(A)\Delta,\ \mathrm{{sgn}}(A)\,"
                     rf"\mathrm{{clip}}(\Delta, -{n(eps)}, {n(eps)})) = {n(clipped[tok.t])}", clipped[tok.t]),
                Step("geometric-mean ratio", rf"\rho_i = \exp\big(\tfrac{{1}}{{{tok.L}}}\sum_t \tilde\Delta_t\big) = "
                                             rf"\exp({n(sum(clipped) / tok.L)}) = {n(rho)}", rho),
                Step("term", rf"\rho_i A_i = {n(rho)} \cdot {n(A)} = {n(rho * A)}", rho * A),
                decision_step(tok), factor_step(tok),
                Step("policy gradient weight",
                     rf"\text{{factor}} \cdot \frac{{\rho_i A_i}}{{|y_i|}} = {n(tok.factor)} \cdot {n(rho)} \cdot "
                     rf"{n(A)} / {tok.L} = {n(g)}" if free else r"0 \text{ (this token's log-ratio is clipped)}", g)]

    def hover(self, tok: Token) -> str:
        return f"ρ_i = {tok.s:.6g} (log-ratio clipped to ±{tok.cfg.gmpo_eps:g} by the sign of A)"

    def to_verl(self, cfg):
        notes = [] if cfg.loss_agg_mode == "seq-mean" else [
            f"verl's geo_mean loss averages over responses whatever loss_agg_mode says, not by {cfg.loss_agg_mode}"]
        return {"policy_loss.loss_mode": "geo_mean", "clip_ratio_low": cfg.gmpo_eps, "clip_ratio_high": cfg.gmpo_eps,
                }, notes

    def from_verl(self, actor):
        if actor["policy_loss.loss_mode"] != "geo_mean":
            return None
        notes = [] if actor["clip_ratio_low"] == actor["clip_ratio_high"] else [
            f"GMPO here clips the log-ratio to ±ε with one ε: clip_ratio_low = {actor['clip_ratio_low']:g} is used, "
            f"clip_ratio_high = {actor['clip_ratio_high']:g} is not"]
        return {"objective": self.name, "gmpo_eps": actor["clip_ratio_low"], "loss_agg_mode": "seq-mean"}, notes

    def to_trl(self, cfg, loss_type):
        return {}, ["TRL 1.16 has no GMPO loss_type: no GRPOConfig runs this term"]


OBJECTIVE = Gmpo()
