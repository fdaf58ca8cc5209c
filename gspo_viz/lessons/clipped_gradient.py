"""Lesson 2: why a clipped token gets no policy gradient (its term is flat in the ratio, and a constant has none)."""
from __future__ import annotations

from ..core.objectives import OBJECTIVES
from ..views.steps import autograd_step, token_steps
from ..views.style import CLIP_SYMBOLS, fmt
from . import read as R
from .base import Choice, Knob, Lesson, Question, Reveal

NAME = "grpo"
I, T = 0, 2                 # the token the lesson asks about: response 1, t = 3
P_OLD = 0.32                # its p_old: no p_new on the knob's 0.01 grid gives r = 0.8 or 1.2 exactly
RESPONSES = ((("x", "=", "7"), (0.6, 0.5, P_OLD), (0.63, 0.52, None)),
             (("x", "=", "9"), (0.6, 0.5, 0.3), (0.57, 0.49, 0.27)))

KNOBS = (Knob("p_new", "p_new of “7” (its p_old is 0.32)", "slider", 0.48, low=0.05, high=0.95, step=0.01),
         Knob("correct", "Response 1 (the one with “7”) is", "choice", "right", options=("right", "wrong"),
              labels=("right (reward 1)", "wrong (reward 0)")))


def scenario(p: dict) -> dict:
    return R.scenario("Lesson 2: why a clipped token gets no policy gradient",
                      "Move p_new of “7” across the clip range and watch its gradient switch off and on.",
                      RESPONSES, p["p_new"], [1.0, 0.0] if p["correct"] == "right" else [0.0, 1.0],
                      {"objective": NAME})


def context(case) -> list[str]:
    res = case.results[NAME]
    return [R.token_context(res, I, T, P_OLD, case.params["p_new"]),
            f"{R.title(NAME)}'s clip range: {R.band_text(res)}. ∂J/∂log π_θ is the token's gradient weight: how "
            "strongly the update raises (> 0) or lowers (< 0) its log-probability."]


def question(case) -> Question:
    res = case.results[NAME]
    w = R.word(res, I, T)
    return Question("one", f"What gradient weight ∂J/∂log π_θ does {R.title(NAME)} give {w}?",
                    (Choice("up", f"positive: it raises {w}"), Choice("zero", "exactly 0: no policy gradient"),
                     Choice("down", f"negative: it lowers {w}")))


def reveal(case) -> Reveal:
    res = case.results[NAME]
    obj = OBJECTIVES[NAME]
    w = R.word(res, I, T)
    r, A, g = R.ratio(res, I, T), R.adv(res, I), R.grad(res, I, T)
    code = R.clip(res, I, T)
    # a ratio further out the way r moved: well past the bound when clipped, a step (likely inside) when not
    probe = (r * 1.25 if r > 1 else r * 0.8) if code != "none" else r * 1.05
    term, _ = R.term_at(res, r, A)
    term_probe, _ = R.term_at(res, probe, A)
    lines = [f"{obj.title}'s rule: " + "; ".join(obj.marks.values()) + "."]
    if code != "none":
        lines.append(f"Here r = {fmt(r)} {R.reason(res, I, T)}, so {obj.title} marks {w} {CLIP_SYMBOLS[code]}. "
                     f"Its term is {R.dec(term)} at r = {fmt(r)} and still {R.dec(term_probe)} at r = {fmt(probe)}: "
                     "past the bound the term is the clipped branch, flat in the ratio.")
        lines.append(f"A term that does not change when π_θ({w}) changes has derivative 0: autograd gives "
                     f"∂J/∂log π_θ({w}) = {R.num(g)}. Its own term no longer pushes {w}, however far past the "
                     "bound r goes.")
    else:
        f = R.factor(res, I, T)
        lines.append(f"Here {R.decision(res, I, T, r)}. Its term changes with the ratio ({R.dec(term)} at "
                     f"r = {fmt(r)}, {R.dec(term_probe)} at r = {fmt(probe)}), so it has a gradient: "
                     f"∂J/∂log π_θ({w}) = factor × r × A = {R.num(f)} × {fmt(r)} × {R.term(A)} = {R.num(g)}, "
                     f"which {R.push(g)} (the factor {R.factor_text(res, I, T)}).")
    others = [t for t in range(len(res.scenario.responses[I].tokens)) if t != T]
    lines.append(f"The other tokens of response {I + 1} keep their own decisions: "
                 + ", ".join(f"{R.word(res, I, t)} (r = {fmt(R.ratio(res, I, t))}): {R.num(R.grad(res, I, t))}"
                             for t in others) + ". Clipping acts on one token at a time.")
    steps = token_steps(res, I, T) + [autograd_step(res, I, T)]
    figures = [R.curve_figure({NAME: res}, "value", A, r, w), R.curve_figure({NAME: res}, "grad", A, r, w)]
    return Reveal(R.direction(g), f"{R.num(g)}, {question(case).label(R.direction(g))}", lines, figures,
                  [(f"{w} step by step ({obj.title})", steps)], figure_note=R.curve_note({NAME: res}, I, T))


LESSON = Lesson("clipped_gradient", "Why a clipped token gets no policy gradient",
                "Once the ratio passes the bound on the side its advantage pushes, the clipped term no longer depends "
                "on π_θ, and a constant has no gradient.", (NAME,), KNOBS, scenario, context, question, reveal,
                look="Look at where r of “7” sits against the clip range, and at the sign of its response's A: is r "
                     "past the bound on the side that A clips (above 1 + ε_high with A > 0, below 1 − ε_low with "
                     "A < 0)?",
                takeaway="A clipped token's term is the bound times A, a constant, so its policy gradient is exactly "
                         "0; any other token's gradient weight is its aggregation factor × r × A.")
