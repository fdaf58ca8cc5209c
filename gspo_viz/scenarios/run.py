"""Running a scenario: advantages with its conventions, the masks, then one objective's explain path."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from .files import Response, Scenario, ScenarioError

if TYPE_CHECKING:
    from torch import Tensor

    from ..core.explain import Explanation

@dataclass
class ScenarioResult:
    scenario: Scenario
    explanation: Explanation
    rewards: Optional[list[float]]         # as given
    shaped_rewards: Optional[list[float]]  # after the overlong punishment (= rewards without it)
    advantages: Tensor                     # (G,) or (G, T): what the objective used
    reward_mean: Optional[float]
    reward_std: Optional[float]
    no_signal: bool                        # all rewards equal: no learning signal
    dropped: bool                          # ... and dynamic sampling dropped the group
    masked: list[int]                      # responses taken out of the loss (overlong filter, dynamic sampling)
    conventions: list[str] = field(default_factory=list)


def batch_tensors(responses: list[Response]) -> tuple[Tensor, Tensor, Optional[Tensor], Tensor]:
    """Padded (G, T) float64 logp, logp_old, logp_ref (or None) and the 0/1 mask."""
    import torch
    G, T = len(responses), max(len(r.logp_old) for r in responses)
    logp, logp_old, mask = torch.zeros(G, T, dtype=torch.float64), torch.zeros(G, T, dtype=torch.float64), \
        torch.zeros(G, T, dtype=torch.float64)
    has_ref = all(r.logp_ref is not None for r in responses)
    logp_ref = torch.zeros(G, T, dtype=torch.float64) if has_ref else None
    for i, r in enumerate(responses):
        n = len(r.logp_old)
        logp[i, :n] = torch.tensor(r.logp_new, dtype=torch.float64)
        logp_old[i, :n] = torch.tensor(r.logp_old, dtype=torch.float64)
        mask[i, :n] = 1
        if has_ref:
            logp_ref[i, :n] = torch.tensor(r.logp_ref, dtype=torch.float64)
    return logp, logp_old, logp_ref, mask


def _rollout_tensor(responses: list[Response], like: Tensor) -> Tensor:
    """(G, T) log π_rollout, padded as logp_old is; ScenarioError naming the first response without it."""
    import torch
    out = torch.zeros_like(like)
    for i, r in enumerate(responses):
        if r.logp_rollout is None:
            raise ScenarioError(f"responses[{i}]", "rollout_is is set: every response needs p_rollout or "
                                                   "logp_rollout (the inference engine's probabilities)")
        out[i, :len(r.logp_rollout)] = torch.tensor(r.logp_rollout, dtype=torch.float64)
    return out


@dataclass
class _Advantages:
    adv: Tensor                            # (G,) or (G, T)
    rewards: Optional[list[float]] = None  # task rewards as given
    shaped: Optional[list[float]] = None   # after the overlong punishment
    mean: Optional[float] = None
    std: Optional[float] = None
    no_signal: bool = False                # all (shaped) rewards equal: every advantage 0
    task_equal: bool = False               # all task rewards equal (dynamic sampling's test)


def _advantages(rs: list[Response], cfg, T: int, conventions: list[str]) -> _Advantages:
    """Advantages from the rewards with the scenario's conventions, unless every response gives its own."""
    import torch

    from ..core.advantages import group_advantages, overlong_penalty
    G = len(rs)
    lengths = [len(r.logp_old) for r in rs]
    out = _Advantages(torch.zeros(G, dtype=torch.float64))
    if all(r.advantage is not None for r in rs):
        conventions.append("advantages: given per response in the file")
    else:
        missing = next((i for i, r in enumerate(rs) if r.reward is None), None)
        if missing is not None:
            raise ScenarioError(f"responses[{missing}]", "has no reward; the group advantage needs a reward on every "
                                                         "response (or give every response an 'advantage')")
        if G < 2:
            raise ScenarioError("responses", "a group advantage needs at least 2 responses; add responses or give "
                                             "the response an 'advantage' directly")
        out.rewards = [r.reward for r in rs]
        out.task_equal = len(set(out.rewards)) == 1
        shaped = torch.tensor(out.rewards, dtype=torch.float64)
        if cfg.overlong is not None and cfg.overlong.l_max is not None:
            shaped = shaped + overlong_penalty(torch.tensor(lengths), cfg.overlong.l_max, cfg.overlong.l_cache)
            conventions.append(f"reward shaping: DAPO soft overlong punishment added to each response's reward, "
                               f"L_max = {cfg.overlong.l_max}, L_cache = {cfg.overlong.l_cache}")
        out.shaped = shaped.tolist()
        if cfg.adv_eps == 0 and not bool((shaped == shaped[0]).all()) and float(shaped.std(correction=0)) == 0:
            raise ScenarioError("responses", "the rewards differ by so little that their std underflows to 0, and "
                                             "with adv_eps = 0 the z-score divides by 0; set adv_eps > 0 or scale "
                                             "the rewards")
        out.adv, stats = group_advantages(shaped, cfg.advantage, cfg.std, cfg.adv_eps)
        out.mean, out.std, out.no_signal = float(stats.mean), float(stats.std), bool(stats.no_signal)
        conventions.append({
            "group": f"advantages: group z-score A = (R − mean) / (std + ε_std), ε_std = adv_eps = {cfg.adv_eps:g}, std over "
                     + ("G − 1 (sample, as TRL and verl)" if cfg.std == "sample" else "G (population)"),
            "mean": "advantages: Dr.GRPO mean-centred A = R − mean (no std)",
            "rloo": "advantages: RLOO leave-one-out A_i = R_i − mean of the other responses",
        }[cfg.advantage])
        if any(r.advantage is not None for r in rs):
            conventions.append("advantages: a response's own 'advantage' field wins over the computed one")
    # a response's own advantage (a number, or one per token) wins over the computed one
    computed = out.adv
    per_token = any(isinstance(r.advantage, list) for r in rs)
    out.adv = torch.zeros(G, T, dtype=torch.float64) if per_token else computed.clone()
    for i, r in enumerate(rs):
        value = r.advantage if r.advantage is not None else float(computed[i])
        if per_token:
            out.adv[i, :lengths[i]] = torch.tensor(value if isinstance(value, list) else [value] * lengths[i],
                                                   dtype=torch.float64)
        else:
            out.adv[i] = value
    return out


