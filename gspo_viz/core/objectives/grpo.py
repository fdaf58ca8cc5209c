"""GRPO (DeepSeekMath, arXiv 2402.03300): PPO's clipped surrogate per token, averaged per response, then per group."""
from __future__ import annotations

from .base import (FLOOR_OFF, PPO_MARKS, PPO_REASONS, NONE, Objective, Step, Terms, Token, decision_step, factor_step,
                   TRL_PPO_LOSSES, logratio, n, ppo_clip, ppo_codes, ppo_hover, ppo_steps, ppo_to_trl,
                   ppo_to_verl, token_adv)


class Grpo(Objective):
    name = "grpo"
    title = "GRPO"
    paper = "DeepSeekMath, arXiv 2402.03300"
    color = "#0072B2"   # blue
    dash = "solid"
    aggregation = "seq-mean-token-mean"
    defaults = {"eps_low": 0.2, "eps_high": 0.2}
    knobs = ("eps_low", "eps_high")
    reasons = PPO_REASONS
    marks = PPO_MARKS

    def terms(self, logp, logp_old, advantages, mask, cfg):
        """GRPO (DeepSeekMath 2402.03300, eq. 3), per token:

            min(r_{i,t}·A_i, clip(r_{i,t}, 1−ε_low, 1+ε_high)·A_i)      aggregated (1/G) Σ_i (1/|y_i|) Σ_t
        """
        ratio = logratio(logp, logp_old, mask).exp()  # (G, T)
        return Terms(ppo_clip(ratio, token_adv(advantages), cfg.eps_low, cfg.eps_high), ratio, None)

    def clip_codes(self, delta, advantages, mask, cfg):
        return ppo_codes(delta.exp(), token_adv(advantages), cfg)

    def policy_grad(self, delta, advantages, mask, w, codes, cfg):
        """w·r·A where the token is not clipped, else 0."""
        return w * (codes == NONE) * delta.exp() * token_adv(advantages)

    def steps(self, tok: Token) -> list[Step]:
        x, A = tok.r, tok.A
        free = tok.code == NONE
        g = tok.factor * x * A if free else 0.0
        return ppo_steps(tok, x, "r") + self.extra_steps(tok) + [decision_step(tok), factor_step(tok), Step(
            "policy gradient weight",
            rf"\text{{factor}} \cdot r \cdot A = {n(tok.factor)} \cdot {n(x)} \cdot {n(A)} = {n(g)}" if free
            else r"0 \text{ (clipped)}", g)]

    def extra_steps(self, tok: Token) -> list[Step]:
        return []

    def hover(self, tok: Token) -> str:
        return ppo_hover(tok, tok.r, "r")

    def to_verl(self, cfg):
        return ppo_to_verl(cfg)

    def from_verl(self, actor):
        if actor["policy_loss.loss_mode"] != "vanilla" or actor["clip_ratio_c"] < FLOOR_OFF:
            return None
        return {"objective": self.name, "eps_low": actor["clip_ratio_low"], "eps_high": actor["clip_ratio_high"]}, []

    def to_trl(self, cfg, loss_type):
        return ppo_to_trl(cfg, loss_type)

    def from_trl(self, kwargs):
        if kwargs["loss_type"] not in TRL_PPO_LOSSES or kwargs["importance_sampling_level"] != "token" \
                or kwargs["delta"] is not None:
            return None
        return {"objective": self.name, "eps_low": kwargs["epsilon"], "eps_high": kwargs["epsilon_high"]}, []


OBJECTIVE = Grpo()
