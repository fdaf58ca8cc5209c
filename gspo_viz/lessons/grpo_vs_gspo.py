"""Lesson 3: GRPO and GSPO on the same group: a token's own ratio against its response's sequence ratio s_i."""
from __future__ import annotations

import math

from ..core.objectives import OBJECTIVES
from ..views.style import fmt
from . import read as R
from .base import Knob, Lesson, Question, Reveal

TOKEN_LEVEL, SEQUENCE_LEVEL = "grpo", "gspo"
I = 0                       # the response the lesson asks about
RESPONSES = ((("Let", "x", "=", "3"), (0.4, 0.5, 0.6, 0.22), (0.34, 0.475, 0.558, None)),
             (("Let", "x", "=", "4"), (0.4, 0.5, 0.6, 0.3), (0.408, 0.485, 0.606, 0.27)))

KNOBS = (Knob("p_new", "p_new of “3” (response 1, t = 4; its p_old is 0.22)", "slider", 0.33, low=0.05, high=0.95,
              step=0.01),
         Knob("ask", "Ask about this token of response 1", "choice", 0, options=(0, 1, 2, 3),
              labels=tuple(f"t = {t + 1}: “{w}”" for t, w in enumerate(RESPONSES[0][0]))))


def scenario(p: dict) -> dict:
    responses = R.responses(RESPONSES, p["p_new"], [1.0, 0.0])          # response 1 is right
    return {"title": "Lesson 3: GRPO vs GSPO on the same group",
            "notes": "Response 1 is right; one of its tokens, “3”, moves. Compare a token's gradient weight under "
                     "both objectives.", "responses": responses, "settings": {}}


def context(case) -> list[str]:
    tok, seq = case.results[TOKEN_LEVEL], case.results[SEQUENCE_LEVEL]
    L = len(tok.scenario.responses[I].tokens)
    rs = " · ".join(fmt(R.ratio(tok, I, t)) for t in range(L))
    s = float(seq.explanation.seq_ratio[I])
    return [f"Response 1 is right (A = {R.signed(R.adv(tok, 0))}), response 2 wrong (A = {R.signed(R.adv(tok, 1))}).",
            f"Each objective uses its paper's ε: {R.title(TOKEN_LEVEL)} clips each token's ratio r to "
            f"{R.band_text(tok)}, {R.title(SEQUENCE_LEVEL)} clips each response's sequence ratio s_i to "
            f"{R.band_text(seq)}.",
            f"s_1, the geometric mean of response 1's token ratios: ({rs})^(1/{L}) = {R.near(s, *R.band(seq))}. "
            "∂J/∂log π_θ is a token's gradient weight: how strongly the update moves its log-probability."]


def question(case) -> Question:
    tok = case.results[TOKEN_LEVEL]
    t = case.params["ask"]
    return R.which(f"Which objective moves {R.word(tok, I, t)} ({R.at(I, t)}) more, that is, gives it the larger "
                   "|∂J/∂log π_θ|?", TOKEN_LEVEL, SEQUENCE_LEVEL)


def _clipped_words(res, i: int) -> list[str]:
    return [R.word(res, i, t) for i2, t in R.clipped(res) if i2 == i]


def reveal(case) -> Reveal:
    tok, seq = case.results[TOKEN_LEVEL], case.results[SEQUENCE_LEVEL]
    obj_t, obj_s = OBJECTIVES[TOKEN_LEVEL], OBJECTIVES[SEQUENCE_LEVEL]
    t = case.params["ask"]
    w = R.word(tok, I, t)
    L = len(tok.scenario.responses[I].tokens)
    g_t, g_s = R.grad(tok, I, t), R.grad(seq, I, t)
    answer, answer_text, compare = R.moves_more(tok, seq, I, t)
    r = R.ratio(tok, I, t)
    s = float(seq.explanation.seq_ratio[I])
    row = [R.grad(seq, I, k) for k in range(L)]
    shared = all(math.isclose(x, row[0], rel_tol=1e-12, abs_tol=1e-18) for x in row)
    lines = [f"{obj_t.title} judges {w} by its own ratio: {R.decision(tok, I, t, r)}, gradient weight {R.num(g_t)}."]
    if obj_s.level == "sequence":
        lines.append(f"{obj_s.title} judges the whole of response 1 by one ratio, the geometric mean of its {L} token "
                     f"ratios: {R.decision(seq, I, t, s, 's_1')}. So {w} gets gradient weight "
                     f"{R.num(g_s)}" + (", as does every token of response 1." if shared else "."))
    else:
        lines.append(f"{obj_s.title}: {R.decision(seq, I, t, r)}, gradient weight {R.num(g_s)}.")
    lines += compare
    off_t, off_s = _clipped_words(tok, I), _clipped_words(seq, I)
    s_text = R.near(s, *R.band(seq))
    if off_s and len(off_t) < L:
        lines.append(f"One ratio decides for the whole response under {obj_s.title}: s_1 = {s_text} is past the "
                     f"bound, so all {L} tokens lose their gradient, even those whose own ratios {obj_t.title} keeps; "
                     f"{obj_t.title} switches off " + (", ".join(off_t) + " alone." if off_t else "none of them."))
    elif off_t and not off_s:
        lines.append(f"{obj_t.title} switches off {', '.join(off_t)} alone; {obj_s.title} keeps every token of "
                     f"response 1 (s_1 = {s_text} is not past the bound its advantage clips), each with one shared "
                     "weight.")
    return Reveal(answer, answer_text, lines, R.maps([tok, seq]), per_row=1)


LESSON = Lesson("grpo_vs_gspo", "GRPO vs GSPO on the same group",
                f"{R.title(TOKEN_LEVEL)} clips and weighs by {R.judged_by(TOKEN_LEVEL)}, "
                f"{R.title(SEQUENCE_LEVEL)} by {R.judged_by(SEQUENCE_LEVEL)}: see which moves a token more.",
                (TOKEN_LEVEL, SEQUENCE_LEVEL), KNOBS, scenario, context, question, reveal,
                look="Look at the asked token's own ratio r against GRPO's range, and at s_1 against GSPO's much "
                     "narrower one; then at the sign of A: a ratio clips only past the bound on the side A pushes.",
                takeaway=f"{R.title(TOKEN_LEVEL)} switches single tokens off by their own ratios; "
                         f"{R.title(SEQUENCE_LEVEL)} switches a whole response off or keeps it, by s_i, and gives all "
                         "its tokens one shared weight (1/G)·s_i·A_i/|y_i|.")