def _masked(rs: list[Response], cfg, a: _Advantages, conventions: list[str]) -> tuple[list[int], bool]:
    """The responses taken out of the loss (overlong filter, dynamic sampling) and whether the group was dropped."""
    masked = []
    if cfg.overlong is not None and cfg.overlong.filter:
        masked = [i for i, r in enumerate(rs) if r.truncated]
        conventions.append("overlong filtering: truncated responses are masked out of the loss")
    dropped = bool(cfg.dynamic_sampling and a.rewards is not None and a.task_equal)
    if cfg.dynamic_sampling and a.rewards is not None:
        conventions.append("dynamic sampling: decided on the task reward before any shaping (DAPO eq. 11: a group "
                           "is kept when 0 < #correct < G, i.e. its task rewards differ)"
                           + ("; all task rewards are equal, so the whole group is dropped" if dropped else ""))
    return (list(range(len(rs))) if dropped else masked), dropped


def _objective_conventions(obj, cfg, mask: Tensor) -> list[str]:
    from ..core.aggregation import AGGREGATIONS, longest
    mode = cfg.loss_agg_mode
    agg = f"loss_agg_mode {mode}, {AGGREGATIONS[mode]}"
    if obj.per_sequence_terms and mode != "seq-mean":
        agg += " over each response's term repeated on every token of it (as verl aggregates GSPO's per-token loss)"
    agg += " (its paper's)" if mode == obj.aggregation else f" (its paper's is {obj.aggregation})"
    if mode == "seq-mean-token-sum-norm":
        agg += f" with L_max = {longest(mask, cfg.max_tokens)}" + \
               ("" if cfg.max_tokens is not None else " (the longest response in the batch, whether or not it takes "
                                                      "part; set max_tokens to fix it)")
    out = [f"aggregation: {agg}; G counts responses that take part", obj.clip_convention(cfg)]
    if cfg.rollout_is is not None:
        how = (f"truncated at C = {cfg.rollout_is_threshold:g} (TIS)" if cfg.rollout_is_threshold_lower is None else
               f"set to 0 outside [{cfg.rollout_is_threshold_lower:g}, {cfg.rollout_is_threshold:g}] (IcePop)")
        what = ("per token, π_old/π_rollout" if cfg.rollout_is == "token" else
                "per response, Π_t π_old/π_rollout on every token of it")
        out.append(f"rollout correction: w = {what}, {how}, detached, multiplies each token's policy term before "
                   "aggregation (verl's algorithm.rollout_correction); the KL term is not weighted")
    if not obj.has_surrogate:
        out.append("its loss value is a surrogate, −Σ w·sg[weight]·A·log π_θ: only its gradient is the "
                   "objective's, so the value is not comparable with other objectives' losses")
    if cfg.beta:
        out.append(f"KL: β = {cfg.beta:g}, estimator {cfg.kl}, inside the per-token term"
                   + ("; under seq-mean it is aggregated as GRPO's, seq-mean-token-mean" if mode == "seq-mean" else ""))
    return out + ["J is maximised, loss = −J; grad_weight = ∂J/∂log π_θ(token): positive raises the token"]


def for_objective(settings, objective: str):
    """The scenario's settings run by another objective; ScenarioError when they do not hold for it (e.g. GSPO with
    token-level rollout weights, or a token-level objective with loss_agg_mode seq-mean)."""
    from ..core.settings import SettingsError
    try:
        return settings.with_(objective=objective)
    except SettingsError as e:
        raise ScenarioError(f"settings.{e.field}", str(e).split(": ", 1)[1]) from None


