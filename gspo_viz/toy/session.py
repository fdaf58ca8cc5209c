"""Runs compared side by side on the Train page: presets, time-boxed training, the sample viewer and summaries.

No Streamlit here: the page keeps a list of Runs in its session and calls these functions.
"""
from __future__ import annotations

import math
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Optional

import pandas as pd
import torch

from ..core.curves import clip_band
from ..core.objectives import OBJECTIVES
from ..views.style import bounds, fmt
from . import scheduler as sched
from . import tasks
from .train import TrainConfig, Trainer, TrainingStopped, sequence_logp

MAX_RUNS = 4                # runs per session (the page's multiselect allows no more)


@dataclass
class Run:
    label: str
    trainer: Trainer
    error: Optional[str] = None          # set when the run stopped (NaN); the trainer keeps its last good state

    @property
    def objective(self) -> str:
        return self.trainer.cfg.objective


PRESETS: dict[str, dict] = {
    "GRPO vs GSPO vs Dual-Clip on sort": {
        "about": "The three objectives from the same seed on 'sort the digits' with a dense model.",
        "base": {"task": "sort"},
        "runs": [("GRPO", {"objective": "grpo"}), ("GSPO", {"objective": "gspo"}),
                 ("Dual-Clip", {"objective": "dual_clip"})],
    },
    "MoE without Routing Replay": {
        "about": "A mixture-of-experts policy (4 experts, top-1). GRPO with and without Routing Replay, and GSPO "
                 "without it: the GSPO paper reports that GRPO needs Routing Replay to converge on large MoE models. The "
                 "summary under the charts says what this toy shows.",
        "base": {"task": "sort", "moe": True},
        "runs": [("GRPO", {"objective": "grpo"}), ("GRPO + Routing Replay", {"objective": "grpo",
                                                                           "routing_replay": True}),
                 ("GSPO", {"objective": "gspo"})],
    },
    "Rollout mismatch: bf16 rollouts, correction off and on": {
        "about": "Every run samples in bfloat16 while the trainer recomputes π_old in float32 (a real mismatch). GRPO "
                 "without rollout correction, with token-level correction (π_old/π_rollout truncated at 2), and with "
                 "sequence-level correction. The gap panel shows how far the rollout's log-probabilities are from "
                 "the trainer's.",
        "base": {"task": "sort", "rollout_dtype": "bfloat16"},
        "runs": [("GRPO, no correction", {"objective": "grpo"}),
                 ("GRPO, token correction", {"objective": "grpo", "rollout_is": "token"}),
                 ("GRPO, sequence correction", {"objective": "grpo", "rollout_is": "sequence"})],
    },
    "MoE, bf16 rollouts: Routing Replay R2 vs R3": {
        "about": "A mixture-of-experts policy sampled in bfloat16: the rollout routes some tokens to other experts "
                 "than the float32 trainer would. GRPO without replay, replaying the trainer's own routes for π_old "
                 "(R2), and replaying the rollout's routes in every trainer pass (R3, arXiv 2510.11370).",
        "base": {"task": "sort", "moe": True, "rollout_dtype": "bfloat16", "routing_replay": True},
        "runs": [("GRPO, no replay", {"objective": "grpo", "routing_replay": False}),
                 ("GRPO + R2", {"objective": "grpo", "replay_routes": "old"}),
                 ("GRPO + R3", {"objective": "grpo", "replay_routes": "rollout"})],
    },
    "GSPO's tiny clip range vs 0.2": {
        "about": "GSPO with its paper's ε (3e-4 / 4e-4) against GSPO with GRPO's 0.2: on the sequence ratio, "
                 "0.2 almost never binds.",
        "base": {"task": "sort"},
        "runs": [("GSPO ε 3e-4/4e-4", {"objective": "gspo"}),
                 ("GSPO ε 0.2", {"objective": "gspo", "eps_low": 0.2, "eps_high": 0.2})],
    },
}


def make_runs(base: TrainConfig, specs: list[tuple[str, dict]]) -> list[Run]:
    """One Run per (label, overrides), all from the same base config (so the same seed, weights and prompts).
    At most MAX_RUNS: a session's memory and its share of a training slot stay bounded."""
    if len(specs) > MAX_RUNS:
        raise ValueError(f"at most {MAX_RUNS} runs side by side, got {len(specs)}")
    return [Run(label, Trainer(base.with_(**overrides))) for label, overrides in specs]


