"""DPPO-Binary-TV (arXiv 2602.04879; verl's policy loss `dppo_tv`): the trust region on the probability itself,
π − π_old, instead of on the ratio, with a truncated, detached importance ratio."""
from __future__ import annotations

import math

import torch

from .base import LOWER, NONE, UPPER, Objective, Step, Terms, Token, factor_step, logratio, n, token_adv


class DppoTv(Objective):
    name = "dppo_tv"
    title = "DPPO-TV"
    paper = "arXiv 2602.04879"
    color = "#AA4499"   # purple
    dash = "dashdot"
    aggregation = "token-mean"
    defaults = {"eps_low": 0.2, "eps_high": 0.2, "dppo_cap": 20.0}
    knobs = ("eps_low", "eps_high", "dppo_cap")
    reasons = {"upper": "rose by more than ε_high = {eh} in probability (π − π_old) with A > 0",
               "lower": "fell by more than ε_low = {el} in probability (π − π_old) with A < 0"}
    marks = {"upper": "▲ A > 0 and π − π_old is above ε_high: outside the trust region, policy gradient 0",
             "lower": "▼ A < 0 and π − π_old is below −ε_low: outside the trust region, policy gradient 0"}
    has_surrogate = False        # A·sg[min(r, C)]·log π·mask: only its gradient is the objective's
    clip_form = "probability difference"
    needs_logp_old = True
    ratio_only = False           # the region is on π − π_old = π_old·(r − 1): it depends on π_old, not on r alone
    nothing_marked = ("no token's probability moved past its trust region in the direction its advantage pushes "
                      "(π − π_old above ε_high = {eh} with A > 0, below −ε_low = −{el} with A < 0)")

    def terms(self, logp, logp_old, advantages, mask, cfg):
        """DPPO-Binary-TV (2602.04879; verl core_algos.compute_policy_loss_dppo_tv), per token:

            sg[min(r_{i,t}, C)]·A_{i,t}·log π_θ(y_{i,t})·m_{i,t},   m = 1 inside the trust region, else 0:
            A > 0: π_θ − π_old ≤ ε_high;   A ≤ 0: π_θ − π_old ≥ −ε_low      aggregated (1/Σ_i |y_i|) Σ_i Σ_t
            The ratio is truncated at C (default 20) and detached, the region mask detached: a token outside it gets
            gradient 0; inside, its gradient weight is min(r, C)·A.
        """
        ratio = logratio(logp, logp_old, mask).exp()  # (G, T)
        adv = token_adv(advantages)
        inside = self.inside(logp.detach(), logp_old, adv, cfg)
        logp_safe = torch.where(mask > 0, logp, torch.zeros_like(logp))
        weight = torch.clamp(ratio, max=cfg.dppo_cap).detach()
        return Terms(weight * adv * logp_safe * inside, ratio, None)

    @staticmethod
    def inside(logp, logp_old, adv, cfg):
        """1.0 inside the trust region on π − π_old (by the sign of A), else 0.0: (G, T)."""
        diff = logp.exp() - logp_old.exp()
        return torch.where(adv > 0, diff <= cfg.eps_high, diff >= -cfg.eps_low).to(logp.dtype)

    def clip_codes(self, delta, advantages, mask, cfg, logp_old=None):
        adv = token_adv(advantages)
        diff = logp_old.exp() * (delta.exp() - 1)            # π − π_old = π_old·(r − 1)
        codes = torch.where((adv > 0) & (diff > cfg.eps_high), UPPER, NONE)
        return torch.where((adv < 0) & (diff < -cfg.eps_low), LOWER, codes)   # (A = 0: no gradient to stop)

    def policy_grad(self, delta, advantages, mask, w, codes, cfg, logp_old=None):
        """w·min(r, C)·A inside the region, 0 outside."""
        return torch.where(codes == NONE, w * torch.clamp(delta.exp(), max=cfg.dppo_cap) * token_adv(advantages),
                           torch.zeros_like(delta))

    def clip_convention(self, cfg):
        return (f"trust region on π − π_old: above −ε_low = −{cfg.eps_low:g} (A ≤ 0), below ε_high = "
                f"{cfg.eps_high:g} (A > 0); detached ratio truncated at C = {cfg.dppo_cap:g}")

    def steps(self, tok: Token) -> list[Step]:
        cfg, r, A = tok.cfg, tok.r, tok.A
        p_old = math.exp(tok.logp_old)
        p = p_old * r
        diff = p - p_old
        inside = diff <= cfg.eps_high if A > 0 else diff >= -cfg.eps_low
        w = min(r, cfg.dppo_cap)
        g = tok.factor * w * A if inside else 0.0
        bound = (rf"\le \epsilon_{{high}} = {n(cfg.eps_high)}" if A > 0 else
                 rf"\ge -\epsilon_{{low}} = {n(-cfg.eps_low)}")
        return [Step("probability difference", rf"\pi_\theta - \pi_{{old}} = {n(p)} - {n(p_old)} = {n(diff)}", diff),
                Step("trust region (by the sign of A)",
                     rf"{n(diff)} {bound}\ ?\ \text{{{'inside' if inside else 'outside: policy gradient 0'}}}",
                     1.0 if inside else 0.0),
                Step("truncated ratio (stop-gradient)", rf"\mathrm{{sg}}[\min(r, C)] = \min({n(r)}, {n(cfg.dppo_cap)})"
                                                        rf" = {n(w)}", w),
                factor_step(tok),
                Step("policy gradient weight", rf"\text{{factor}} \cdot \min(r, C) \cdot A = {n(tok.factor)} \cdot "
                                               rf"{n(w)} \cdot {n(A)} = {n(g)}" if inside else
                     r"0 \text{ (outside the trust region)}", g)]

    def hover(self, tok: Token) -> str:
        p_old = math.exp(tok.logp_old)
        return (f"π − π_old = {p_old * tok.r - p_old:.6g}; weight sg[min(r, C)] = {min(tok.r, tok.cfg.dppo_cap):.6g}")

    # ------------------------------------------------------------------ in verl's and TRL's words
    def to_verl(self, cfg):
        return ({"policy_loss.loss_mode": "dppo_tv", "clip_ratio_low": cfg.eps_low, "clip_ratio_high": cfg.eps_high,
                 "clip_ratio_c": cfg.dppo_cap},
                ["verl's dppo_tv reads its ratio cap from clip_ratio_c, whose ActorConfig default is 3.0 (the code's "
                 "20.0 applies only when the key is absent): it is set here"])

    def from_verl(self, actor):
        if actor["policy_loss.loss_mode"] != "dppo_tv":
            return None
        return {"objective": self.name, "eps_low": actor["clip_ratio_low"], "eps_high": actor["clip_ratio_high"],
                "dppo_cap": actor["clip_ratio_c"]}, []

    def to_trl(self, cfg, loss_type):
        return {}, ["TRL 1.16 has no DPPO loss_type: no GRPOConfig runs this term"]


OBJECTIVE = DppoTv()
