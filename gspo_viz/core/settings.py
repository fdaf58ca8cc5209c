"""Validated settings for every objective: defaults per objective, and errors that say how to fix them."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Optional

from . import objectives as registry

ADVANTAGE_MODES = ("group", "mean", "rloo")
STD_MODES = ("sample", "population")
KL_ESTIMATORS = ("k1", "k2", "k3")

# What a knob absent from a scenario takes when the objective sets no default of its own (core/objectives/<name>.py).
COMMON_DEFAULTS: dict[str, Any] = {
    "beta": 0.0, "kl": "k3", "advantage": "group", "std": "sample", "adv_eps": 1e-6,
    "dynamic_sampling": False, "overlong": None,
    "rollout_is": None, "rollout_is_threshold": 2.0, "rollout_is_threshold_lower": None,
}
ROLLOUT_LEVELS = ("token", "sequence")


class SettingsError(ValueError):
    """A setting is out of range or unknown. `field` names it; the message says what would be valid."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Overlong:
    """DAPO's overlong handling (DAPO §3.4).

    filter: truncated responses are masked out of the loss (overlong filtering).
    l_max, l_cache: soft overlong punishment added to the reward:
        0 if |y| <= l_max - l_cache;  ((l_max - l_cache) - |y|) / l_cache if inside the cache;  -1 if |y| > l_max.
    """

    filter: bool = False
    l_max: Optional[int] = None
    l_cache: Optional[int] = None

    def __post_init__(self):
        if not isinstance(self.filter, bool):
            raise SettingsError("overlong.filter", f"must be true or false, got {self.filter!r}")
        if (self.l_max is None) != (self.l_cache is None):
            raise SettingsError("overlong", "give both l_max and l_cache for the soft punishment, or neither")
        if self.l_max is not None:
            for name in ("l_max", "l_cache"):
                v = getattr(self, name)
                if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                    raise SettingsError(f"overlong.{name}", f"must be a whole number >= 1, got {v!r}")
            if self.l_cache > self.l_max:
                raise SettingsError("overlong.l_cache", f"must be <= l_max ({self.l_max}), got {self.l_cache}")

    @classmethod
    def from_dict(cls, d: Any) -> "Overlong":
        if not isinstance(d, dict):
            raise SettingsError("overlong", f"must be an object like {{\"filter\": true, \"l_max\": 20, \"l_cache\": 4}}, got {d!r}")
        unknown = set(d) - {"filter", "l_max", "l_cache"}
        if unknown:
            raise SettingsError("overlong", f"unknown key(s) {sorted(unknown)}; valid: filter, l_max, l_cache")
        return cls(**d)


