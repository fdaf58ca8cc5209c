"""Lesson 8: soft alternatives that never zero a gradient: a hard clip against CISPO's capped weight and SAPO's gate,
on one token whose ratio the learner moves."""
from __future__ import annotations

import torch

from ..core.objectives import OBJECTIVES
from ..views.style import CLIP_SYMBOLS, fmt
from . import read as R
from .base import Choice, Knob, Lesson, Question, Reveal

NAMES = ("grpo", "cispo", "sapo")
I, T = 0, 2                 # the token the lesson asks about: response 1, t = 3
P_OLD = 0.32                # no p_new on the knob's 0.01 grid gives r = 0.8 or 1.2 exactly
RESPONSES = ((("x", "=", "7"), (0.6, 0.5, P_OLD), (0.63, 0.52, None)),
             (("x", "=", "9"), (0.6, 0.5, 0.3), (0.57, 0.49, 0.27)))

KNOBS = (Knob("p_new", f"p_new of “7” (its p_old is {P_OLD})", "slider", 0.56, low=0.05, high=0.95, step=0.01),
         Knob("correct", "Response 1 (the one with “7”) is", "choice", "right", options=("right", "wrong"),
              labels=("right (reward 1)", "wrong (reward 0)")))


def scenario(p: dict) -> dict:
    return R.scenario("Lesson 8: soft alternatives that never zero a gradient",
                      "One token, “7”, moves; a hard clip, a capped weight and a soft gate decide on it.",
                      RESPONSES, p["p_new"], [1.0, 0.0] if p["correct"] == "right" else [0.0, 1.0], {})


def context(case) -> list[str]:
    res = case.results[NAMES[0]]
    return [R.token_context(res, I, T, P_OLD, case.params["p_new"]),
            "How each decides: " + "; ".join(f"{R.title(n)}: {_rule(case.results[n])}" for n in NAMES) + "."]


def _rule(res) -> str:
    obj = OBJECTIVES[res.explanation.objective]
    if obj.gate_name:
        return f"a soft gate {obj.gate_name} on r·A"
    if obj.zeroes_clipped:
        return f"a hard clip to {R.band_text(res)}"
    return (f"a {obj.clip_form}: the token's weight r is kept within {R.band_text(res)} and not differentiated "
            "(stop-gradient), whatever the sign of A")


def question(case) -> Question:
    w = R.word(case.results[NAMES[0]], I, T)
    return Question("many", f"Which objectives still give {w} a gradient (∂J/∂log π_θ ≠ 0)? Pick all that apply.",
                    tuple(Choice(n, R.title(n)) for n in NAMES))


def gate_at(res, r: float, A: float) -> float:
    """The objective's own gate on r·A for a token with ratio r and advantage A."""
    cfg = res.explanation.settings
    delta = torch.tensor([[r]], dtype=torch.float64).log()
    return float(OBJECTIVES[res.explanation.objective].gate(delta, torch.tensor([A], dtype=torch.float64), cfg))


def _says(res, r: float, A: float) -> str:
    obj = OBJECTIVES[res.explanation.objective]
    g = R.grad(res, I, T)
    if res.explanation.gate is not None:
        far = 2 * r if r > 1 else r / 2
        return (f"{obj.title} has no hard clip: its soft gate {obj.gate_name} is "
                f"{fmt(float(res.explanation.gate[I, T]))} at r = {fmt(r)} (1 at r = 1, {fmt(gate_at(res, far, A))} "
                f"at r = {fmt(far)}) and scales the token's r·A: gradient weight {R.num(g)}.")
    code = R.clip(res, I, T)
    if obj.zeroes_clipped:
        return f"{obj.title}: {R.decision(res, I, T, r)}, gradient weight {R.num(g)}."
    if code != "none":
        return (f"{obj.title} marks it {CLIP_SYMBOLS[code]}: r {R.reason(res, I, T)} ({obj.effect}): gradient "
                f"weight {R.num(g)}.")
    return (f"{obj.title}: r = {fmt(r)} is within {R.band_text(res)}, so its weight is r itself: gradient weight "
            f"{R.num(g)}.")


def reveal(case) -> Reveal:
    first = case.results[NAMES[0]]
    w = R.word(first, I, T)
    r, A = R.ratio(first, I, T), R.adv(first, I)
    answer = [n for n in NAMES if R.grad(case.results[n], I, T) != 0]
    lines = [_says(case.results[n], r, A) for n in NAMES]
    soft = [R.title(n) for n in NAMES if not OBJECTIVES[n].zeroes_clipped]
    zero = [R.title(n) for n in NAMES if n not in answer]
    lines.append((f"Only {' and '.join(zero)} switch{'es' * (len(zero) == 1)} {w} off here. " if zero else
                  f"No objective switches {w} off here: r is not past a hard bound on the side its advantage "
                  "pushes. ") + f"{' and '.join(soft)} never zero a token's gradient by design: past the bound the "
                                "token keeps learning, at a capped or faded rate.")
    results = {n: case.results[n] for n in NAMES}
    figures = [R.curve_figure(results, "grad", A, r, w), R.curve_figure(results, "value", A, r, w)]
    text = ("a gradient under " + ", ".join(R.title(n) for n in answer)) if answer else "no gradient under any"
    return Reveal(answer, text + ": " + ", ".join(f"{R.title(n)} {R.num(R.grad(case.results[n], I, T))}"
                                                  for n in NAMES), lines, figures,
                  figure_note=R.curve_note(results, I, T))


LESSON = Lesson("soft_gates", "Soft alternatives that never zero a gradient",
                f"A hard clip switches a token off past the bound; {R.title(NAMES[1])} caps the token's weight and "
                f"{R.title(NAMES[2])} fades it with a soft gate instead.", NAMES, KNOBS, scenario, context, question,
                reveal,
                look="Look at where r of “7” sits against the bound 1 + ε_high and at the sign of A; then ask of "
                     "each objective whether it can make a gradient exactly 0.",
                takeaway=f"{R.title(NAMES[1])} caps the importance weight (with a stop-gradient) and "
                         f"{R.title(NAMES[2])} "
                         "multiplies r·A by a smooth gate that is 1 at r = 1 and fades away from it: neither "
                         "sets a token's gradient to exactly 0, where a hard clip does.")
