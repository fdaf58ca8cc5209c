"""Settings both ways with verl 0.9 and TRL 1.16: a scenario's settings as verl's Hydra overrides or TRL's
GRPOConfig keywords, and those read back as scenario settings, with a note for whatever is only approximated or has
no counterpart.

Each objective maps its own term (core/objectives/<name>.py: to_verl, from_verl, to_trl, from_trl); this module maps
the knobs every objective shares (β and the KL estimator, advantages, loss_agg_mode, L_max, overlong handling,
dynamic sampling) and names the full keys. Key names come from verl 0.9.1's generated PPO trainer config
(verl/trainer/config/_generated_ppo_trainer.yaml) and TRL 1.16's GRPOConfig; tests/test_bridge.py checks every key
against the lists tests/reference/make_verl_reference.py took from those libraries.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from ..core.objectives import NAMES, OBJECTIVES
from ..core.objectives.libraries import (TRL_BUDGET_LOSS, TRL_LOSS_BY_MODE, TRL_MODE_BY_LOSS, VERL_GROUP_ESTIMATOR,
                                         VERL_RLOO_ESTIMATOR)
from ..core.settings import Settings, SettingsError
from .files import cut

ACTOR = "actor_rollout_ref.actor."
# verl 0.9.1's defaults for what it reads (the generated PPO trainer config)
VERL_ACTOR_DEFAULTS = {"policy_loss.loss_mode": "vanilla", "clip_ratio": 0.2, "clip_ratio_low": 0.2,
                       "clip_ratio_high": 0.2, "clip_ratio_c": 3.0, "loss_agg_mode": "token-mean",
                       "loss_scale_factor": None, "tau_pos": 1.0, "tau_neg": 1.05, "use_kl_loss": False,
                       "kl_loss_coef": 0.001, "kl_loss_type": "low_var_kl"}
VERL_ALGORITHM_DEFAULTS = {"adv_estimator": "gae", "norm_adv_by_std_in_grpo": True, "filter_groups.enable": False,
                           "rollout_correction.rollout_is": None, "rollout_correction.rollout_is_threshold": 2.0}
IS_LOWER_FLOOR = 1e-12   # verl wants a positive IcePop lower bound; every weight is above e^−20, so this one is 0's
VERL_KL = {"k1": "kl", "k2": "mse", "k3": "low_var_kl"}                 # ours → verl's kl_loss_type
VERL_KL_BACK = {"kl": "k1", "k1": "k1", "mse": "k2", "k2": "k2", "low_var_kl": "k3", "k3": "k3"}
VERL_STD_EPS = 1e-6     # verl's GRPO advantage: (R − mean) / (std + 1e-6), torch.std (G − 1)
# TRL 1.16's defaults for what it reads (GRPOConfig)
TRL_DEFAULTS = {"loss_type": "dapo", "importance_sampling_level": "token", "epsilon": 0.2, "epsilon_high": None,
                "delta": None, "beta": 0.0, "scale_rewards": "group", "mask_truncated_completions": False,
                "sapo_temperature_pos": 1.0, "sapo_temperature_neg": 1.05, "max_completion_length": 512,
                "use_bias_correction_kl": True, "vespo_k_pos": 2.0, "vespo_lambda_pos": 3.0, "vespo_k_neg": 3.0,
                "vespo_lambda_neg": 2.0, "use_vllm": False, "vllm_importance_sampling_correction": True,
                "vllm_importance_sampling_mode": "sequence_mask", "vllm_importance_sampling_clip_max": 3.0,
                "vllm_importance_sampling_clip_min": None}
TRL_STD_EPS = 1e-4      # TRL's z-score: (R − mean) / (std + 1e-4), torch.std (G − 1)


class BridgeError(ValueError):
    """Input that cannot be read: `field` names the key, the message says what is wrong."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass
class Mapping:
    values: dict                        # verl: full dotted key → value; TRL: GRPOConfig keyword → value
    notes: list[str] = field(default_factory=list)   # what is only approximated or has no counterpart


