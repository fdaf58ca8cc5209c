"""Lesson 1: the ratio π_θ/π_old and its clip, by the sign of the advantage (one right and one wrong answer)."""
from __future__ import annotations

from ..core.objectives import OBJECTIVES
from ..views.style import CLIP_SYMBOLS, fmt
from . import read as R
from .base import Choice, Knob, Lesson, Question, Reveal

NAME = "grpo"
# Two answers to "2 + 3 = ?": tokens, p_old, and each token's ratio p_new/p_old. No ratio lies on the knob's 0.05
# grid, so no ε the learner picks puts a ratio exactly on a bound.
ANSWERS = ((("The", "sum", "is", "5"), (0.5, 0.4, 0.6, 0.3), (1.08, 0.62, 0.93, 1.46)),
           (("The", "sum", "is", "6"), (0.5, 0.3, 0.6, 0.35), (0.93, 1.37, 1.03, 0.57)))

KNOBS = (Knob("correct", "Which response is correct?", "choice", 1, options=(1, 2),
              labels=("response 1", "response 2")),
         Knob("eps", "ε (the same on both sides)", "slider", 0.2, low=0.05, high=0.5, step=0.05))


def scenario(p: dict) -> dict:
    responses = [{"tokens": list(tokens), "p_old": list(p_old), "p_new": [round(a * r, 6) for a, r in zip(p_old, rs)],
                  "reward": 1.0 if k + 1 == p["correct"] else 0.0}
                 for k, (tokens, p_old, rs) in enumerate(ANSWERS)]
    return {"title": "Lesson 1: ratio and clipping by the sign of A",
            "notes": "Two responses to the same prompt, one right and one wrong, with the same clip range.",
            "responses": responses, "settings": {"objective": NAME, "eps_low": p["eps"], "eps_high": p["eps"]}}


def context(case) -> list[str]:
    res = case.results[NAME]
    rewards = "; ".join(f"response {i + 1} has reward {fmt(r.reward)}, so A = {R.signed(R.adv(res, i))}"
                           for i, r in enumerate(res.scenario.responses))
    return [f"Two answers to one prompt: {rewards}. The advantage A says how much better than the group a response "
            f"scored ({R.advantage_rule(res)}); the update makes the tokens of a response with A > 0 more likely, "
            "those of one with A < 0 less likely.",
            f"{R.title(NAME)}'s clip range here: [1 − ε_low, 1 + ε_high] = {R.band_text(res)}. The table gives every "
            "token's ratio r = π_θ/π_old: above 1, π_θ makes the token more likely than π_old did; below 1, less likely.",
            "A token's gradient weight ∂J/∂log π_θ says how strongly the update raises (> 0) or lowers (< 0) its "
            "log-probability; a clipped token's is 0."]


def _tokens(res) -> list[tuple[int, int]]:
    return [(i, t) for i, r in enumerate(res.scenario.responses) for t in range(len(r.tokens))]


def question(case) -> Question:
    res = case.results[NAME]
    obj = OBJECTIVES[NAME]
    choices = tuple(Choice(f"{i},{t}", f"{R.at(i, t)}: {R.word(res, i, t)} (r = {fmt(R.ratio(res, i, t))})")
                    for i, t in _tokens(res))
    return Question("many", f"Which tokens does {obj.title} clip ({obj.effect})? Pick every one (or none).", choices)


def reveal(case) -> Reveal:
    res = case.results[NAME]
    obj = OBJECTIVES[NAME]
    hits = R.clipped(res)
    answer_text = (f"{obj.title} clips {R.plural(len(hits), 'token')}: "
                   + "; ".join(f"{R.word(res, i, t)} ({R.at(i, t)}, {CLIP_SYMBOLS[R.clip(res, i, t)]})"
                               for i, t in hits)
                   if hits else f"{obj.title} clips no token here")
    lo, hi = R.band(res)
    lines = [f"{obj.title}'s rule depends on the sign of A: " + "; ".join(obj.marks.values()) + "."]
    for i, resp in enumerate(res.scenario.responses):
        A = R.adv(res, i)
        details = []
        for t in range(len(resp.tokens)):
            r, g = R.ratio(res, i, t), R.grad(res, i, t)
            if lo <= r <= hi:
                continue
            push = f", which {R.push(g)} back" if R.clip(res, i, t) == "none" and g != 0 else ""
            details.append(f"{R.word(res, i, t)}: {R.decision(res, i, t, r)}; gradient weight {R.num(g)}{push}.")
        inside = [R.word(res, i, t) for t in range(len(resp.tokens)) if lo <= R.ratio(res, i, t) <= hi]
        if inside:
            details.append(f"{', '.join(inside)}: inside {R.band_text(res)}, not clipped.")
        lines.append((f"Response {i + 1} (A = {R.signed(A)}):", details))
    return Reveal([f"{i},{t}" for i, t in hits], answer_text, lines, R.maps([res]), per_row=1)


LESSON = Lesson("sign_of_a", "Ratio and clipping by the sign of A",
                "The clip range bounds the ratio r = π_θ/π_old, but which side of it acts depends on the sign of the "
                "advantage.", (NAME,), KNOBS, scenario, context, question, reveal,
                look="Look at each token's ratio r in the table (or in the choices) and at the sign of its response's "
                     "A: which side of the range can stop a token with A > 0, and which one with A < 0?",
                takeaway="The clip stops a token only once its ratio has passed the bound in the direction its "
                         "advantage pushes (above 1 + ε_high with A > 0, below 1 − ε_low with A < 0); a token that "
                         "moved the other way keeps its gradient, which pulls it back.")