def _number(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise SettingsError(name, f"must be a finite number, got {v!r}")
    return float(v)


@dataclass(frozen=True)
class Settings:
    """Every knob of every objective. Unset knobs (None) take the objective's defaults in `resolved()`."""

    objective: str = "grpo"
    eps_low: Optional[float] = None      # ε_low: lower clip bound is 1 - ε_low (None for CISPO = no lower bound)
    eps_high: Optional[float] = None     # ε_high: upper clip bound is 1 + ε_high
    dual_clip_c: Optional[float] = None  # c of Dual-Clip PPO: for A < 0 the term is floored at c·A; c > 1
    beta: Optional[float] = None         # β, weight of the per-token KL to the reference policy
    kl: Optional[str] = None             # KL estimator: k1 = log π/π_ref, k2 = ½(log π/π_ref)², k3 = π_ref/π − log(π_ref/π) − 1
    advantage: Optional[str] = None      # group = (R−mean)/(std+adv_eps), mean = R−mean (Dr.GRPO), rloo = leave-one-out
    std: Optional[str] = None            # std convention of the group z-score: sample (N−1, TRL/verl) or population (N)
    adv_eps: Optional[float] = None      # added to the std in the z-score's denominator
    max_tokens: Optional[int] = None     # L_max of Dr.GRPO's 1/(G·L_max); None = the longest response in the batch
    tau_pos: Optional[float] = None      # SAPO's gate temperature for A > 0
    tau_neg: Optional[float] = None      # SAPO's gate temperature for A <= 0
    gmpo_eps: Optional[float] = None     # GMPO's clip range in log space: log-ratio clipped to [−ε, ε]
    dynamic_sampling: Optional[bool] = None  # DAPO: drop a group whose rewards are all equal
    overlong: Optional[Overlong] = None  # DAPO's overlong filtering and soft punishment
    dppo_cap: Optional[float] = None     # DPPO's cap C on its detached ratio, min(r, C) (verl: clip_ratio_c)
    vespo_k_pos: Optional[float] = None  # VESPO's φ(W) = W^k·e^(λ(1−W)): k and λ for A ≥ 0, and for A < 0 (TRL's names)
    vespo_lambda_pos: Optional[float] = None
    vespo_k_neg: Optional[float] = None
    vespo_lambda_neg: Optional[float] = None
    rollout_is: Optional[str] = None     # rollout correction (core/rollout.py): 'token' or 'sequence' weights
    #                                      π_old/π_rollout on each token's term; None = off (verl's names)
    rollout_is_threshold: Optional[float] = None        # C: weights are truncated at C (default 2.0)
    rollout_is_threshold_lower: Optional[float] = None  # when set, weights outside [lower, C] are 0, not truncated
    loss_agg_mode: Optional[str] = None  # verl's name for how the terms are aggregated (core/aggregation.py); None =
    #                                      the objective's paper's

    def __post_init__(self):
        if self.objective not in registry.NAMES:
            raise SettingsError("objective", f"unknown objective {self.objective!r}; valid: "
                                             f"{', '.join(registry.NAMES)}")
        if self.eps_low is not None:
            v = _number("eps_low", self.eps_low)
            if not 0 <= v < 1:
                raise SettingsError("eps_low", f"must be in [0, 1) so that the lower bound 1 − ε_low stays positive, got {v}")
        if self.eps_high is not None:
            v = _number("eps_high", self.eps_high)
            if not 0 <= v <= 10:
                raise SettingsError("eps_high", f"must be in [0, 10], got {v}")
        if self.dual_clip_c is not None and _number("dual_clip_c", self.dual_clip_c) <= 1:
            raise SettingsError("dual_clip_c", f"must be > 1 (c·A caps the loss for A < 0 only above ratio c; "
                                               f"the Dual-Clip paper uses 3), got {self.dual_clip_c}")
        if self.beta is not None and _number("beta", self.beta) < 0:
            raise SettingsError("beta", f"must be >= 0, got {self.beta}")
        for name, allowed in (("kl", KL_ESTIMATORS), ("advantage", ADVANTAGE_MODES), ("std", STD_MODES)):
            v = getattr(self, name)
            if v is not None and v not in allowed:
                raise SettingsError(name, f"unknown value {v!r}; valid: {', '.join(allowed)}")
        if self.adv_eps is not None and not 0 <= _number("adv_eps", self.adv_eps) <= 1:
            raise SettingsError("adv_eps", f"must be in [0, 1], got {self.adv_eps}")
        if self.max_tokens is not None and (isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int)
                                            or self.max_tokens < 1):
            raise SettingsError("max_tokens", f"must be a whole number >= 1, got {self.max_tokens!r}")
        if self.dppo_cap is not None and _number("dppo_cap", self.dppo_cap) < 1:
            raise SettingsError("dppo_cap", f"must be >= 1 (the detached ratio is truncated at C; the DPPO paper "
                                            f"advises a large C such as 20), got {self.dppo_cap}")
        for name in ("tau_pos", "tau_neg", "gmpo_eps", "vespo_k_pos", "vespo_lambda_pos", "vespo_k_neg",
                     "vespo_lambda_neg"):
            v = getattr(self, name)
            if v is not None and not 0 < _number(name, v) <= 100:
                raise SettingsError(name, f"must be in (0, 100], got {v}")
        if self.dynamic_sampling is not None and not isinstance(self.dynamic_sampling, bool):
            raise SettingsError("dynamic_sampling", f"must be true or false, got {self.dynamic_sampling!r}")
        if self.loss_agg_mode is not None:
            self._check_loss_agg_mode()
        self._check_rollout()
        if self.overlong is not None and not isinstance(self.overlong, Overlong):
            raise SettingsError("overlong", "must be an Overlong(...)")

    @staticmethod
    def _unknown(key: Any, names: set[str], objective: Any) -> str:
        """What to say of an unknown setting: the closest valid name, else the settings this objective reads."""
        import difflib
        close = difflib.get_close_matches(str(key), sorted(names), n=1, cutoff=0.75)
        if close:
            return f"unknown setting; did you mean {close[0]!r}?"
        name = objective if objective in registry.NAMES else "grpo"
        reads = ["objective", *registry.OBJECTIVES[name].knobs, "loss_agg_mode",
                 *(k for k in COMMON_DEFAULTS if not k.startswith("rollout_is_"))]
        return (f"unknown setting; {registry.OBJECTIVES[name].title} reads: {', '.join(dict.fromkeys(reads))} "
                f"(all: README, Scenario files)")

    def _check_rollout(self) -> None:
        if self.rollout_is is not None:
            if self.rollout_is not in ROLLOUT_LEVELS:
                raise SettingsError("rollout_is", f"unknown level {self.rollout_is!r}; valid: token, sequence (or "
                                                  "leave it out: no rollout correction)")
            obj = registry.OBJECTIVES[self.objective]
            if self.rollout_is == "token" and obj.per_sequence_terms:
                raise SettingsError("rollout_is", f"token-level weights multiply each token's term, but {obj.title}'s "
                                                  "term is one per response: use sequence (one weight per response), "
                                                  "or gspo_token, the per-token form verl runs")
        upper = self.rollout_is_threshold
        if upper is not None and not _number("rollout_is_threshold", upper) > 0:
            raise SettingsError("rollout_is_threshold", f"must be > 0 (the cap C on π_old/π_rollout), got {upper}")
        lower = self.rollout_is_threshold_lower
        if lower is not None:
            if _number("rollout_is_threshold_lower", lower) < 0:
                raise SettingsError("rollout_is_threshold_lower", f"must be >= 0, got {lower}")
            if lower > (2.0 if upper is None else upper):
                raise SettingsError("rollout_is_threshold_lower", f"must be <= rollout_is_threshold "
                                                                  f"({2.0 if upper is None else upper:g}), got {lower}")

    def _check_loss_agg_mode(self) -> None:
        from .aggregation import AGGREGATIONS, TOKEN_MODES
        mode, obj = self.loss_agg_mode, registry.OBJECTIVES[self.objective]
        if mode not in AGGREGATIONS:
            raise SettingsError("loss_agg_mode", f"unknown mode {mode!r}; valid (verl's names): "
                                                 f"{', '.join(AGGREGATIONS)}")
        if mode == "seq-mean" and not obj.per_sequence_terms:
            raise SettingsError("loss_agg_mode", f"seq-mean averages one term per response, but {obj.title}'s terms "
                                                 f"are per token; use one of {', '.join(TOKEN_MODES)} (its paper's: "
                                                 f"{obj.aggregation})")

    @classmethod
    def from_dict(cls, d: dict, objective: Optional[str] = None) -> "Settings":
        """Build from a scenario's `settings` object; `objective` (e.g. from the command line) wins over the file's."""
        if not isinstance(d, dict):
            raise SettingsError("settings", f"must be an object, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise SettingsError(unknown[0], cls._unknown(unknown[0], names, objective or d.get("objective")))
        d = dict(d)
        if objective is not None:
            d["objective"] = objective
        if d.get("overlong") is not None:
            d["overlong"] = Overlong.from_dict(d["overlong"])
        return cls(**d)

    def resolved(self) -> "Settings":
        """The effective settings: every knob this objective reads gets a value (its default where unset)."""
        obj = registry.OBJECTIVES[self.objective]
        values = {**COMMON_DEFAULTS, "loss_agg_mode": obj.aggregation, **obj.defaults}
        given = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}
        values.update(given)
        values["objective"] = self.objective
        return dataclasses.replace(self, **values)

    def effective_dict(self) -> dict:
        """The resolved knobs that matter for this objective, as plain JSON values."""
        r = self.resolved()
        keys = ("objective",) + registry.OBJECTIVES[r.objective].knobs + ("advantage", "std", "adv_eps", "beta", "kl",
                                                       "dynamic_sampling", "overlong", "loss_agg_mode", "rollout_is")
        if r.rollout_is is not None:
            keys += ("rollout_is_threshold", "rollout_is_threshold_lower")
        out = {}
        for k in keys:
            v = getattr(r, k)
            out[k] = dataclasses.asdict(v) if isinstance(v, Overlong) else v
        return out

    def with_(self, **changes) -> "Settings":
        return dataclasses.replace(self, **changes)