# ------------------------------------------------------------------------------------------------ to verl
def to_verl(settings: Settings) -> Mapping:
    """verl 0.9's PPO trainer overrides (full dotted keys) that run these settings' objective."""
    cfg = settings.resolved()
    obj = OBJECTIVES[cfg.objective]
    own, notes = obj.to_verl(cfg)
    if not own:                                  # verl has no loss for this objective: the notes say so
        return Mapping({}, notes)
    out = {ACTOR + k: v for k, v in own.items()}
    mode = "seq-mean-token-mean" if cfg.loss_agg_mode == "seq-mean" else cfg.loss_agg_mode
    out[ACTOR + "loss_agg_mode"] = mode
    if cfg.loss_agg_mode == "seq-mean":
        notes.append("verl has no seq-mean: seq-mean-token-mean over a response's term repeated on each of its "
                     "tokens is the same per-response mean")
    if mode == "seq-mean-token-sum-norm":
        if cfg.max_tokens is not None:
            out[ACTOR + "loss_scale_factor"] = cfg.max_tokens
        else:
            notes.append("L_max: verl divides by the batch's padded response length when loss_scale_factor is "
                         "unset, as this tool does without max_tokens")
    out |= _verl_advantages(cfg, notes)
    out[ACTOR + "use_kl_loss"] = bool(cfg.beta)
    if cfg.beta:
        out[ACTOR + "kl_loss_coef"] = cfg.beta
        out[ACTOR + "kl_loss_type"] = VERL_KL[cfg.kl]
    if cfg.rollout_is is not None:
        out["algorithm.rollout_correction.rollout_is"] = cfg.rollout_is
        lower = cfg.rollout_is_threshold_lower
        out["algorithm.rollout_correction.rollout_is_threshold"] = cfg.rollout_is_threshold if lower is None else \
            f"{lower if lower > 0 else IS_LOWER_FLOOR:g}_{cfg.rollout_is_threshold:g}"
        if lower == 0:
            notes.append(f"verl's IcePop bounds must be positive: a lower bound of {IS_LOWER_FLOOR:g} stands for 0 "
                         "(every weight is above e^−20)")
    if cfg.dynamic_sampling:
        out["algorithm.filter_groups.enable"] = True
        notes.append("dynamic sampling: algorithm.filter_groups (read by verl's ppo/v1 trainer) drops groups whose "
                     "algorithm.filter_groups.metric is all equal; set that metric to the task reward")
    if cfg.overlong is not None and cfg.overlong.filter:
        notes.append("overlong filtering (truncated responses out of the loss) has no key in verl 0.9.1's PPO "
                     "trainer config")
    if cfg.overlong is not None and cfg.overlong.l_max is not None:
        notes.append("the soft overlong punishment belongs to the reward: verl's DAPO reward manager has an "
                     "overlong buffer; it is not a trainer key")
    return Mapping(out, notes)


def _verl_advantages(cfg: Settings, notes: list[str]) -> dict:
    out = {"algorithm.adv_estimator": VERL_RLOO_ESTIMATOR if cfg.advantage == "rloo" else VERL_GROUP_ESTIMATOR}
    if cfg.advantage != "rloo":
        out["algorithm.norm_adv_by_std_in_grpo"] = cfg.advantage == "group"
    if cfg.advantage == "group" and cfg.std == "population":
        notes.append("std over G (population): verl's GRPO advantage divides by torch.std, over G − 1")
    if cfg.advantage == "group" and cfg.adv_eps != VERL_STD_EPS:
        notes.append(f"adv_eps = {cfg.adv_eps:g}: verl adds {VERL_STD_EPS:g} to the std, with no key to change it")
    return out