def _step(run: Run) -> int:
    try:
        run.trainer.step()
        return 1
    except TrainingStopped as e:
        run.error = str(e)
        return 0


def train_for(runs: list[Run], seconds: float, max_steps: Optional[int] = None,
              pool: Optional[Executor] = None) -> int:
    """Step the runs round-robin for about `seconds` (at least one round); returns the steps taken.

    With a thread pool, the runs of a round step at the same time: they share no tensors, each has its own
    generators, so every run computes exactly what it would alone (torch releases the GIL inside its kernels,
    so two runs use two cores).
    """
    start, taken = time.perf_counter(), 0
    active = [r for r in runs if r.error is None]
    while active:
        if pool is None or len(active) == 1:
            taken += sum(_step(r) for r in active)
        else:
            taken += sum(pool.map(_step, active))
        active = [r for r in active if r.error is None]
        if time.perf_counter() - start >= seconds or (max_steps is not None and taken >= max_steps):
            break
    return taken


def _n(row: dict) -> int:
    """How many steps a history row averages (merged rows say so in `steps`, see train.StepLog)."""
    return row.get("steps", 1)


def _mean(rows: list[dict], key: str) -> float:
    """The mean of a metric over every step the rows cover (merged rows count for their steps)."""
    return sum(m[key] * _n(m) for m in rows) / sum(_n(m) for m in rows)


def _where(row: dict) -> str:
    """The step a row is for: "step 12", or "steps 9–12 (their mean)" for a merged row."""
    n = _n(row)
    return f"step {row['step']}" if n == 1 else f"steps {row['step'] - n + 1}–{row['step']} (their mean)"


def metrics_frame(runs: list[Run]) -> pd.DataFrame:
    """Every history row of every run: `step` is the row's last step and `steps_averaged` how many consecutive steps
    the row's metrics average (1 but for the older steps of a long run; see train.StepLog)."""
    rows = [{"run": r.label, "objective": r.objective, "step": m["step"], "steps_averaged": _n(m)}
            | {k: v for k, v in m.items() if k not in ("step", "steps")} for r in runs for m in r.trainer.history]
    return pd.DataFrame(rows)


def averaged_rows(runs: list[Run]) -> tuple[int, int]:
    """(how many of the runs' history rows average several steps, the most steps one row averages)."""
    merged = [_n(m) for r in runs for m in r.trainer.history if _n(m) > 1]
    return len(merged), max(merged, default=1)


def steps_per_second(runs: list[Run]) -> float:
    """Steps taken per second of training (the time spent in steps, not waiting for a slot)."""
    steps = sum(r.trainer.step_count for r in runs)
    busy = sum(m["step_time"] * _n(m) for r in runs for m in list(r.trainer.history))
    return steps / busy if busy else 0.0


