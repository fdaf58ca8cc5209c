"""VESPO (arXiv 2602.10693; TRL's loss_type "vespo"): each response's whole importance weight W_i = Π_t r_{i,t},
reshaped by a gamma-shaped φ(W) and detached, scales A·log π of every token; nothing is clipped."""
from __future__ import annotations

import math

import torch

from .base import NONE, Objective, Step, Terms, Token, factor_step, logratio, n, token_adv

LOG_W_MIN, LOG_W_MAX = math.log(1e-8), 20.0    # log W is kept in [log 1e-8, 20], as TRL's implementation keeps it
LOG_R_CLAMP = 20.0                             # and each token's log-ratio in [−20, 20] before the sum


class Vespo(Objective):
    name = "vespo"
    title = "VESPO"
    paper = "arXiv 2602.10693"
    color = "#661100"   # brown
    dash = "dot"
    aggregation = "token-mean"
    zeroes_clipped = False
    has_surrogate = False        # sg[φ(W)]·A·log π: only its gradient is the objective's
    ratio_only = False           # φ reads the whole response's W, not one token's ratio
    defaults = {"vespo_k_pos": 2.0, "vespo_lambda_pos": 3.0, "vespo_k_neg": 3.0, "vespo_lambda_neg": 2.0}
    knobs = ("vespo_k_pos", "vespo_lambda_pos", "vespo_k_neg", "vespo_lambda_neg")
    clip_form = "sequence weight"
    scales = "φ(W) = W^k·e^(λ(1 − W)) of its response's whole ratio W = Π_t r scales every token's A"
    nothing_marked = ("it has no clip; every token's gradient weight is φ(W)·A times its aggregation factor, with "
                      "φ(W) = W^k·e^(λ(1 − W)) of its response's whole ratio W = Π_t r")

    def terms(self, logp, logp_old, advantages, mask, cfg):
        """VESPO (2602.10693; TRL GRPOTrainer.get_gamma_weights), per token:

            sg[φ(W_i)]·A_{i,t}·log π_θ(y_{i,t}),   W_i = Π_t r_{i,t} = exp(Σ_t Δ_{i,t}),
            φ(W) = W^k·exp(λ·(1 − W)),   (k, λ) = (2, 3) for A ≥ 0 and (3, 2) for A < 0      aggregated
            (1/Σ_i |y_i|) Σ_i Σ_t.   φ(1) = 1; φ is largest at W = k/λ and falls to 0 for W → 0 and W → ∞, so a
            response the policy moved far from π_old (either way) teaches little; no token's gradient is zeroed.
        """
        adv = token_adv(advantages)
        phi = self.phi(logratio(logp, logp_old, mask).detach(), adv, mask, cfg)
        logp_safe = torch.where(mask > 0, logp, torch.zeros_like(logp))
        return Terms(phi * adv * logp_safe, logratio(logp, logp_old, mask).exp(), None)

    @staticmethod
    def log_w(delta, mask):
        """log W_i, (G, 1): the sum of the response's log-ratios, each kept in [−20, 20], kept in [log 1e-8, 20]."""
        s = (torch.clamp(delta, -LOG_R_CLAMP, LOG_R_CLAMP) * mask).sum(-1, keepdim=True)
        return torch.clamp(s, LOG_W_MIN, LOG_W_MAX)

    @classmethod
    def phi(cls, delta, adv, mask, cfg):
        """φ(W_i) by the sign of each token's A: (G, T) or (G, 1)."""
        log_w = cls.log_w(delta, mask)
        k = torch.where(adv >= 0, torch.full_like(adv, cfg.vespo_k_pos), torch.full_like(adv, cfg.vespo_k_neg))
        lam = torch.where(adv >= 0, torch.full_like(adv, cfg.vespo_lambda_pos),
                          torch.full_like(adv, cfg.vespo_lambda_neg))
        return torch.exp(lam + k * log_w - lam * log_w.exp())

    def clip_codes(self, delta, advantages, mask, cfg):
        return torch.full_like(delta, NONE, dtype=torch.long)

    def policy_grad(self, delta, advantages, mask, w, codes, cfg):
        """w·φ(W_i)·A (never 0 unless A is)."""
        adv = token_adv(advantages)
        return w * self.phi(delta, adv, mask, cfg) * adv

    def clip_convention(self, cfg):
        return (f"no clip: φ(W) = W^k·e^(λ(1 − W)) of the response's W = Π_t r, (k, λ) = ({cfg.vespo_k_pos:g}, "
                f"{cfg.vespo_lambda_pos:g}) for A ≥ 0, ({cfg.vespo_k_neg:g}, {cfg.vespo_lambda_neg:g}) for A < 0")

    @staticmethod
    def token_log_w(tok: Token) -> float:
        """log W_i of the token's response, kept as log_w keeps it (for the steps and the hover)."""
        return min(max(sum(min(max(d, -LOG_R_CLAMP), LOG_R_CLAMP) for d in tok.deltas), LOG_W_MIN), LOG_W_MAX)

    def steps(self, tok: Token) -> list[Step]:
        cfg, A = tok.cfg, tok.A
        log_w = self.token_log_w(tok)
        W = math.exp(log_w)
        k, lam = (cfg.vespo_k_pos, cfg.vespo_lambda_pos) if A >= 0 else (cfg.vespo_k_neg, cfg.vespo_lambda_neg)
        phi = math.exp(lam + k * log_w - lam * W)
        g = tok.factor * phi * A
        return [Step("the response's whole ratio", rf"W_i = \prod_t r_{{i,t}} = e^{{\sum_t \Delta_{{i,t}}}} = "
                                                   rf"e^{{{n(log_w)}}} = {n(W)}", W),
                Step("φ(W) (stop-gradient)", rf"\varphi(W_i) = W_i^{{{n(k)}}}\, e^{{{n(lam)}(1 - W_i)}} = "
                                             rf"{n(W)}^{{{n(k)}}} \cdot e^{{{n(lam)} \cdot {n(1 - W)}}} = {n(phi)}",
                     phi),
                factor_step(tok),
                Step("policy gradient weight (never zeroed)", rf"\text{{factor}} \cdot \varphi(W_i) \cdot A = "
                                                              rf"{n(tok.factor)} \cdot {n(phi)} \cdot {n(A)} = {n(g)}",
                     g)]

    def hover(self, tok: Token) -> str:
        return f"W_i = Π_t r = {math.exp(self.token_log_w(tok)):.6g} (the whole response's ratio)"

    # ------------------------------------------------------------------ in verl's and TRL's words
    def to_verl(self, cfg):
        return {}, ["verl 0.9.1 has no VESPO policy loss: no override runs this term"]

    def to_trl(self, cfg, loss_type):
        notes = [] if cfg.loss_agg_mode == "token-mean" else [
            f"TRL's vespo loss aggregates by token-mean, not by {cfg.loss_agg_mode}"]
        return {"loss_type": "vespo", "vespo_k_pos": cfg.vespo_k_pos, "vespo_lambda_pos": cfg.vespo_lambda_pos,
                "vespo_k_neg": cfg.vespo_k_neg, "vespo_lambda_neg": cfg.vespo_lambda_neg}, notes

    def from_trl(self, kwargs):
        if kwargs["loss_type"] != "vespo":
            return None
        return {"objective": self.name, "loss_agg_mode": "token-mean",
                **{k: kwargs[k] for k in self.knobs}}, []


OBJECTIVE = Vespo()