# ------------------------------------------------------------------------------------------------ to TRL
def to_trl(settings: Settings) -> Mapping:
    """TRL 1.16's GRPOConfig keywords that run these settings' objective."""
    cfg = settings.resolved()
    obj = OBJECTIVES[cfg.objective]
    out, notes = obj.to_trl(cfg, TRL_LOSS_BY_MODE.get(cfg.loss_agg_mode))
    out = dict(out)
    if out.get("loss_type") == TRL_BUDGET_LOSS:
        if cfg.max_tokens is not None:
            out["max_completion_length"] = cfg.max_tokens
        else:
            notes.append("L_max: TRL's dr_grpo divides by max_completion_length (512 by default), this tool by the "
                         "longest response of the batch; set max_tokens to fix both")
    out["beta"] = cfg.beta
    if cfg.beta:
        out["use_bias_correction_kl"] = False
        notes.append("TRL multiplies its KL by the ratio unless use_bias_correction_kl=False (set here to match)")
        if cfg.kl != "k3":
            notes.append(f"KL estimator {cfg.kl}: TRL's KL is k3 only")
    if cfg.advantage == "rloo":
        notes.append("RLOO advantages have no GRPOConfig key (TRL has a separate RLOO trainer)")
    else:
        out["scale_rewards"] = "group" if cfg.advantage == "group" else "none"
    if cfg.advantage == "group" and cfg.std == "population":
        notes.append("std over G (population): TRL divides by torch.std, over G − 1")
    if cfg.advantage == "group" and cfg.adv_eps != TRL_STD_EPS:
        notes.append(f"adv_eps = {cfg.adv_eps:g}: TRL adds {TRL_STD_EPS:g} to the std, with no key to change it")
    if cfg.overlong is not None and cfg.overlong.filter:
        out["mask_truncated_completions"] = True
    if cfg.overlong is not None and cfg.overlong.l_max is not None:
        notes.append("the soft overlong punishment belongs to the reward: in TRL, a reward function")
    if cfg.rollout_is is None:
        out["vllm_importance_sampling_correction"] = False          # TRL's default corrects vLLM rollouts
    else:
        masked = cfg.rollout_is_threshold_lower is not None
        out |= {"use_vllm": True, "vllm_importance_sampling_correction": True,
                "vllm_importance_sampling_mode": f"{cfg.rollout_is}_{'mask' if masked else 'truncate'}",
                "vllm_importance_sampling_clip_max": cfg.rollout_is_threshold}
        if masked:
            out["vllm_importance_sampling_clip_min"] = cfg.rollout_is_threshold_lower
        notes.append("TRL corrects rollouts only when vLLM generates them (use_vllm=True, set here)")
    if cfg.dynamic_sampling:
        notes.append("dynamic sampling has no GRPOConfig key")
    return Mapping(out, notes)


# ------------------------------------------------------------------------------------------------ back
def read_overrides(text: str) -> dict:
    """Hydra overrides, one `key=value` per line (blank lines and # comments skipped, a leading + or ++ dropped),
    values as YAML's plain scalars read them: numbers, true/false, null, else text."""
    out = {}
    for k, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, eq, raw = line.partition("=")
        key = key.strip().lstrip("+")
        if not eq or not key:
            raise BridgeError(f"line {k}", f"not a key=value override: {line[:60]!r}")
        out[key] = _scalar(raw.strip())
    return out


