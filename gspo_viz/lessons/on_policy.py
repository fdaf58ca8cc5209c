"""Lesson 9: on-policy, the ratio is exactly 1 and nothing clips: why a trainer with one update per batch reports a
clip fraction of 0 (a sampled group; the learner can let π_θ drift as later updates of the same batch would)."""
from __future__ import annotations

from ..core.aggregation import AGGREGATIONS
from ..core.objectives import OBJECTIVES
from ..scenarios.sample import sample_group
from ..views.style import fmt
from . import read as R
from .base import Knob, Lesson, Question, Reveal

NAMES = ("grpo", "gspo", "dapo")
G, MIN_LEN, MAX_LEN = 8, 8, 16
TOLERANCE = 5.0             # percentage points

KNOBS = (Knob("drift", "π_θ since the rollout", "choice", 0.0, options=(0.0, 0.02, 0.05, 0.1, 0.3),
              labels=("unchanged: the first (or only) update on this batch", "drifted 0.02: a later update",
                      "drifted 0.05", "drifted 0.1", "drifted 0.3")),
         Knob("seed", "Group (seed)", "seed", 1, low=0, high=9999))     # group 1's rewards differ


def scenario(p: dict) -> dict:
    data = sample_group(G, MIN_LEN, MAX_LEN, p["drift"], p["seed"])
    return data | {"title": f"Lesson 9: on-policy (group {p['seed']}, drift {p['drift']:g})"}


def context(case) -> list[str]:
    res = case.results[NAMES[0]]
    moved = ("π_θ is still π_old: the loss is computed right after the rollout, before any update"
             if case.params["drift"] == 0 else f"π_θ has drifted from π_old by about {case.params['drift']:g} per "
                                               "token log-ratio, as after some updates on the same batch")
    return [f"A sampled group: {G} responses of {MIN_LEN}–{MAX_LEN} tokens, rewards "
            f"{', '.join(fmt(x) for x in res.rewards)}. {moved}.",
            "Clip ranges: " + "; ".join(f"{R.title(n)} {R.band_text(case.results[n])}" for n in NAMES) + "."]


def question(case) -> Question:
    return Question("number", f"What clip fraction (% of tokens) will {R.title(NAMES[0])} report for this batch?",
                    unit="%", low=0.0, high=100.0, step=1.0, tolerance=TOLERANCE)


def reveal(case) -> Reveal:
    first = case.results[NAMES[0]]
    ex = first.explanation
    fractions = {n: case.results[n].explanation.metrics["clip_fraction"] for n in NAMES}
    answer = round(100 * fractions[NAMES[0]], 1)
    lo, hi = ex.metrics["ratio_min"], ex.metrics["ratio_max"]
    each = "; ".join(f"{R.title(n)} {R.pct(f)}" for n, f in fractions.items())
    lines = []
    if lo == hi == 1.0:
        seqs = [case.results[n].explanation.seq_ratio for n in NAMES if case.results[n].explanation.seq_ratio
                is not None]
        every_s = all(bool((s == 1.0).all()) for s in seqs)
        lines.append(f"π_θ = π_old, so every token's ratio is exactly 1 (smallest {fmt(lo)}, largest {fmt(hi)})"
                     + (", and so is every sequence ratio s_i" if seqs and every_s else "") + ". 1 lies inside every "
                     f"clip range, so nothing is clipped: {each}.")
        lines.append("A trainer that makes one update per batch always computes its loss at this point, right after "
                     "the rollout, so it reports a clip fraction of 0 at every step: the clip never acts, and that is "
                     "not a logging bug. The ratio leaves 1 only from the second update on the same batch (several "
                     "minibatches or epochs), or when π_old's log-probabilities come from another engine than the "
                     "trainer's.")
    else:
        lines.append(f"π_θ has moved since the rollout: the token ratios range from {fmt(lo)} to {fmt(hi)}, and the "
                     f"clip acts where a ratio passed a bound on the side its advantage pushes: {each}.")
    if first.no_signal:
        lines.append("All rewards are equal here: every advantage is 0, so no token gets a policy gradient at all.")
    elif lo == hi == 1.0:
        i = next(k for k in range(G) if R.adv(first, k) != 0)
        g, f, A = R.grad(first, i, 0), R.factor(first, i, 0), R.adv(first, i)
        lines.append(f"What remains is the plain policy gradient, each token's aggregation factor times its "
                     f"advantage: in response {i + 1}, {R.num(f)} × ({R.dec(A)}) = {R.num(g)} for every token.")
        for n in NAMES[1:]:
            diff = float((case.results[n].explanation.policy_grad - ex.policy_grad).abs().max())
            if diff < 1e-12:
                lines.append(f"{R.title(n)} gives every token the same gradient weight as {R.title(NAMES[0])} here "
                             f"(largest difference {diff:.1g}).")
            else:
                agg = case.results[n].explanation.settings.loss_agg_mode
                lines.append(f"{R.title(n)}'s weights differ from {R.title(NAMES[0])}'s only by its aggregation, "
                             f"{agg}, {AGGREGATIONS[agg]}: in response {i + 1}, "
                             f"{R.num(R.factor(case.results[n], i, 0))} × {R.term(R.adv(case.results[n], i))} = "
                             f"{R.num(R.grad(case.results[n], i, 0))}.")
    return Reveal(answer, f"{R.pct(fractions[NAMES[0]])} of tokens clipped under {R.title(NAMES[0])}", lines,
                  R.maps([first])[:1] + R.maps([case.results[n] for n in NAMES], grad_only=True), per_row=1)


LESSON = Lesson("on_policy", "On-policy: the ratio is exactly 1 and nothing clips",
                "Right after the rollout π_θ = π_old: predict the clip fraction a trainer reports, then let π_θ drift "
                "as later updates on the same batch would.", NAMES, KNOBS, scenario, context, question, reveal,
                look="Look at p_old and p_new in the table (and the ratios r): what is r when they are equal, and "
                     "which clip range leaves that r out?",
                takeaway="With one update per batch the loss is always taken at π_θ = π_old, where every ratio is 1 "
                         "and nothing clips: a clip fraction of 0 is what such a trainer should report. The clip can "
                         "act only once π_θ differs from π_old: from the second update on the same batch, or when the "
                         "rollout engine's log-probabilities differ from the trainer's.")
