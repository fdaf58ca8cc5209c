"""DAPO (arXiv 2503.14476): GRPO's term with decoupled ε_low/ε_high (clip-higher), averaged over all tokens."""
from __future__ import annotations

from .grpo import Grpo


class Dapo(Grpo):
    name = "dapo"
    title = "DAPO"
    paper = "arXiv 2503.14476"
    color = "#CC79A7"   # reddish purple
    dash = "dot"
    aggregation = "token-mean"
    defaults = {"eps_low": 0.2, "eps_high": 0.28}

    def terms(self, logp, logp_old, advantages, mask, cfg):
        """DAPO (2503.14476, eq. 8): GRPO's per-token term with decoupled ε_low/ε_high ("clip-higher"),

            min(r·A, clip(r, 1−ε_low, 1+ε_high)·A)      aggregated token-level: (1/Σ_i |y_i|) Σ_i Σ_t
        """
        return super().terms(logp, logp_old, advantages, mask, cfg)


OBJECTIVE = Dapo()
