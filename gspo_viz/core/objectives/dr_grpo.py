"""Dr.GRPO (arXiv 2503.20783): GRPO's term with A = R − mean(R), summed per response over a constant budget."""
from __future__ import annotations

from .grpo import Grpo


class DrGrpo(Grpo):
    name = "dr_grpo"
    title = "Dr.GRPO"
    paper = "arXiv 2503.20783"
    color = "#56B4E9"   # sky blue
    dash = "dashdot"
    aggregation = "seq-mean-token-sum-norm"
    defaults = {"eps_low": 0.2, "eps_high": 0.2, "advantage": "mean"}
    knobs = ("eps_low", "eps_high", "max_tokens")

    def terms(self, logp, logp_old, advantages, mask, cfg):
        """Dr.GRPO (2503.20783, eq. 4): GRPO's per-token term with A = R − mean(R) (no std),

            min(r·A, clip(r, 1−ε_low, 1+ε_high)·A)      aggregated (1/(G·L_max)) Σ_i Σ_t
        """
        return super().terms(logp, logp_old, advantages, mask, cfg)


OBJECTIVE = DrGrpo()