def run_scenario(scn: Scenario, objective: Optional[str] = None) -> ScenarioResult:
    """Advantages (with the scenario's conventions), masks, then the explain path of one objective."""
    from ..core.explain import explain
    from ..core.objectives import OBJECTIVES
    settings = scn.settings if objective is None else for_objective(scn.settings, objective)
    cfg = settings.resolved()
    obj = OBJECTIVES[cfg.objective]
    rs = scn.responses
    logp, logp_old, logp_ref, mask = batch_tensors(rs)
    longest_response = max(len(r.logp_old) for r in rs)
    if cfg.beta and logp_ref is None:
        missing = next(i for i, r in enumerate(rs) if r.logp_ref is None)
        raise ScenarioError(f"responses[{missing}]", f"β = {cfg.beta} needs p_ref or logp_ref on every response")
    if cfg.max_tokens is not None and cfg.max_tokens < longest_response and "max_tokens" in obj.knobs:
        raise ScenarioError("settings.max_tokens", f"L_max = {cfg.max_tokens} is shorter than the longest "
                                                   f"response ({longest_response} tokens)")
    if not obj.per_token_advantages:
        for i, r in enumerate(rs):
            if isinstance(r.advantage, list) and len(set(r.advantage)) > 1:
                raise ScenarioError(f"responses[{i}].advantage", f"{cfg.objective} uses one advantage per response; "
                                                                 "per-token advantages need a token-level objective "
                                                                 "(e.g. gspo_token)")
    conventions: list[str] = []
    a = _advantages(rs, cfg, logp.shape[1], conventions)
    masked, dropped = _masked(rs, cfg, a, conventions)
    loss_mask = mask.clone()
    loss_mask[masked] = 0
    conventions += _objective_conventions(obj, cfg, mask)

    ex = explain(cfg.objective, logp, logp_old, a.adv, mask, cfg, logp_ref, loss_mask,
                 _rollout_tensor(scn.responses, logp_old) if cfg.rollout_is is not None else None)
    ex.metrics["no_signal"] = a.no_signal
    ex.metrics["dropped_by_dynamic_sampling"] = dropped
    ex.metrics["masked_responses"] = masked
    res = ScenarioResult(scn, ex, a.rewards, a.shaped, a.adv, a.mean, a.std, a.no_signal, dropped, masked,
                         conventions)
    _check_finite(res, logp, logp_ref)
    return res


# ----------------------------------------------------------------------------------------------- the safety net

_TOO_LARGE = ("the scenario's numbers are too large together for float64 (e.g. a ratio exp(log-ratio) up to e^700 "
              "times an advantage up to 1e15, or β times a KL up to e^700); use smaller log-ratios, rewards, "
              "advantages or β")


def _check_finite(res: ScenarioResult, logp: Tensor, logp_ref: Optional[Tensor]) -> None:
    """The last guard: no number of a result may be NaN or ±inf, so none reaches a chart, a table or --json.
    Inputs within the parser's bounds can still overflow together; the error names the first number that did."""
    import math

    import torch

    from ..core.objectives import OBJECTIVES
    ex = res.explanation
    mask = ex.mask > 0
    adv = res.advantages if res.advantages.dim() == 2 else res.advantages.unsqueeze(1).expand_as(ex.ratio)
    # the factors first (advantage, ratios, their products as the hovers and steps show them), then the results
    per_token = [("advantage", adv), ("token ratio r", ex.token_ratio), ("ratio", ex.ratio)]
    if ex.seq_ratio is not None:
        per_token.append(("sequence ratio s_i", ex.seq_ratio.unsqueeze(1).expand_as(ex.ratio)))
    per_token += [("ratio × advantage", ex.ratio * adv), ("token ratio × advantage", ex.token_ratio * adv)]
    if "dual_clip_c" in OBJECTIVES[ex.objective].knobs:  # the floor c·A, where the objective has one
        per_token.append(("c × advantage", ex.settings.dual_clip_c * adv))
    if ex.settings.beta and logp_ref is not None:
        from ..core.advantages import kl_estimate
        per_token.append(("β × KL", ex.settings.beta * kl_estimate(logp, logp_ref, ex.settings.kl)))
    per_token += [("gate", ex.gate), ("gradient weight", ex.grad_weight), ("policy gradient weight", ex.policy_grad),
                  ("closed-form gradient weight", ex.closed_grad)]
    for name, values in per_token:
        if values is None:
            continue
        bad = ~torch.isfinite(values) & mask
        if bool(bad.any()):
            i, t = (int(x) for x in bad.nonzero()[0])
            raise ScenarioError(f"responses[{i}] token {t}", f"{name} is {float(values[i, t])}: {_TOO_LARGE}")
    scalars = {"J": ex.J, "the loss": ex.loss, "the rewards' mean": res.reward_mean, "the rewards' std": res.reward_std}
    scalars |= {f"metric {k}": v for k, v in ex.metrics.items() if isinstance(v, float)}
    for name, value in scalars.items():
        if value is not None and not math.isfinite(value):
            raise ScenarioError("", f"{name} is {value}: {_TOO_LARGE}")