def _scalar(raw: str) -> Any:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    low = raw.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("null", "none", "~"):
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _number(key: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise BridgeError(key, f"must be a finite number, got {v!r}")
    return float(v)


def from_verl(overrides: dict) -> tuple[dict, list[str]]:
    """The scenario settings (and notes) that verl overrides mean, verl 0.9.1's defaults filling what is absent."""
    notes: list[str] = []
    actor = dict(VERL_ACTOR_DEFAULTS)
    algo = dict(VERL_ALGORITHM_DEFAULTS)
    for key, v in overrides.items():
        if key.startswith(ACTOR) and key[len(ACTOR):] in actor:
            actor[key[len(ACTOR):]] = v
        elif key.startswith("algorithm.") and key[len("algorithm."):] in algo:
            algo[key[len("algorithm."):]] = v
        else:
            notes.append(f"{key}: not a loss setting here, ignored")
    given = {k[len(ACTOR):] for k in overrides if k.startswith(ACTOR)}
    for side in ("low", "high"):      # clip_ratio sets both bounds unless one is given
        if f"clip_ratio_{side}" not in given and "clip_ratio" in given:
            actor[f"clip_ratio_{side}"] = actor["clip_ratio"]
    for key in ("clip_ratio_low", "clip_ratio_high", "clip_ratio_c", "tau_pos", "tau_neg", "kl_loss_coef"):
        actor[key] = _number(ACTOR + key, actor[key])
    claims = _claims("verl", lambda o: o.from_verl(actor), ACTOR + "policy_loss.loss_mode",
                     actor["policy_loss.loss_mode"])
    settings: dict = {}
    if actor["loss_scale_factor"] is not None:
        settings["max_tokens"] = int(_number(ACTOR + "loss_scale_factor", actor["loss_scale_factor"]))
    if algo["adv_estimator"] == VERL_GROUP_ESTIMATOR:
        settings["advantage"] = "group" if algo["norm_adv_by_std_in_grpo"] else "mean"
    elif algo["adv_estimator"] == VERL_RLOO_ESTIMATOR:
        settings["advantage"] = "rloo"
    else:
        settings["advantage"] = "group"
        notes.append(f"algorithm.adv_estimator={algo['adv_estimator']} has no counterpart here: the group z-score "
                     "(verl's grpo) is used")
    if actor["use_kl_loss"]:
        kl = VERL_KL_BACK.get(actor["kl_loss_type"])
        if kl is None:
            raise BridgeError(ACTOR + "kl_loss_type", f"{actor['kl_loss_type']!r} has no counterpart here; "
                                                      f"valid: {', '.join(VERL_KL_BACK)}")
        settings |= {"beta": actor["kl_loss_coef"], "kl": kl}
    if algo["filter_groups.enable"]:
        settings["dynamic_sampling"] = True
    if algo["rollout_correction.rollout_is"] is not None:
        settings["rollout_is"] = algo["rollout_correction.rollout_is"]
        spec = algo["rollout_correction.rollout_is_threshold"]
        key = "algorithm.rollout_correction.rollout_is_threshold"
        if isinstance(spec, str) and "_" in spec:
            low, _, high = spec.partition("_")
            lower, upper = _number(key, _scalar(low)), _number(key, _scalar(high))
            settings |= {"rollout_is_threshold": upper,
                         "rollout_is_threshold_lower": 0.0 if lower <= IS_LOWER_FLOOR else lower}
        else:
            settings["rollout_is_threshold"] = _number(key, _scalar(spec) if isinstance(spec, str) else spec)
    return _first_valid(claims, settings, actor["loss_agg_mode"], notes)


def from_trl(kwargs: dict) -> tuple[dict, list[str]]:
    """The scenario settings (and notes) that GRPOConfig keywords mean, TRL 1.16's defaults filling what is absent."""
    notes = [f"{key}: not a loss setting here, ignored" for key in kwargs if key not in TRL_DEFAULTS]
    k = TRL_DEFAULTS | {key: v for key, v in kwargs.items() if key in TRL_DEFAULTS}
    if k["epsilon_high"] is None:
        k["epsilon_high"] = k["epsilon"]
    for key in ("epsilon", "epsilon_high", "beta", "sapo_temperature_pos", "sapo_temperature_neg", "vespo_k_pos",
                "vespo_lambda_pos", "vespo_k_neg", "vespo_lambda_neg"):
        k[key] = _number(key, k[key])
    if k["delta"] is not None:
        k["delta"] = _number("delta", k["delta"])
    claims = _claims("TRL", lambda o: o.from_trl(k), "loss_type", k["loss_type"])
    if k["loss_type"] not in TRL_MODE_BY_LOSS:
        raise BridgeError("loss_type", f"{k['loss_type']!r} has no counterpart here; valid: "
                                       f"{', '.join(TRL_MODE_BY_LOSS)}")
    settings: dict = {}
    if k["loss_type"] == TRL_BUDGET_LOSS:
        settings["max_tokens"] = int(_number("max_completion_length", k["max_completion_length"]))
    scale = k["scale_rewards"]
    if scale in (True, "group"):
        settings |= {"advantage": "group", "adv_eps": TRL_STD_EPS}
    elif scale in (False, "none"):
        settings["advantage"] = "mean"
    else:
        settings |= {"advantage": "group", "adv_eps": TRL_STD_EPS}
        notes.append(f"scale_rewards={scale!r}: scaling by the batch's std has no counterpart for one group; the "
                     "group's std is used")
    if k["beta"]:
        settings |= {"beta": k["beta"], "kl": "k3"}
        if k["use_bias_correction_kl"]:
            notes.append("use_bias_correction_kl=True multiplies TRL's KL by the ratio; the KL here is not")
    if k["mask_truncated_completions"]:
        settings["overlong"] = {"filter": True}
    if k["use_vllm"] and k["vllm_importance_sampling_correction"]:
        level, _, kind = str(k["vllm_importance_sampling_mode"]).partition("_")
        if level not in ("token", "sequence") or kind not in ("truncate", "mask"):
            raise BridgeError("vllm_importance_sampling_mode", f"{cut(str(k['vllm_importance_sampling_mode']))!r} is "
                                                               "not token_truncate, token_mask, sequence_truncate or "
                                                               "sequence_mask")
        upper, lower = k["vllm_importance_sampling_clip_max"], k["vllm_importance_sampling_clip_min"]
        settings |= {"rollout_is": level,
                     "rollout_is_threshold": _number("vllm_importance_sampling_clip_max", upper)}
        if kind == "mask":
            settings["rollout_is_threshold_lower"] = 0.0 if lower is None else \
                _number("vllm_importance_sampling_clip_min", lower)
        elif lower is not None:
            notes.append(f"vllm_importance_sampling_clip_min = {lower}: truncation from below has no counterpart "
                         "here (verl's TIS truncates from above only); ignored")
    return _first_valid(claims, settings, TRL_MODE_BY_LOSS[k["loss_type"]], notes)



def _claims(library: str, ask, key: str, value: Any) -> list[tuple[dict, list[str]]]:
    """Every objective of the registry that says the configuration runs its term, in registry order."""
    out = []
    for name in NAMES:
        try:
            claim = ask(OBJECTIVES[name])
        except SettingsError as e:               # the objective's own check of a value it reads
            raise BridgeError(e.field, str(e).split(": ", 1)[1]) from None
        if claim is not None:
            out.append((dict(claim[0]), list(claim[1])))
    if not out:
        raise BridgeError(key, f"{value!r}: no objective here runs this {library} loss")
    return out


def _first_valid(claims: list[tuple[dict, list[str]]], common: dict, mode: str, notes: list[str]
                 ) -> tuple[dict, list[str]]:
    """The first claim that makes valid settings with the knobs every objective shares (e.g. verl's gspo loss with
    token-level rollout weights is GSPO-token's, not GSPO's per-response term); else the first claim's error."""
    first_error = None
    for own, own_notes in claims:
        settings = own | {k: v for k, v in common.items() if k not in own}
        settings.setdefault("loss_agg_mode", _mode_back(settings["objective"], mode))
        try:
            return _checked(settings), notes + own_notes
        except BridgeError as e:
            first_error = first_error or e
    raise first_error


def _mode_back(objective: str, mode: str) -> str:
    """A library's aggregation as this objective's loss_agg_mode (a per-response term under seq-mean-token-mean is
    the paper's seq-mean)."""
    obj = OBJECTIVES[objective]
    if obj.per_sequence_terms and mode == "seq-mean-token-mean":
        return "seq-mean"
    return mode


def _checked(settings: dict) -> dict:
    """The settings as a scenario holds them, validated (a value the core refuses names its key)."""
    try:
        Settings.from_dict(settings)
    except SettingsError as e:
        raise BridgeError(e.field, str(e).split(": ", 1)[1]) from None
    return settings


def as_overrides(m: Mapping) -> str:
    """key=value lines, values as Hydra reads them."""
    return "\n".join(f"{k}={_hydra(v)}" for k, v in m.values.items())


def _hydra(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if not isinstance(v, str):
        return repr(v)
    text = v
    try:                    # text a parser would read as something else is quoted: "0.5_3.0" (an IcePop threshold)
        float(text)         # is the float 0.53 to YAML and to Python, which allow _ between digits
        return f"'{text}'"
    except ValueError:
        return f"'{text}'" if text.lower() in ("true", "false", "null", "none", "~") else text


def as_python(m: Mapping) -> str:
    return "GRPOConfig(" + ", ".join(f"{k}={v!r}" for k, v in m.values.items()) + ")"
