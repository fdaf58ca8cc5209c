"""GSPO (arXiv 2507.18071): one length-normalised sequence ratio per response, clipped as a whole."""
from __future__ import annotations

from .base import (PPO_REASONS, NONE, TRL_PPO_LOSSES, Objective, Step, Terms, Token, decision_step, factor_step,
                   lengths, logratio, n, ppo_clip, ppo_codes, ppo_hover, ppo_steps, seq_adv)


def sequence_ratio(delta, mask):
    """s_i = exp((1/|y_i|) Σ_t Δ_{i,t}): (G,)."""
    return (delta.sum(-1) / lengths(mask)).exp()


def mean_logratio_step(tok: Token) -> list[Step]:
    mean = sum(tok.deltas) / tok.L
    shown = " + ".join(n(d) for d in tok.deltas) if tok.L <= 6 else r"\sum_t \Delta_{i,t}"
    return [Step("mean log-ratio over the response", rf"\bar\Delta_i = ({shown}) / {tok.L} = {n(mean)}", mean),
            Step("sequence ratio", rf"s_i = e^{{\bar\Delta_i}} = {n(tok.s)}", tok.s)]


class Gspo(Objective):
    name = "gspo"
    title = "GSPO"
    paper = "arXiv 2507.18071"
    color = "#D55E00"   # vermillion
    dash = "solid"
    aggregation = "seq-mean"
    level = "sequence"
    seq_ratio_symbol = "s"
    per_token_advantages = False
    defaults = {"eps_low": 3e-4, "eps_high": 4e-4}
    knobs = ("eps_low", "eps_high")
    reasons = PPO_REASONS
    unmarked_note = ("all tokens of a response share one weight, s_i·A_i/|y_i| times the response's aggregation "
                     "factor (1/G in the paper's seq-mean)")
    marks = {"upper": "▲ A > 0 and the response's s_i is above 1 + ε_high: policy gradient 0 on all its tokens",
             "lower": "▼ A < 0 and the response's s_i is below 1 − ε_low: policy gradient 0 on all its tokens"}

    def terms(self, logp, logp_old, advantages, mask, cfg):
        """GSPO (2507.18071, eqs. 5–7), per sequence:

            s_i = exp((1/|y_i|) Σ_t log(π_θ/π_old)),   min(s_i·A_i, clip(s_i, 1−ε_low, 1+ε_high)·A_i)
            aggregated (1/G) Σ_i
        """
        seq = sequence_ratio(logratio(logp, logp_old, mask), mask)     # (G,)
        value = ppo_clip(seq, seq_adv(advantages, mask), cfg.eps_low, cfg.eps_high)  # (G,)
        return Terms(value, seq.unsqueeze(-1).expand_as(logp), seq)

    def clip_codes(self, delta, advantages, mask, cfg):
        return ppo_codes(sequence_ratio(delta, mask).unsqueeze(-1), seq_adv(advantages, mask).unsqueeze(-1), cfg)

    def policy_grad(self, delta, advantages, mask, w, codes, cfg):
        """(1/G)·s_i·A_i/|y_i| on every token where the sequence is not clipped, else 0."""
        s = sequence_ratio(delta, mask).unsqueeze(-1)                                   # (G, 1)
        return w.unsqueeze(-1) * (codes == NONE) * s * seq_adv(advantages, mask).unsqueeze(-1) \
            / lengths(mask).unsqueeze(-1)

    def steps(self, tok: Token) -> list[Step]:
        free = tok.code == NONE
        g = tok.factor * tok.s * tok.A / tok.L if free else 0.0
        return mean_logratio_step(tok) + ppo_steps(tok, tok.s, "s") + [decision_step(tok), factor_step(tok), Step(
            "policy gradient weight",
            rf"\text{{factor}} \cdot \frac{{s_i A_i}}{{|y_i|}} = {n(tok.factor)} \cdot {n(tok.s)} \cdot {n(tok.A)} / "
            rf"{tok.L} = {n(g)}" if free else r"0 \text{ (clipped)}", g)]

    def hover(self, tok: Token) -> str:
        return ppo_hover(tok, tok.s, "s")

    def to_verl(self, cfg):
        return {"policy_loss.loss_mode": "gspo", "clip_ratio_low": cfg.eps_low, "clip_ratio_high": cfg.eps_high}, []

    def from_verl(self, actor):
        if actor["policy_loss.loss_mode"] != "gspo":
            return None
        return {"objective": self.name, "eps_low": actor["clip_ratio_low"], "eps_high": actor["clip_ratio_high"]}, []

    def to_trl(self, cfg, loss_type):
        if loss_type is None:
            return {}, [f"TRL 1.16 has no PPO-clip loss_type that aggregates by {cfg.loss_agg_mode}"]
        return {"loss_type": loss_type, "importance_sampling_level": "sequence", "epsilon": cfg.eps_low,
                "epsilon_high": cfg.eps_high}, []

    def from_trl(self, kwargs):
        if kwargs["importance_sampling_level"] != "sequence" or kwargs["loss_type"] not in TRL_PPO_LOSSES:
            return None
        return {"objective": self.name, "eps_low": kwargs["epsilon"], "eps_high": kwargs["epsilon_high"]}, []


OBJECTIVE = Gspo()
