"""Dual-Clip PPO (Ye et al., arXiv 1912.09729): GRPO's term, floored at c·A for a negative advantage."""
from __future__ import annotations

import torch

from .base import DUAL, PPO_MARKS, PPO_REASONS, Step, Terms, Token, logratio, n, ppo_clip, ppo_codes, token_adv
from .base import FLOOR_OFF, TRL_PPO_LOSSES, ppo_to_trl, ppo_to_verl
from .grpo import Grpo


class DualClip(Grpo):
    name = "dual_clip"
    title = "Dual-Clip PPO"
    paper = "Ye et al., arXiv 1912.09729"
    color = "#009E73"   # bluish green
    dash = "dash"
    defaults = {"eps_low": 0.2, "eps_high": 0.2, "dual_clip_c": 3.0}
    knobs = ("eps_low", "eps_high", "dual_clip_c")
    reasons = PPO_REASONS | {"dual": "exceeded c = {c} with A < 0"}
    marks = PPO_MARKS | {"dual": "✕ A < 0 and the ratio is above c: the term is held at c·A, policy gradient 0"}

    def terms(self, logp, logp_old, advantages, mask, cfg):
        """Dual-Clip PPO (Ye et al. 2020, arXiv 1912.09729, eq. 5), per token:

            A ≥ 0:  min(r·A, clip(r, 1−ε_low, 1+ε_high)·A)
            A < 0:  max(min(r·A, clip(r, 1−ε_low, 1+ε_high)·A), c·A)      c > 1; aggregated as GRPO
        """
        ratio = logratio(logp, logp_old, mask).exp()  # (G, T)
        adv = token_adv(advantages)
        value = ppo_clip(ratio, adv, cfg.eps_low, cfg.eps_high)
        value = torch.where(adv < 0, torch.maximum(value, cfg.dual_clip_c * adv), value)
        return Terms(value, ratio, None)

    def clip_codes(self, delta, advantages, mask, cfg):
        ratio, adv = delta.exp(), token_adv(advantages)
        return torch.where((adv < 0) & (ratio > cfg.dual_clip_c), DUAL, ppo_codes(ratio, adv, cfg))

    def clip_convention(self, cfg):
        return super().clip_convention(cfg) + f", dual-clip c = {cfg.dual_clip_c:g}"

    def extra_steps(self, tok: Token) -> list[Step]:
        if tok.A >= 0:
            return []
        cfg, A, r = tok.cfg, tok.A, tok.r
        term = min(r * A, min(max(r, 1 - cfg.eps_low), 1 + cfg.eps_high) * A)
        floored = max(term, cfg.dual_clip_c * A)
        return [Step("dual-clip floor (A < 0)", rf"\max({n(term)},\ c A) = \max({n(term)},\ "
                                                rf"{n(cfg.dual_clip_c)} \cdot {n(A)}) = {n(floored)}", floored)]

    def hover(self, tok: Token) -> str:
        text = super().hover(tok)
        return text + (f"<br>max(that, c·A = {tok.cfg.dual_clip_c * tok.A:.6g})" if tok.A < 0 else "")

    def to_verl(self, cfg):
        return ppo_to_verl(cfg, cfg.dual_clip_c)

    def from_verl(self, actor):
        if actor["policy_loss.loss_mode"] != "vanilla" or actor["clip_ratio_c"] >= FLOOR_OFF:
            return None
        return {"objective": self.name, "eps_low": actor["clip_ratio_low"], "eps_high": actor["clip_ratio_high"],
                "dual_clip_c": actor["clip_ratio_c"]}, []

    def to_trl(self, cfg, loss_type):
        out, notes = ppo_to_trl(cfg, loss_type, delta=cfg.dual_clip_c)
        if out and cfg.dual_clip_c <= 1 + cfg.eps_high:
            notes.append(f"TRL's delta caps r at δ in min(min(r, δ)·A, clip(r)·A) for every A: with δ = c = "
                         f"{cfg.dual_clip_c:g} <= 1 + ε_high it also caps A > 0 terms, which Dual-Clip does not")
        return out, notes

    def from_trl(self, kwargs):
        if kwargs["loss_type"] not in TRL_PPO_LOSSES or kwargs["importance_sampling_level"] != "token" \
                or kwargs["delta"] is None:
            return None
        return {"objective": self.name, "eps_low": kwargs["epsilon"], "eps_high": kwargs["epsilon_high"],
                "dual_clip_c": kwargs["delta"]}, []


OBJECTIVE = DualClip()
