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

from ..core.objectives import OBJECTIVES
from ..views.style import bounds
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


def signal_groups(run: Run) -> list[int]:
    """Prompts of the run's last rollout whose G answers got different task rewards: the groups dynamic sampling
    keeps (DAPO eq. 11). Without the soft overlong punishment a group with equal rewards has all advantages 0."""
    ro = run.trainer.last_rollout
    if ro is None:
        return []
    rewards = ro.rewards.view(run.trainer.cfg.prompts, run.trainer.cfg.group)      # (P, G)
    return [int(i) for i in torch.nonzero(rewards.amax(-1) > rewards.amin(-1)).flatten()]


def group_scenario(run: Run, prompt: int = 0) -> Optional[dict]:
    """The G responses to one prompt of the run's last rollout as a scenario for the Token Lab:
    p_old as sampled, p_new under the current policy, the rewards, the run's objective and ε."""
    tr = run.trainer
    ro = tr.last_rollout
    if ro is None:
        return None
    G = tr.cfg.group
    idx = list(range(prompt * G, (prompt + 1) * G))
    with torch.no_grad():
        logp_new, _, _, _ = sequence_logp(tr.model, ro.seq[idx])
    responses = []
    for row, i in enumerate(idx):
        pos = ro.resp[i].nonzero().flatten().tolist()
        toks = [tasks.NAMES[int(ro.seq[i, p + 1])] for p in pos]
        responses.append({"tokens": toks, "logp_old": [float(ro.logp_old[i, p]) for p in pos],
                          "logp_new": [min(0.0, float(logp_new[row, p])) for p in pos],
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
    return {"title": f"{run.label}, step {tr.step_count}: answers to {prompt_text} ({tr.cfg.task})",
            "notes": f"The {len(responses)} answers the toy policy sampled at step {tr.step_count} for the prompt "
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


def _unfired_marks(x: Run, y: Run) -> list[str]:
    """The marks x's objective has and y's lacks that no token of x's run has got yet (its clip_fraction_<mark>
    is 0 at every step): while that holds, x's clip decisions are ones y's objective can make too."""
    mine, theirs = OBJECTIVES[x.objective].marks, OBJECTIVES[y.objective].marks
    return [mark for mark in mine if mark not in theirs
            and sum(m.get(f"clip_fraction_{mark}", 0.0) for m in x.trainer.history) == 0]


def _identical(runs: list[Run]) -> list[str]:
    """A sentence for each later run whose rewards so far equal an earlier run's at every step (its lines hide the
    earlier run's), with a reason when one objective has a mark the other lacks and no token has got it yet (as
    Dual-Clip's "dual" mark against GRPO): the reason is the objective's own words for that mark."""
    out = []
    for k, b in enumerate(runs):
        hb = b.trainer.history
        for a in runs[:k]:
            ha = a.trainer.history
            if not hb or len(ha) != len(hb) or any(x["reward"] != y["reward"] for x, y in zip(ha, hb)):
                continue
            averaged = any(_n(m) > 1 for m in hb)
            text = (f"{b.label}'s curves lie exactly on {a.label}'s so far (the same reward at every one of "
                    f"{hb[-1]['step']} steps{', the older ones compared as averages' if averaged else ''}), so they "
                    "hide them.")
            for x, y in ((a, b), (b, a)):
                obj, other = OBJECTIVES[x.objective], OBJECTIVES[y.objective]
                for mark in _unfired_marks(x, y):
                    why = obj.reasons[mark].format(**bounds(x.trainer.settings))
                    who = "a token " + (why if why.startswith("whose ") else f"that {why}")
                    text += (f" {obj.title} has a mark {other.title} lacks, for {who} ({obj.marks[mark]}), and no "
                             f"token has reached that yet.")
            out.append(text)
            break
    return out


def summary(runs: list[Run]) -> str:
    """summary_lines as one paragraph."""
    return " ".join(summary_lines(runs))


def summary_lines(runs: list[Run]) -> list[str]:
    """One sentence per run from its history: reward and accuracy now, clip fraction, a collapse if there was one,
    and for the MoE the expert changes; then, when GRPO ran with and without Routing Replay, what that comparison
    shows so far. Only what was computed."""
    parts = []
    tails = {}                                            # label → (last-10 mean reward, its collapse if any)
    for r in runs:
        h = r.trainer.history
        if not h:
            continue
        last = h[-1]
        tail, covered = [], 0
        for m in reversed(h):                             # the rows of the last 10 steps (more if averaged)
            if covered >= 10:
                break
            tail.insert(0, m)
            covered += _n(m)
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