def curves(runs: list[Run], key: str, max_points: int = 300) -> tuple[dict[str, tuple[list, list]], int]:
    """{run label: (steps, values)} of one metric, and the number of steps each point averages.

    Up to max_points steps every step is a point; beyond, each point is the mean of k consecutive steps (placed at
    the last of them), so a long run still draws quickly. k is the same for every run and is returned so the page
    can say so. A run's history may already average its older steps (train.StepLog): k is then a multiple of its
    rows' width, so a point never splits a row, and each row counts for the steps it averages.
    """
    hist = {r.label: r.trainer.history for r in runs}         # each is only appended to: a consistent snapshot
    longest = max((h[-1]["step"] for h in hist.values() if h), default=0)
    width = max((_n(m) for h in hist.values() for m in h[:1]), default=1)   # the oldest rows are the widest
    k = max(1, -(-longest // max_points))
    k = -(-k // width) * width
    out = {}
    for label, h in hist.items():
        if k == 1:
            out[label] = ([m["step"] for m in h], [m[key] for m in h])
            continue
        steps, values, total, n = [], [], 0.0, 0
        bucket = None
        for m in h:
            b = (m["step"] - 1) // k
            if b != bucket and n:
                values.append(total / n)
                total, n = 0.0, 0
            if b != bucket:
                steps.append(m["step"])
                bucket = b
            steps[-1] = m["step"]
            total += m[key] * _n(m)
            n += _n(m)
        if n:
            values.append(total / n)
        out[label] = (steps, values)
    return out, k


@dataclass(frozen=True)
class Panel:
    """One panel of the Train page's figure: the history key it draws, its title, whether its y axis is log-scaled,
    and a help line saying what the curve measures."""
    key: str
    title: str
    log_y: bool
    help: str


def panel_specs(runs: list[Run]) -> list[Panel]:
    """The figure's panels for these runs, each with its help line; a panel concerning only some objectives (the dual
    mark) or the MoE is left out when no run draws it (see drawn_by). The help lines quote the runs' own P, G and μ,
    and the dual mark's objective's own words for it (its reason, with the run's c)."""
    cfg = runs[0].trainer.cfg if runs else TrainConfig()
    dual = [r for r in runs if "dual" in OBJECTIVES[r.objective].marks]
    held = "held at c·A"
    if dual:
        obj = OBJECTIVES[dual[0].objective]
        held = f"that {obj.reasons['dual'].format(**bounds(dual[0].trainer.settings))} (held at c·A)"
    out = [
        Panel("reward", "mean reward", False,
              f"mean {cfg.reward} task reward of the step's P·G = {cfg.prompts}·{cfg.group} = "
              f"{cfg.prompts * cfg.group} sampled answers; 1 = every answer right"),
        Panel("clip_fraction", "clip fraction (tokens)", False,
              f"share of the tokens in the loss marked ▲ ▼ ✕ at their minibatch's update; minibatch 1 of "
              f"μ = {cfg.minibatches} is on-policy"),
        Panel("seq_clip_fraction", "clip fraction (sequences)", False,
              "share of the answers in the loss with at least one clip-marked token"),
        Panel("log_ratio_std", "spread of log π/π_old", False,
              "std of the tokens' log π_θ/π_old at their minibatch's update: how far the policy has moved since "
              "sampling"),
        Panel("kl_old_new", "KL(old ‖ new) per token", True,
              "KL(π_old ‖ π_θ) per token: the k3 estimate over the sampled tokens at their minibatch's update; log "
              "axis"),
        Panel("clip_fraction_dual", "tokens held at c·A (dual mark ✕)", False,
              f"share of the tokens in the loss {held}: policy gradient 0"),
        Panel("expert_change_fraction", "tokens whose experts changed", False,
              "share of the tokens routed to other experts at the update than when sampled (Routing Replay: 0)"),
        Panel("rollout_logp_gap", "rollout/trainer gap |log π_old − log π_rollout|", False,
              "mean over the response tokens of how far the bf16 rollout's log-probabilities are from the float32 "
              "trainer's recomputation under the same weights"),
        Panel("rollout_truncated_fraction", "tokens whose rollout weight hit the cap", False,
              "share of the response tokens whose π_old/π_rollout was above the cap and was truncated to it"),
        Panel("rollout_route_mismatch", "tokens routed differently by the rollout", False,
              "share of the input tokens whose experts in the bf16 rollout differ from the trainer's float32 routes "
              "for π_old (what R3 replays against R2)"),
    ]
    return [p for p in out if any(drawn_by(p, r) for r in runs)]


def drawn_by(panel: Panel, run: Run) -> bool:
    """Whether the run has a line in the panel: the dual mark's panel for objectives that have that mark, the experts'
    for the MoE, every other panel for every run."""
    if panel.key == "clip_fraction_dual":
        return "dual" in OBJECTIVES[run.objective].marks
    if panel.key == "expert_change_fraction":
        return run.trainer.cfg.moe
    if panel.key == "rollout_logp_gap":
        return run.trainer.cfg.rollout_dtype == "bfloat16"
    if panel.key == "rollout_truncated_fraction":
        return run.trainer.cfg.rollout_is is not None
    if panel.key == "rollout_route_mismatch":
        return run.trainer.cfg.moe and run.trainer.cfg.rollout_dtype == "bfloat16"
    return True


def panels(runs: list[Run], max_points: int = 300) -> tuple[list[tuple[str, bool, dict, str]], int]:
    """The figure's panels as views.training.training_figure takes them, [(title, log_y, {label: (steps, values)},
    help)], and how many steps each point averages (see curves)."""
    out, every = [], 1
    for p in panel_specs(runs):
        series, every = curves([r for r in runs if drawn_by(p, r)], p.key, max_points)
        out.append((p.title, p.log_y, series, p.help))
    return out, every


def _signal(tr: Trainer, ro) -> tuple[list[int], dict[int, str]]:
    """(prompts of the rollout with a learning signal, {every other prompt: why it has none}), prompts from 0.

    From the numbers the trainer updated with (Trainer.advantages): a prompt has a signal when one of its answers has
    an advantage other than 0 and takes part in the loss. The advantages come from the shaped reward (the soft overlong
    punishment, when the run has it); dynamic sampling and the overlong filter take answers out of the loss."""
    cfg = tr.cfg
    P, G = cfg.prompts, cfg.group
    adv, mask, _ = tr.advantages(ro)
    moves = ((adv != 0) & (mask.sum(-1) > 0)).view(P, G)                         # (P, G)
    nonzero = (adv != 0).view(P, G)
    task = ro.rewards.view(P, G)
    equal_task = (task.amax(-1) == task.amin(-1)).tolist()                       # (P,)
    signal, quiet = [], {}
    for k in range(P):
        if bool(moves[k].any()):
            signal.append(k)
        elif not bool(nonzero[k].any()):
            quiet[k] = ("its answers got the same reward, so every advantage is 0" if equal_task[k] else
                        "the soft overlong punishment makes its answers' rewards equal, so every advantage is 0")
        elif cfg.dynamic_sampling and equal_task[k]:
            quiet[k] = ("dynamic sampling drops it: its answers got the same task reward (only the overlong "
                        "punishment makes their advantages differ)")
        else:
            quiet[k] = "the overlong filter takes every answer with an advantage other than 0 out of the loss"
    return signal, quiet


def signal_groups(run: Run) -> list[int]:
    """Prompts of the run's last rollout (from 0) with a learning signal: an answer whose advantage is not 0 takes
    part in the loss (see _signal). Without reward shaping or filters: the prompts whose answers' rewards differ."""
    ro = run.trainer.last_rollout
    return [] if ro is None else _signal(run.trainer, ro)[0]


@dataclass(frozen=True)
class Samples:
    """What the sample viewer shows of one run, all taken at one moment, so all from one step: the rollout, its
    log-probs under the policy of that moment, and the prompts with a learning signal by the numbers the trainer used.
    scenario(k) is prompt k's G answers as a scenario for the Token Lab, built when asked (a step's rollout is a new
    object, never changed in place, so it can be built after the lock is let go). Prompts are counted from 0 here (the
    page counts them from 1)."""
    run: Run
    step: int
    rollout: object
    logp_new: torch.Tensor       # (B, T-1): the rollout's log-probs under the policy after `step`
    signal: list[int]            # prompts with a learning signal (_signal)
    quiet: dict[int, str]        # every other prompt: why it has none

    @property
    def label(self) -> str:
        return self.run.label

    @property
    def prompts(self) -> int:
        return self.run.trainer.cfg.prompts

    @property
    def first_signal(self) -> int:
        """The prompt the viewer opens on: the first with a learning signal (the first prompt if none has one)."""
        return self.signal[0] if self.signal else 0

    def scenario(self, prompt: int) -> dict:
        """Prompt `prompt`'s G answers as a scenario for the Token Lab (see _group)."""
        return _group(self.run, self.rollout, self.logp_new, prompt, self.step)


def samples(run: Run) -> Optional[Samples]:
    """The run's last rollout as the sample viewer shows it, or None before its first step. Call it with the run's
    Background lock held (the model is read, and the rollout, the model and the step count must be of one step)."""
    tr = run.trainer
    ro = tr.last_rollout
    if ro is None:
        return None
    with torch.no_grad():
        logp_new = sequence_logp(tr.model, ro.seq)[0]                          # (B, T-1) under the current policy
    signal, quiet = _signal(tr, ro)
    return Samples(run, tr.step_count, ro, logp_new, signal, quiet)


def group_scenario(run: Run, prompt: int = 0) -> Optional[dict]:
    """The G responses to one prompt (from 0) of the run's last rollout as a scenario for the Token Lab (see _group)."""
    view = samples(run)
    return None if view is None else view.scenario(prompt)


def _group(run: Run, ro, logp_new, prompt: int, step: int) -> dict:
    """One prompt's G answers as a scenario: p_old as sampled, p_new under the current policy (logp_new, (B, T-1)),
    the task rewards, and the run's objective and settings (its ε, c, L_max, dynamic sampling and overlong shaping),
    so the Token Lab computes the advantages the trainer used."""
    tr = run.trainer
    G = tr.cfg.group
    idx = list(range(prompt * G, (prompt + 1) * G))
    responses = []
    for i in idx:
        pos = ro.resp[i].nonzero().flatten().tolist()
        toks = [tasks.NAMES[int(ro.seq[i, p + 1])] for p in pos]
        responses.append({"tokens": toks, "logp_old": [float(ro.logp_old[i, p]) for p in pos],
                          "logp_new": [min(0.0, float(logp_new[i, p])) for p in pos],
                          "reward": float(ro.rewards[i]), "truncated": bool(ro.truncated[i])})
    responses = [r for r in responses if r["tokens"]]
    s = tr.settings
    settings = {"objective": tr.cfg.objective, "dual_clip_c": tr.cfg.dual_clip_c}
    if tr.cfg.eps_low is not None:
        settings["eps_low"] = tr.cfg.eps_low
    if tr.cfg.eps_high is not None:
        settings["eps_high"] = tr.cfg.eps_high
    if s.max_tokens is not None:                          # the generation budget the run trains with as L_max
        settings["max_tokens"] = s.max_tokens
    if tr.cfg.dynamic_sampling:
        settings["dynamic_sampling"] = True
    if tr.cfg.overlong_filter or tr.cfg.overlong_cache:
        settings["overlong"] = {"filter": tr.cfg.overlong_filter} | (
            {"l_max": tr.cfg.max_new, "l_cache": tr.cfg.overlong_cache} if tr.cfg.overlong_cache else {})
    prompt_len = tr.cfg.max_digits + 2                    # PAD… BOS d1 … dn SEP
    prompt_text = tasks.detokenize([int(t) for t in ro.seq[idx[0]][:prompt_len]])
    return {"title": f"{run.label}, step {step}: answers to {prompt_text} ({tr.cfg.task})",
            "notes": f"The {len(responses)} answers the toy policy sampled at step {step} for prompt {prompt + 1}, "
                     f"{prompt_text} (task: {tr.cfg.task}). p_old is the probability when sampled; p_new is under "
                     f"the policy after this step's {tr.cfg.minibatches} minibatch updates. Objective "
                     f"{OBJECTIVES[s.objective].title}.",
            "responses": responses, "settings": settings}


FELL = 0.3   # a run "collapsed" when its 10-step mean reward is this far below its best 10-step mean


def _fall(history: list[dict], window: int = 10) -> Optional[tuple[float, int, int]]:
    """(best mean reward over `window` consecutive steps, the step it ended at, the steps it covers) if the latest
    such mean is FELL or more below it. Where the history averages older steps, a window is the fewest consecutive
    rows that cover at least `window` steps."""
    if all(_n(m) == 1 for m in history):                  # nothing averaged (the common case): plain windows
        rewards = [m["reward"] for m in history]
        means = [(sum(rewards[k - window:k]) / window, history[k - 1]["step"], window)
                 for k in range(window, len(rewards) + 1)]
    else:
        means = []                                        # (mean, last step, steps covered), one per end row
        for j in range(len(history)):
            i, covered = j, _n(history[j])
            while covered < window and i > 0:
                i -= 1
                covered += _n(history[i])
            if covered >= window:
                means.append((_mean(history[i:j + 1], "reward"), history[j]["step"], covered))
    if not means:
        return None
    best = max(range(len(means)), key=lambda k: means[k][0])
    return means[best] if means[best][0] - means[-1][0] >= FELL else None


def _replay_comparison(off: Run, on: Run, reward_off: float, reward_on: float, collapsed: bool) -> str:
    """What the runs with and without Routing Replay show so far, from their histories."""
    def spread(history: list[dict]) -> tuple[float, float, str]:
        top = max(history, key=lambda m: m["log_ratio_std"])
        return _mean(history, "log_ratio_std"), top["log_ratio_std"], _where(top)

    # snapshots: the training thread may append meanwhile
    history, history_on = list(off.trainer.history), list(on.trainer.history)
    changed = _mean(history, "expert_change_fraction")
    (mean_off, top_off, at_off), (mean_on, top_on, at_on) = spread(history), spread(history_on)
    text = (f"Routing Replay, so far: without it, {off.label} changed experts for {changed:.1%} of tokens on "
            f"average, and its token log-ratios spread by {mean_off:.3f} per step on average (std; largest "
            f"{top_off:.3f} at {at_off}), against {mean_on:.3f} (largest {top_on:.3f} at {at_on}) with it. "
            f"Rewards over the last 10 steps: {reward_off:.3f} without, {reward_on:.3f} with.")
    if mean_off > 1.2 * mean_on:
        text += " Here the routing changes make the token ratios noisier: the cause the GSPO paper names."
    elif mean_on > 1.2 * mean_off:
        text += " Here the token ratios are not noisier without Routing Replay."
    else:
        text += " The spreads are about equal (within 20%)."
    if not collapsed:
        text += (" Neither run has collapsed: so far this toy does not reproduce the instability the GSPO paper "
                 "reports for GRPO on large MoE models without Routing Replay.")
    return text


def _same(x: float, y: float) -> bool:
    return x == y or (math.isnan(x) and math.isnan(y))


@dataclass(frozen=True)
class Alike:
    """How far two runs' lines coincide: they are equal in every panel both are drawn in at each of the first `steps`
    steps both have run (`averaged`: some of those compared as averages of several steps); `differ_at` is the first
    step both have run where a value differs (None: none does so far)."""
    steps: int
    averaged: bool
    differ_at: Optional[int]


def _lines_alike(a: Run, b: Run) -> Optional[Alike]:
    """Where a's and b's lines coincide, over the steps both have run (runs step in rounds, so at a refresh one may be
    a step ahead: the steps only one has are not compared); None when they share no step or differ at the first.
    Rows are matched by the steps they cover (a row averaging older steps matches only the same steps)."""
    ha, hb = list(a.trainer.history), list(b.trainer.history)       # snapshots: the trainers may append meanwhile
    keys = [p.key for p in panel_specs([a, b]) if drawn_by(p, a) and drawn_by(p, b)]
    rows = {(m["step"], _n(m)): m for m in ha}
    common = [(rows[(m["step"], _n(m))], m) for m in hb if (m["step"], _n(m)) in rows]
    equal = 0
    for x, y in common:
        if any(not _same(x[k], y[k]) for k in keys if k in x and k in y):
            break
        equal += 1
    if not equal:
        return None
    same = [y for _, y in common[:equal]]
    return Alike(sum(_n(y) for y in same), any(_n(y) > 1 for y in same),
                 None if equal == len(common) else common[equal][1]["step"] - _n(common[equal][1]) + 1)


def _first_mark(run: Run, mark: str) -> Optional[str]:
    """Where the run's tokens first got `mark` ("step 12", or the averaged row's steps), None if never."""
    return next((_where(m) for m in run.trainer.history if m.get(f"clip_fraction_{mark}", 0.0) > 0), None)


def _identical(runs: list[Run]) -> list[str]:
    """A sentence for each later run whose lines equal an earlier run's in every panel both are drawn in (drawn over
    the earlier run's, they hide them): at every step both have run so far, or over their first steps before they
    parted. With a reason when one objective has a mark the other lacks: no token has got it yet (as Dual-Clip's
    "dual" mark against GRPO; the reason is the objective's own words for that mark), or where a token first did."""
    out = []
    for k, b in enumerate(runs):
        for a in runs[:k]:
            alike = _lines_alike(a, b)
            if alike is None:
                continue
            older = ", the older ones compared as averages" if alike.averaged else ""
            if alike.differ_at is None:
                text = (f"{b.label}'s curves lie exactly on {a.label}'s so far (the same value in every panel both "
                        f"are drawn in, at each of the {alike.steps} steps both have run{older}), so {b.label}'s lines hide "
                        f"{a.label}'s.")
            else:
                text = (f"Up to step {alike.differ_at - 1}, {b.label}'s curves lie exactly on {a.label}'s (the same "
                        f"value in every panel both are drawn in, at each of those {alike.steps} steps{older}) and "
                        f"hide {a.label}'s lines; from step {alike.differ_at} they differ.")
            for x, y in ((a, b), (b, a)):
                obj, other = OBJECTIVES[x.objective], OBJECTIVES[y.objective]
                for mark in [m for m in obj.marks if m not in other.marks]:
                    why = obj.reasons[mark].format(**bounds(x.trainer.settings))
                    who = "a token " + (why if why.startswith("whose ") else f"that {why}")
                    first = _first_mark(x, mark)
                    text += (f" {obj.title} has a mark {other.title} lacks, for {who} ({obj.marks[mark]}), and "
                             + ("no token has reached that yet." if first is None else
                                f"{x.label}'s tokens first got it at {first}."))
            out.append(text)
            break
    return out


def _band(run: Run) -> Optional[tuple[float, float]]:
    """The run's clip range [1 − ε_low, 1 + ε_high] when its objective clips a ratio to one (core.curves.clip_band),
    else None."""
    band = clip_band(run.objective, run.trainer.settings)
    return None if band is None else (band.low, band.high)


def _tail(history: list[dict], steps: int = 10) -> tuple[list[dict], int]:
    """The rows of the last `steps` steps (more when the last rows average several steps), and the steps they cover."""
    tail, covered = [], 0
    for m in reversed(history):
        if covered >= steps:
            break
        tail.insert(0, m)
        covered += _n(m)
    return tail, covered


def _pct(rows: list[dict], key: str) -> float:
    """The mean of a metric over the rows, NaN when a row lacks it."""
    return _mean(rows, key) if all(key in m for m in rows) else math.nan


def _and(words: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return " and ".join(words) if len(words) < 3 else ", ".join(words[:-1]) + " and " + words[-1]


def _names(labels: list[str]) -> str:
    """"A's", "A's and B's", "A's, B's and C's"."""
    return _and([f"{x}'s" for x in labels])


def _wider(width: float, other: float) -> str:
    """How a band `width` wide compares with one `other` wide: "571 times narrower than", "as wide as", ..."""
    if math.isclose(width, other, rel_tol=1e-9):
        return "as wide as"
    return f"{other / width:.3g} times narrower than" if width < other else f"{width / other:.3g} times wider than"


def _clip_levels(runs: list[Run]) -> list[str]:
    """Why an objective whose clip acts on each answer's sequence ratio (its level is 'sequence', as GSPO's) counts
    more tokens as clipped than one that clips token by token (as GRPO): its band, from the run's own ε_low and ε_high,
    against theirs, and a clipped sequence ratio marks every token of its answer. One sentence per such run, from each
    run's last 10 steps; it says "more" only when the numbers are more. The words about the objective (its level,
    its ratio's symbol) come from its definition."""
    def level(r: Run) -> str:
        return OBJECTIVES[r.objective].level

    def tail(r: Run) -> tuple[list[dict], int]:
        return _tail(list(r.trainer.history))

    banded = [r for r in runs if r.trainer.history and _band(r) is not None]
    tokens = [r for r in banded if level(r) == "token"]
    out = []
    for r in (r for r in banded if level(r) == "sequence"):
        obj, (lo, hi), s = OBJECTIVES[r.objective], _band(r), r.trainer.settings
        rows, covered = tail(r)
        clipped, answers = _pct(rows, "clip_fraction"), _pct(rows, "seq_clip_fraction")
        x, width = obj.seq_ratio_symbol or "s", hi - lo
        theirs = {t.label: (_pct(tail(t)[0], "clip_fraction"), _pct(tail(t)[0], "seq_clip_fraction"), _band(t))
                  for t in tokens}
        against = _and([f"{t}'s {c:.1%}" for t, (c, _, _) in theirs.items()])
        if theirs and clipped > max(c for c, _, _ in theirs.values()):
            text = f"Why {r.label} clips more tokens: {clipped:.1%} against {against} (last {covered} steps). Its"
        elif theirs:
            text = f"{r.label} clips {clipped:.1%} of tokens against {against} (last {covered} steps); its"
        else:
            text = f"{r.label} clips {clipped:.1%} of tokens (last {covered} steps): its"
        text += (f" band [{fmt(lo)}, {fmt(hi)}] (ε_low = {s.eps_low:g}, ε_high = {s.eps_high:g}) is {width:.3g} "
                 "wide")
        bands: dict[tuple[float, float], list[str]] = {}
        for t, (_, _, band) in theirs.items():
            bands.setdefault(band, []).append(t)
        if bands:
            text += ", " + _and([f"{_wider(width, b_hi - b_lo)} {_names(ts)} [{fmt(b_lo)}, {fmt(b_hi)}]"
                                 for (b_lo, b_hi), ts in bands.items()])
        text += (f", and it acts on each answer's sequence ratio {x}_i, the geometric mean of the answer's token "
                 f"ratios: when {x}_i leaves the band in the direction the answer's advantage pushes, every token of "
                 "the answer counts as clipped")
        if theirs:
            shares = [(r.label, answers)] + [(t, a) for t, (_, a, _) in theirs.items()]
            text += ". Answers with a clipped token: " + _and([f"{a:.1%} of {t}'s" for t, a in shares])
        else:
            text += f". {answers:.1%} of its answers were clipped"
            spread = _pct(rows, "log_ratio_std")
            if spread > 0:
                text += (f", while its tokens' log π_θ/π_old spread by {spread:.3g} (std) per step against a band "
                         f"{math.log(hi / lo):.3g} wide in log terms")
        out.append(text + ".")
    return out


def summary(runs: list[Run]) -> str:
    """summary_lines as one paragraph."""
    return " ".join(summary_lines(runs))


def summary_lines(runs: list[Run]) -> list[str]:
    """One sentence per run from its history: reward and accuracy now, clip fraction, a collapse if there was one,
    and for the MoE the expert changes; then, when GRPO ran with and without Routing Replay, what that comparison
    shows so far; why an objective that clips whole answers counts more tokens as clipped (_clip_levels); and which
    run's lines hide another's (_identical). Only what was computed."""
    parts = []
    tails = {}                                            # label → (last-10 mean reward, its collapse if any)
    for r in runs:
        h = r.trainer.history
        if not h:
            continue
        last = h[-1]
        tail, covered = _tail(h)                          # the rows of the last 10 steps (more if averaged)
        mean = lambda k: _mean(tail, k)  # noqa: E731
        text = (f"{r.label}: after {last['step']} steps the mean reward is {mean('reward'):.3f} and exact "
                f"accuracy {mean('accuracy'):.0%} (last {max(10, covered)} steps); {mean('clip_fraction'):.1%} of "
                "tokens clipped")
        fall = _fall(h)
        tails[r.label] = (mean("reward"), fall)
        if fall:
            text += f"; its reward fell from {fall[0]:.3f} ({fall[2]} steps up to step {fall[1]})"
        ec = mean("expert_change_fraction")
        if not math.isnan(ec) and r.trainer.cfg.moe:
            text += ("; Routing Replay fixed the experts" if r.trainer.cfg.routing_replay else
                     f"; {ec:.1%} of tokens changed experts between the rollout and the update")
        if r.error:
            text += f". Stopped: {r.error}"
        parts.append(text + ".")
    pairs = [(a, b) for a in runs for b in runs if a.label in tails and b.label in tails and a.trainer.cfg.moe
             and a.objective == b.objective and not a.trainer.cfg.routing_replay and b.trainer.cfg.routing_replay]
    for off, on in pairs:
        (reward_off, fall_off), (reward_on, fall_on) = tails[off.label], tails[on.label]
        parts.append(_replay_comparison(off, on, reward_off, reward_on, collapsed=bool(fall_off or fall_on)))
    parts.extend(_clip_levels(runs))
    parts.extend(_identical(runs))
    return parts


class Background(sched.Job):
    """A session's runs, trained by the server's scheduler (toy/scheduler.py), so the page only draws.

    One per browser session (kept in its session state, never shared). start() joins the line for a training slot;
    a slot steps every run once per round. The session leaves the line or its slot (and so holds no thread) on
    pause(), when every run has stopped, or when the page has sent no heartbeat (beat()) for `idle_stop` seconds:
    the tab was closed or went quiet. A beat after that, the tab being back, joins the line again.
    """

    def __init__(self, runs: list[Run], idle_stop: Optional[float] = None,
                 scheduler: Optional[sched.Scheduler] = None):
        super().__init__(idle_stop)
        if len(runs) > MAX_RUNS:
            raise ValueError(f"at most {MAX_RUNS} runs side by side, got {len(runs)}")
        self.runs = runs
        self.scheduler = scheduler if scheduler is not None else sched.shared()
        self.released: Optional[str] = None   # why the runs were let go (toy/lifetime.py); None while they are kept

    # the scheduler's side
    def round(self) -> None:
        train_for(self.runs, 0.0, max_steps=len(self.runs))

    @property
    def finished(self) -> bool:
        return all(r.error for r in self.runs)

    # the page's side
    @property
    def running(self) -> bool:
        """In line for a slot or training."""
        return self.scheduler.running(self)

    def status(self) -> sched.Status:
        return self.scheduler.status(self)

    def start(self) -> None:
        self.beat()
        self.scheduler.submit(self)

    def beat(self) -> None:
        super().beat()
        if self.reason == "quiet":        # the page went quiet and is back: join the line again
            self.scheduler.submit(self)

    def pause(self) -> None:
        """Leave the line or the slot; no step runs after this returns."""
        self.scheduler.withdraw(self, "paused")

    def step_once(self) -> None:
        """One step of every run on a training slot, waiting for one if need be (the Single step button)."""
        self.beat()
        self.scheduler.run_once(self)

    def release(self, why: str) -> None:
        """Leave the scheduler and let go of the runs (their models, optimizers and histories), for good: the
        session that owned them is gone (toy/lifetime.py)."""
        self.scheduler.withdraw(self, "released")
        with self.lock:
            self.runs = []
            self.released = why
