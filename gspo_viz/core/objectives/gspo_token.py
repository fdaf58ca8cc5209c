"""GSPO-token (arXiv 2507.18071 §4.3): GSPO's sequence ratio as each token's value, with per-token advantages."""
from __future__ import annotations

import torch

from .base import (NONE, TRL_PPO_LOSSES, Objective, Step, Terms, Token, decision_step, factor_step, lengths, logratio,
                   n, ppo_clip, ppo_codes, ppo_hover, ppo_steps, token_adv)
from .gspo import mean_logratio_step, sequence_ratio


class GspoToken(Objective):
    name = "gspo_token"
    title = "GSPO-token"
    paper = "arXiv 2507.18071 §4.3"
    color = "#E69F00"   # orange
    dash = "dash"
    aggregation = "seq-mean-token-mean"
    level = "sequence"
    seq_ratio_symbol = "s"
    defaults = {"eps_low": 3e-4, "eps_high": 4e-4}
    knobs = ("eps_low", "eps_high")
    reasons = {"upper": "whose s_i rose above 1 + ε_high = {hi} with A > 0",
               "lower": "whose s_i fell below 1 − ε_low = {lo} with A < 0"}
    marks = {"upper": "▲ A_{i,t} > 0 and the response's s_i is above 1 + ε_high: policy gradient 0",
             "lower": "▼ A_{i,t} < 0 and the response's s_i is below 1 − ε_low: policy gradient 0"}

    def terms(self, logp, logp_old, advantages, mask, cfg):
        """GSPO-token (2507.18071, eqs. 13–14), per token:

            s_{i,t} = sg[s_i]·π_θ(y_{i,t}) / sg[π_θ(y_{i,t})]   (value s_i, gradient of log π_θ(y_{i,t}))
            min(s_{i,t}·A_{i,t}, clip(s_{i,t}, 1−ε_low, 1+ε_high)·A_{i,t})      aggregated (1/G) Σ_i (1/|y_i|) Σ_t
        """
        delta = logratio(logp, logp_old, mask)                          # (G, T)
        log_seq = (delta.sum(-1) / lengths(mask)).detach()              # (G,)
        log_tok = logp - logp.detach() + log_seq.unsqueeze(-1)          # (G, T)
        ratio = torch.where(mask > 0, log_tok, torch.zeros_like(log_tok)).exp()
        value = ppo_clip(ratio, token_adv(advantages), cfg.eps_low, cfg.eps_high)
        return Terms(value, ratio, log_seq.exp())

    def clip_codes(self, delta, advantages, mask, cfg):
        return ppo_codes(sequence_ratio(delta, mask).unsqueeze(-1), token_adv(advantages), cfg)

    def policy_grad(self, delta, advantages, mask, w, codes, cfg):
        """w·s_i·A_{i,t} where the token is not clipped, else 0."""
        return w * (codes == NONE) * sequence_ratio(delta, mask).unsqueeze(-1) * token_adv(advantages)

    def steps(self, tok: Token) -> list[Step]:
        free = tok.code == NONE
        g = tok.factor * tok.s * tok.A if free else 0.0
        return mean_logratio_step(tok) + ppo_steps(tok, tok.s, "s") + [decision_step(tok), factor_step(tok), Step(
            "policy gradient weight",
            rf"\text{{factor}} \cdot s_i \cdot A_{{i,t}} = {n(tok.factor)} \cdot {n(tok.s)} \cdot {n(tok.A)} = {n(g)}"
            if free else r"0 \text{ (clipped)}", g)]

    def hover(self, tok: Token) -> str:
        return ppo_hover(tok, tok.s, "s")

    def to_verl(self, cfg):
        return {"policy_loss.loss_mode": "gspo", "clip_ratio_low": cfg.eps_low, "clip_ratio_high": cfg.eps_high}, []

    def from_verl(self, actor):
        """verl's gspo loss is this per-token form; GSPO (earlier in the registry) is named for it unless the
        settings need per-token terms (token-level rollout weights)."""
        if actor["policy_loss.loss_mode"] != "gspo":
            return None
        return {"objective": self.name, "eps_low": actor["clip_ratio_low"], "eps_high": actor["clip_ratio_high"]}, []

    def from_trl(self, kwargs):
        if kwargs["importance_sampling_level"] != "sequence" or kwargs["loss_type"] not in TRL_PPO_LOSSES:
            return None
        return {"objective": self.name, "eps_low": kwargs["epsilon"], "eps_high": kwargs["epsilon_high"]}, []

    def to_trl(self, cfg, loss_type):
        if loss_type is None:
            return {}, [f"TRL 1.16 has no PPO-clip loss_type that aggregates by {cfg.loss_agg_mode}"]
        return ({"loss_type": loss_type, "importance_sampling_level": "sequence", "epsilon": cfg.eps_low,
                 "epsilon_high": cfg.eps_high},
                ["TRL's sequence-level ratio is GSPO's: the same as GSPO-token while every token of a response has "
                 "the same advantage; per-token advantages have no counterpart"])


OBJECTIVE = GspoToken()
