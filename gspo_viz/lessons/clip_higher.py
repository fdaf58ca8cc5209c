"""Lesson 6: DAPO's clip-higher (a higher upper bound than lower) and dynamic sampling (groups with equal rewards are
dropped), on a group of four answers."""
from __future__ import annotations

from ..core.objectives import OBJECTIVES
from ..views.style import fmt
from . import read as R
from .base import Choice, Knob, Lesson, Question, Reveal

BASE, HIGHER = "grpo", "dapo"
I, T = 0, 0                 # the token the lesson asks about: response 1, t = 1
P_OLD = 0.13                # no p_new on the knob's 0.005 grid gives r = 0.8, 1.2 or 1.28 exactly
RESPONSES = ((("Hence", "x", "=", "7"), (P_OLD, 0.5, 0.6, 0.4), (None, 0.51, 0.6, 0.42)),
             (("So", "x", "=", "9"), (0.3, 0.5, 0.6, 0.3), (0.29, 0.49, 0.61, 0.28)),
             (("Thus", "x", "=", "7"), (0.2, 0.5, 0.6, 0.4), (0.21, 0.5, 0.62, 0.41)),
             (("Then", "x", "=", "8"), (0.25, 0.5, 0.6, 0.3), (0.24, 0.5, 0.59, 0.29)))
DROPPED = "dropped"

KNOBS = (Knob("p_new", f"p_new of “Hence” (its p_old is {P_OLD})", "slider", 0.16, low=0.05, high=0.4, step=0.005),
         Knob("right", "Right responses (reward 1; the others get 0)", "many", [1, 3], options=(1, 2, 3, 4),
              labels=tuple(f"response {k}" for k in range(1, 5))))


def scenario(p: dict) -> dict:
    return R.scenario("Lesson 6: DAPO's clip-higher and dynamic sampling",
                      "Four answers; dynamic sampling is on (for both objectives: it acts on the batch, before any "
                      "loss).", RESPONSES, p["p_new"],
                      [1.0 if k + 1 in p["right"] else 0.0 for k in range(len(RESPONSES))], {"dynamic_sampling": True})


def _eps(res) -> str:
    cfg = res.explanation.settings
    return f"ε_low = {fmt(cfg.eps_low)}, ε_high = {fmt(cfg.eps_high)}"


def context(case) -> list[str]:
    base, higher = case.results[BASE], case.results[HIGHER]
    rewards = ", ".join(fmt(x) for x in higher.rewards)
    return [f"{R.word(higher, I, T)} ({R.at(I, T)}): p_old {fmt(P_OLD)} → p_new {fmt(case.params['p_new'])}, so "
            f"r = p_new/p_old = {fmt(R.ratio(higher, I, T))}. The rewards of responses 1–{len(higher.rewards)} are "
            f"{rewards}. Dynamic sampling is on: a group whose rewards are all equal is dropped before the loss.",
            f"{R.title(HIGHER)} clips to {R.band_text(higher)} ({_eps(higher)}); {R.title(BASE)} to "
            f"{R.band_text(base)} ({_eps(base)})."]


def question(case) -> Question:
    w = R.word(case.results[HIGHER], I, T)
    return Question("one", f"What does {R.title(HIGHER)} do to {w}?",
                    (Choice("up", f"raises {w} (gradient > 0)"), Choice("zero", f"clips {w} (gradient 0)"),
                     Choice("down", f"lowers {w} (gradient < 0)"),
                     Choice(DROPPED, "nothing: the whole group is dropped")))


def answer_of(res) -> str:
    return DROPPED if res.dropped else R.direction(R.grad(res, I, T))


def reveal(case) -> Reveal:
    base, higher = case.results[BASE], case.results[HIGHER]
    answer = answer_of(higher)
    rewards = higher.rewards
    lines = []
    if higher.dropped:
        lines.append(f"All {len(rewards)} rewards are equal ({fmt(rewards[0])}): every advantage is 0, so the group "
                     "carries no signal, and dynamic sampling drops it before the loss: no token of it takes part, "
                     f"under {R.title(BASE)} and {R.title(HIGHER)} alike (the sampler decides, not the loss). "
                     "DAPO's recipe keeps sampling until the batch is filled with groups whose rewards differ.")
    else:
        right = sum(1 for x in rewards if x == 1.0)
        lines.append(f"{right} of {len(rewards)} responses {'is' if right == 1 else 'are'} right: the rewards "
                     "differ, so dynamic sampling keeps "
                     f"the group. Response 1 has A = {R.signed(R.adv(higher, I))}.")
        r = R.ratio(higher, I, T)
        g_b, g_h = R.grad(base, I, T), R.grad(higher, I, T)
        lines.append(f"{R.title(BASE)} ({_eps(base)}): {R.decision(base, I, T, r)}, gradient weight {R.num(g_b)}.")
        lines.append(f"{R.title(HIGHER)} ({_eps(higher)}): {R.decision(higher, I, T, r)}, gradient weight "
                     f"{R.num(g_h)}.")
        lo_b, hi_b = R.band(base)
        lo_h, hi_h = R.band(higher)
        if R.clip(base, I, T) != "none" and R.clip(higher, I, T) == "none" and hi_b < r <= hi_h:
            lines.append(f"That is clip-higher: with r between {fmt(hi_b)} and {fmt(hi_h)}, a token the update made "
                         f"more likely (here a rare one, p_old {fmt(P_OLD)}) keeps rising under {R.title(HIGHER)}, "
                         "where the symmetric range would already stop it: exploration is not cut off as early.")
        elif r > hi_h and R.clip(higher, I, T) != "none":
            lines.append(f"Past {fmt(hi_h)} {R.title(HIGHER)} clips too: clip-higher raises the upper bound, it does "
                         "not remove it.")
        elif r < 1 and lo_b == lo_h:
            lines.append(f"Below 1 both have the same bound {fmt(lo_h)}: clip-higher changes only the upper one.")
        elif r > 1 and R.adv(higher, I) < 0:
            lines.append("With A < 0 the upper bound never clips (a clip acts on the side the advantage pushes, here "
                         f"down): {R.word(higher, I, T)} keeps its gradient under both, so clip-higher changes "
                         "nothing for it.")
    g = R.grad(higher, I, T)
    text = question(case).label(answer) + ("" if answer == DROPPED else f": gradient weight {R.num(g)}")
    return Reveal(answer, text, lines, R.maps([base, higher]), per_row=1)


LESSON = Lesson("clip_higher", "DAPO's clip-higher and dynamic sampling",
                f"{OBJECTIVES[HIGHER].title} lets a token rise further than it lets it fall, and drops a group whose "
                "rewards are all equal instead of spending the batch on it.", (BASE, HIGHER), KNOBS, scenario,
                context, question, reveal,
                look="Look at r of “Hence” against both upper bounds, and at the sign of its response's A; then at the "
                     "rewards: are they all equal?",
                takeaway=f"Clip-higher raises only the upper bound (ε_high {OBJECTIVES[HIGHER].defaults['eps_high']:g} "
                         f"against ε_low {OBJECTIVES[HIGHER].defaults['eps_low']:g}), so a token with A > 0 can rise "
                         "further before it is clipped; dynamic sampling drops a group whose rewards are all equal, "
                         "whose advantages are all 0.")
