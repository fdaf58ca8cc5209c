"""Lesson 5: Dual-Clip's floor: a wrong answer's token whose ratio shot up, with and without the floor c·A."""
from __future__ import annotations

from ..core.objectives import OBJECTIVES
from ..views.style import fmt
from . import read as R
from .base import Knob, Lesson, Question, Reveal

PLAIN, FLOORED = "grpo", "dual_clip"
I, T = 1, 2                 # the token the lesson asks about: response 2, t = 3
P_OLD = 0.043               # no p_new on the knob's 0.01 grid gives r = 0.8, 1.2 or a c of the knob exactly
RESPONSES = ((("x", "=", "7"), (0.6, 0.5, 0.32), (0.63, 0.52, 0.35)),
             (("x", "=", "9"), (0.6, 0.5, P_OLD), (0.57, 0.49, None)))

KNOBS = (Knob("p_new", f"p_new of “9” (its p_old is {P_OLD})", "slider", 0.2, low=0.01, high=0.5, step=0.01),
         Knob("c", "Dual-Clip's c", "slider", float(OBJECTIVES[FLOORED].defaults["dual_clip_c"]), low=1.5, high=6.0,
              step=0.5),
         Knob("wrong", "Response 2 (the one with “9”) is", "choice", "wrong", options=("wrong", "right"),
              labels=("wrong (reward 0)", "right (reward 1)")))


def scenario(p: dict) -> dict:
    return R.scenario("Lesson 5: Dual-Clip's floor",
                      "The token “9” of response 2 became much more likely; compare GRPO and Dual-Clip on it.",
                      RESPONSES, p["p_new"], [1.0, 0.0] if p["wrong"] == "wrong" else [0.0, 1.0],  # “9” is in 2
                      {"dual_clip_c": p["c"]})


def context(case) -> list[str]:
    res = case.results[FLOORED]
    return [R.token_context(res, I, T, P_OLD, case.params["p_new"]),
            f"Both clip to {R.band_text(res)}; {R.title(FLOORED)} also has c = "
            f"{fmt(res.explanation.settings.dual_clip_c)}: when A < 0 and r > c, it holds the token's term at the "
            "floor c·A. "
            "∂J/∂log π_θ is the token's gradient weight: how strongly the update moves its log-probability."]


def question(case) -> Question:
    w = R.word(case.results[PLAIN], I, T)
    return R.which(f"Which objective moves {w} more, that is, gives it the larger |∂J/∂log π_θ|?", PLAIN, FLOORED)


def reveal(case) -> Reveal:
    plain, floored = case.results[PLAIN], case.results[FLOORED]
    obj = OBJECTIVES[FLOORED]
    w = R.word(plain, I, T)
    r, A = R.ratio(plain, I, T), R.adv(plain, I)
    c = floored.explanation.settings.dual_clip_c
    g_p, g_f = R.grad(plain, I, T), R.grad(floored, I, T)
    answer, answer_text, compare = R.moves_more(plain, floored, I, T)
    probe = r * 1.25
    term_p, d_p = R.term_at(plain, r, A)
    term_pp, d_pp = R.term_at(plain, probe, A)
    term_f, _ = R.term_at(floored, r, A)
    term_fp, _ = R.term_at(floored, probe, A)
    f = R.factor(plain, I, T)
    lines = [f"{R.title(PLAIN)}: {R.decision(plain, I, T, r)}, gradient weight {R.num(g_p)}"
             + (f" = factor × r × A = {R.num(f)} × {fmt(r)} × {R.term(A)}." if g_p != 0 else ".")]
    if R.clip(plain, I, T) == "none" and A < 0 and r > 1:
        lines.append(f"Its term r·A keeps falling as r grows ({R.dec(term_p)} at r = {fmt(r)}, {R.dec(term_pp)} at "
                     f"r = {fmt(probe)}), and so does its slope (∂term/∂log π = r·A = {R.num(d_p)}, then "
                     f"{R.num(d_pp)}): with A < 0 nothing bounds it, so one token whose ratio shot up can dominate "
                     "the update.")
    code = R.clip(floored, I, T)
    if code == "dual":
        lines.append(f"{obj.title}: r = {fmt(r)} {R.reason(floored, I, T)} ({obj.marks[code]}). Its term is "
                     f"{R.dec(term_f)} at r = {fmt(r)} and {R.dec(term_fp)} at r = {fmt(probe)}: held at the floor "
                     f"c·A = {fmt(c)} × ({R.dec(A)}) = {R.dec(c * A)}, flat, so its gradient weight is {R.num(g_f)}.")
    elif A < 0:
        lines.append(f"{obj.title}: r = {fmt(r)} is not above c = {fmt(c)}, so the floor c·A = {R.dec(c * A)} does "
                     f"not act: the same term as {R.title(PLAIN)}, gradient weight {R.num(g_f)}.")
    else:
        lines.append(f"{obj.title}: here A > 0, and its floor acts only for A < 0 ({obj.marks['dual']}), so it "
                     f"decides as {R.title(PLAIN)} does: gradient weight {R.num(g_f)}.")
    lines += compare
    results = {PLAIN: plain, FLOORED: floored}
    figures = [R.curve_figure(results, "value", A, r, w), R.curve_figure(results, "grad", A, r, w)]
    return Reveal(answer, answer_text, lines, figures, figure_note=R.curve_note(results, I, T))


LESSON = Lesson("dual_clip_floor", "Dual-Clip's floor",
                f"With A < 0, a ratio that shot up makes r·A huge and negative; {OBJECTIVES[FLOORED].title} holds the "
                "term at a floor c·A instead.", (PLAIN, FLOORED), KNOBS, scenario, context, question, reveal,
                look="Look at the sign of A and at r of “9” against c: the floor can act only when A < 0 and r > c.",
                takeaway=f"With A < 0, {R.title(PLAIN)}'s term r·A has no lower bound, so a token whose ratio shot up "
                         f"gets a large push; {OBJECTIVES[FLOORED].title} holds the term at c·A once r > c, where its "
                         "gradient is 0. With A > 0, or r ≤ c, the two are the same.")
