"""Lesson 4: response length and aggregation: the weight of one token in a short and in a long response."""
from __future__ import annotations

import math

from ..core.aggregation import AGGREGATIONS, longest
from ..core.objectives import OBJECTIVES
from ..views.style import fmt
from . import read as R
from .base import Choice, Knob, Lesson, Question, Reveal

NAMES = ("grpo", "dapo", "dr_grpo")        # one per aggregation mode of a token-level objective
SHORT_WORDS = ("It", "is", "5", ".", "Sure", "of", "it", "!")
LONG_WORDS = ("First", ",", "2", "+", "3", "means", "adding", "3", "to", "2", ";", "counting", "up", "gives",
              "3", ",", "4", ",", "5", ".", "So", "it", "is", "6")

# the ranges meet at one length only, so response 1 is never the longer one
KNOBS = (Knob("short", "Tokens in response 1 (the short one)", "slider", 2, low=1, high=len(SHORT_WORDS), step=1),
         Knob("long", "Tokens in response 2 (the long one)", "slider", 12, low=len(SHORT_WORDS), high=len(LONG_WORDS),
              step=1),
         Knob("right", "The right response is", "choice", "short", options=("short", "long"),
              labels=("the short one", "the long one")))


def _p_old(t: int) -> float:
    return round(0.3 + 0.1 * ((3 * t) % 6), 2)     # 0.3 … 0.8, a pattern; p_new = p_old (every ratio is 1)


def scenario(p: dict) -> dict:
    responses = []
    for kind, words in (("short", SHORT_WORDS), ("long", LONG_WORDS)):
        probs = [_p_old(t) for t in range(p[kind])]
        responses.append({"tokens": list(words[:p[kind]]), "p_old": probs, "p_new": probs,
                          "reward": 1.0 if kind == p["right"] else 0.0})
    return {"title": "Lesson 4: length and aggregation",
            "notes": "A short and a long response, π_θ = π_old (every ratio is 1): the weights show the aggregation "
                     "and the advantage alone.", "responses": responses, "settings": {}}


def _lengths(case) -> list[int]:
    return [len(r.tokens) for r in case.results[NAMES[0]].scenario.responses]


def _who(case, i: int) -> str:
    """'response 1 (2 tokens)'."""
    return f"response {i + 1} ({R.plural(_lengths(case)[i], 'token')})"


def context(case) -> list[str]:
    L = _lengths(case)
    right = 0 if case.params["right"] == "short" else 1
    return [f"Response 1 has {R.plural(L[0], 'token')}, response 2 has {L[1]}; response {right + 1} is right "
            f"(reward 1), the other wrong (reward 0). Here π_θ = π_old, so every ratio is exactly 1 and nothing is "
            "clipped: a token's gradient weight is its aggregation factor × A.",
            "The objectives aggregate differently: " + "; ".join(
                f"{R.title(n)} {OBJECTIVES[n].aggregation}, {AGGREGATIONS[OBJECTIVES[n].aggregation]}"
                for n in NAMES) + "."]


def question(case) -> Question:
    return Question("many", "Under which objectives does one token of response 1 get the same size of gradient weight "
                            "|∂J/∂log π_θ| as one token of response 2? Pick all that apply (or none).",
                    tuple(Choice(n, f"{R.title(n)} ({OBJECTIVES[n].aggregation})") for n in NAMES))


def _same(a: float, b: float) -> bool:
    return math.isclose(abs(a), abs(b), rel_tol=1e-9, abs_tol=1e-15)


def _times(a: float, b: float, where: tuple[str, str]) -> str:
    """'the same size', or 'N× as much in <where of the larger>'."""
    if _same(a, b):
        return "the same size"
    k = abs(a) / abs(b)
    return f"{fmt(max(k, 1 / k))}× as much in {where[0] if k > 1 else where[1]}"


def reveal(case) -> Reveal:
    same = [n for n in NAMES if _same(R.grad(case.results[n], 0, 0), R.grad(case.results[n], 1, 0))]
    first = case.results[NAMES[0]]
    L = _lengths(case)
    wrong = 1 if case.params["right"] == "short" else 0     # the wrong response's index
    where = ("response 1", "response 2")
    lines = []
    for n in NAMES:
        res = case.results[n]
        obj = OBJECTIVES[n]
        g = [R.grad(res, i, 0) for i in (0, 1)]
        text = (f"{obj.title} ({obj.aggregation}, {AGGREGATIONS[obj.aggregation]}"
                + (f", where L_max is a constant, the generation budget; none is set here, so it is the longest "
                   f"response, {longest(res.explanation.mask, res.explanation.settings.max_tokens)}"
                   if "max_tokens" in obj.knobs else "")
                + f"): a token of {_who(case, 0)} gets {R.num(g[0])}, a token of {_who(case, 1)} {R.num(g[1])}: "
                + _times(g[0], g[1], where) + ".")
        rule = R.advantage_rule(res)
        if rule != R.advantage_rule(first):
            text += (f" Its advantages differ too: {rule}, so A = {R.signed(R.adv(res, 0))} and "
                     f"{R.signed(R.adv(res, 1))}.")
        lines.append(text)
    for n in NAMES:
        res = case.results[n]
        if n in same:
            continue
        g = [abs(R.grad(res, i, 0)) for i in (0, 1)]
        k = g[wrong] / g[1 - wrong]
        how = f"{fmt(1 / k)}× more gently than" if k < 1 else f"{fmt(k)}× as hard as"
        lines.append(f"Under {R.title(n)}, one token of the {L[wrong]}-token wrong response is pushed down {how} one "
                     f"token of the {L[1 - wrong]}-token right response is pushed up.")
    totals = [(n, [_total(case.results[n], i) for i in (0, 1)]) for n in NAMES]
    lines.append(("Summed over each response's tokens:",
                  [f"{R.title(n)}: {R.num(t[0])} for response 1 and {R.num(t[1])} for response 2, "
                   + _times(t[0], t[1], where) + "." for n, t in totals]))
    return Reveal(same, ("the same size under " + ", ".join(R.title(n) for n in same)) if same else
                  "under none of them", lines, R.maps([case.results[n] for n in NAMES], grad_only=True),
                  per_row=1)


def _total(res, i: int) -> float:
    return float(res.explanation.policy_grad[i].sum())


LESSON = Lesson("length", "Length and aggregation",
                "Where the 1/|y| goes decides whether a token of a long response weighs less than a token of a short "
                "one: per response, over all tokens, or over a constant budget.", NAMES, KNOBS, scenario, context,
                question, reveal,
                look="Look at the two lengths and at where each aggregation divides: by the response's own length "
                     "|y_i|, by the group's total Σ|y_i|, or by a constant L_max.",
                takeaway=f"Dividing by each response's own length ({R.title(NAMES[0])}) makes a token of a long "
                         "response weigh less: a long wrong answer is punished less per token, a short right one "
                         f"rewarded more (the length bias {R.title(NAMES[2])} names); dividing by one number for every "
                         f"response ({R.title(NAMES[1])}'s Σ|y_i|, {R.title(NAMES[2])}'s L_max) gives every token of "
                         "equal |A| the same weight.")
