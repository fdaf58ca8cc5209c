"""Lesson 7: GSPO's tiny ε: why a clip on the sequence ratio s_i with ε ~ 1e-4 clips far more tokens than GRPO's
per-token clip with ε = 0.2 (on a sampled group; "try another group" draws a new one)."""
from __future__ import annotations

import math

from ..core.objectives import OBJECTIVES
from ..scenarios.sample import sample_group
from ..views.style import fmt
from . import read as R
from .base import Knob, Lesson, Question, Reveal

TOKEN_LEVEL, SEQUENCE_LEVEL = "grpo", "gspo"
G, MIN_LEN, MAX_LEN = 8, 8, 24

KNOBS = (Knob("drift", "How far π_θ drifted from π_old (std of the token log-ratios)", "choice", 0.1,
              options=(0.001, 0.01, 0.05, 0.1, 0.2, 0.4)),
         Knob("seed", "Group (seed)", "seed", 0, low=0, high=9999))


def scenario(p: dict) -> dict:
    data = sample_group(G, MIN_LEN, MAX_LEN, p["drift"], p["seed"])
    return data | {"title": f"Lesson 7: GSPO's tiny ε (group {p['seed']}, drift {p['drift']:g})"}


def context(case) -> list[str]:
    tok, seq = case.results[TOKEN_LEVEL], case.results[SEQUENCE_LEVEL]
    rewards = ", ".join(fmt(x) for x in tok.rewards)
    return [f"A sampled group: {G} responses of {MIN_LEN}–{MAX_LEN} tokens, rewards {rewards}; each token's "
            f"log-ratio log r moved by a random amount with std {case.params['drift']:g}.",
            f"{R.title(TOKEN_LEVEL)} clips each token's ratio r to {R.band_text(tok)}; {R.title(SEQUENCE_LEVEL)} "
            f"clips each response's s_i = exp(mean of its log r) to {R.band_text(seq)} (each with its paper's ε). A "
            "clipped response counts all its tokens as clipped."]


def question(case) -> Question:
    return R.which("Which objective clips more of this group's tokens?", TOKEN_LEVEL, SEQUENCE_LEVEL,
                   "the same share")


def _be(n: int, one: str, many: str) -> str:
    return one if n == 1 else many


def _std(xs: list[float]) -> float:
    m = sum(xs) / len(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / len(xs))


def reveal(case) -> Reveal:
    tok, seq = case.results[TOKEN_LEVEL], case.results[SEQUENCE_LEVEL]
    f_t, f_s = tok.explanation.metrics["clip_fraction"], seq.explanation.metrics["clip_fraction"]
    answer = R.larger(f_t, f_s, TOKEN_LEVEL, SEQUENCE_LEVEL)
    N = tok.explanation.metrics["tokens"]
    n_t, n_s = len(R.clipped(tok)), len(R.clipped(seq))
    rows = sorted({i for i, _ in R.clipped(seq)})
    lines = [f"{R.title(TOKEN_LEVEL)} clipped {n_t} of {N} tokens ({R.pct(f_t)}), each judged by its own ratio "
             f"against {R.band_text(tok)}.",
             f"{R.title(SEQUENCE_LEVEL)} clipped {n_s} of {N} tokens ({R.pct(f_s)})"
             + (f": {len(rows)} of {G} responses whole, each judged by its s_i against {R.band_text(seq)}."
                if OBJECTIVES[SEQUENCE_LEVEL].level == "sequence" else ".")]
    if tok.no_signal:
        lines.append("All rewards are equal, so every advantage is 0, and a clip needs A ≠ 0 (it acts on the side "
                     "the advantage pushes): neither objective clips anything.")
    elif seq.explanation.seq_ratio is not None:
        s = seq.explanation.seq_ratio.tolist()
        lo, hi = R.band(seq)
        out = [i for i in range(G) if not lo <= s[i] <= hi]
        sd_t = tok.explanation.metrics["log_ratio_std"]
        sd_s = _std([math.log(x) for x in s])
        w_t, w_s = R.band(tok)[1] - R.band(tok)[0], hi - lo
        less = sd_t / sd_s if sd_s > 0 else math.inf
        lines.append(f"Why: the token log-ratios spread with std {fmt(sd_t)}. log s_i is their mean over a "
                     f"response, so it spreads {less:.1f}× less (std {R.num(sd_s)}). But "
                     f"{R.title(SEQUENCE_LEVEL)}'s range is {w_t / w_s:.0f}× narrower than {R.title(TOKEN_LEVEL)}'s "
                     f"(width {w_s:.4g} against {fmt(w_t)}).")
        if out:
            far = "far less than the range narrowed, " if 10 * less < w_t / w_s else ""
            against = [i for i in out if i not in rows]
            lines.append(f"Averaging shrinks the spread {far}so {len(out)} of {G} s_i {_be(len(out), 'lies', 'lie')} "
                         f"outside the range. {len(rows)} of them moved the way {_be(len(rows), 'its', 'their')} "
                         "advantage pushes (above for A > 0, below for A < 0) and "
                         f"{_be(len(rows), 'is', 'are')} clipped whole"
                         + (f"; {len(against)} moved against {_be(len(against), 'its', 'their')} advantage and "
                            f"{_be(len(against), 'keeps its', 'keep their')} gradient." if against else "."))
        else:
            lines.append(f"Here the drift is so small that every s_i stays inside {R.title(SEQUENCE_LEVEL)}'s range: "
                         "nothing to clip.")
    verdict = "the same share" if answer == R.SAME else f"{R.title(answer)} clips more"
    return Reveal(answer, f"{verdict}: {R.pct(f_t)} of tokens under {R.title(TOKEN_LEVEL)}, {R.pct(f_s)} under "
                          f"{R.title(SEQUENCE_LEVEL)}", lines, R.maps([tok, seq], grad_only=True),
                  per_row=1)


def _goal() -> str:
    t, s = OBJECTIVES[TOKEN_LEVEL].defaults, OBJECTIVES[SEQUENCE_LEVEL].defaults
    w_t, w_s = t["eps_low"] + t["eps_high"], s["eps_low"] + s["eps_high"]
    return (f"{R.title(SEQUENCE_LEVEL)}'s clip range (ε_low {s['eps_low']:g}, ε_high {s['eps_high']:g}: {w_s:g} wide) "
            f"is {w_t / w_s:.0f}× narrower than {R.title(TOKEN_LEVEL)}'s ({t['eps_low']:g}, {t['eps_high']:g}: "
            f"{w_t:g} wide), on a ratio that averages the tokens' log-ratios: see what that does to the share of "
            "clipped tokens.")


LESSON = Lesson("gspo_epsilon", "GSPO's tiny ε and why it clips far more tokens", _goal(),
                (TOKEN_LEVEL, SEQUENCE_LEVEL), KNOBS, scenario, context, question, reveal,
                look="Look at how wide each clip range is, and remember that s_i averages a whole response's "
                     "log-ratios: averaging shrinks their spread, but by how much against the ranges' widths?",
                takeaway=f"Averaging over a response shrinks the spread of log s_i only a few times (about √|y_i| for "
                         f"independent drifts), while {R.title(SEQUENCE_LEVEL)}'s range is hundreds of times narrower "
                         f"than {R.title(TOKEN_LEVEL)}'s and clips whole responses: at the small drifts of a few "
                         f"updates it clips a far larger share of tokens (at a large drift {R.title(TOKEN_LEVEL)}'s "
                         "clip catches up).")
