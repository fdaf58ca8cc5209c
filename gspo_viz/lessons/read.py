"""Reading a lesson's numbers off the core's results, and saying them alike in every lesson (indices from 0 here;
the words number responses and tokens from 1)."""
from __future__ import annotations

import html
import math

from ..core.aggregation import aggregation_weights, longest
from ..core.objectives import OBJECTIVES
from ..core.objectives.base import NONE
from ..views.style import bounds, fmt
from .base import Choice, Question

SAME = "same"               # the answer of a comparison whose two sides are equal


def responses(table, p_new: float, rewards: list[float]) -> list[dict]:
    """A scenario's responses from (tokens, p_old, p_new) rows, where a None in p_new takes the knob's `p_new`."""
    return [{"tokens": list(tokens), "p_old": list(old), "p_new": [p_new if x is None else x for x in new],
             "reward": reward} for (tokens, old, new), reward in zip(table, rewards)]


def scenario(title: str, notes: str, table, p_new: float, rewards: list[float], settings: dict) -> dict:
    """A lesson's scenario file from its rows (see `responses`), the knob's p_new and the rewards."""
    return {"title": title, "notes": notes, "responses": responses(table, p_new, rewards), "settings": settings}


def plural(n: int, word: str) -> str:
    """'1 token', '2 tokens'."""
    return f"{n} {word}{'s' * (n != 1)}"


def title(name: str) -> str:
    return OBJECTIVES[name].title


def advantage_rule(res) -> str:
    """How the result's advantages were computed, in the core's words (its conventions)."""
    return next((c.split(": ", 1)[1] for c in res.conventions if c.startswith("advantages:")), "")


def judged_by(name: str) -> str:
    """What the objective's clip and weight look at, from its declared level."""
    return "one ratio per response, s_i" if OBJECTIVES[name].level == "sequence" else "each token's own ratio r"


def adv(res, i: int, t: int = 0) -> float:
    a = res.advantages[i]
    return float(a) if a.dim() == 0 else float(a[t])


def ratio(res, i: int, t: int) -> float:
    return float(res.explanation.token_ratio[i, t])


def grad(res, i: int, t: int) -> float:
    """The policy term's ∂J/∂log π_θ of token t of response i (autograd)."""
    return float(res.explanation.policy_grad[i, t])


def clip(res, i: int, t: int) -> str:
    return res.explanation.clip_name(i, t)


def word(res, i: int, t: int) -> str:
    return f"“{res.scenario.responses[i].tokens[t]}”"


def at(i: int, t: int) -> str:
    return f"response {i + 1}, t = {t + 1}"


def token_context(res, i: int, t: int, p_old: float, p_new: float) -> str:
    """The line a lesson about one token starts with: its probabilities, its ratio and its response's advantage."""
    return (f"{word(res, i, t)} ({at(i, t)}): p_old {fmt(p_old)} → p_new {fmt(p_new)}, so r = p_new/p_old = "
            f"{fmt(ratio(res, i, t))}; its response has A = {signed(adv(res, i))}.")


def direction(g: float) -> str:
    """A gradient weight's sign as a choice: 'up', 'down' or 'zero'."""
    return "up" if g > 0 else "down" if g < 0 else "zero"


def which(prompt: str, a: str, b: str, same: str = "the same (equal, or both 0)") -> Question:
    """A question with the two objectives a and b (and 'the same') to choose from."""
    return Question("one", prompt, (Choice(a, title(a)), Choice(b, title(b)), Choice(SAME, same)))


def larger(x_a: float, x_b: float, a: str, b: str) -> str:
    """a or b, whichever has the larger |x|, or SAME when they are equal (to rounding)."""
    if math.isclose(abs(x_a), abs(x_b), rel_tol=1e-9, abs_tol=1e-15):
        return SAME
    return a if abs(x_a) > abs(x_b) else b


def moves_more(res_a, res_b, i: int, t: int) -> tuple[str, str, list[str]]:
    """Which of two results moves token t of response i more (|∂J/∂log π_θ|): (answer, answer in words, the line
    that compares them)."""
    a, b = res_a.explanation.objective, res_b.explanation.objective
    g_a, g_b = grad(res_a, i, t), grad(res_b, i, t)
    answer = larger(g_a, g_b, a, b)
    verdict = "the same size" if answer == SAME else f"{title(answer)} moves it more"
    return (answer, f"{verdict}: |∂J/∂log π_θ({word(res_a, i, t)})| is {num(abs(g_a))} under {title(a)} and "
                    f"{num(abs(g_b))} under {title(b)}",
            [f"|{num(g_a)}| against |{num(g_b)}|: {verdict}."])


def signed(x: float) -> str:
    """A number with its sign: +0.7071, −0.7071, 0."""
    s = fmt(x)
    return s if s == "0" else ("+" + s if x > 0 else "−" + s.lstrip("-"))


def dec(x: float) -> str:
    """A number as the tables round it (4 decimals), minus as −."""
    return fmt(x).replace("-", "−")


def term(x: float) -> str:
    """A number as a factor of a product: negative ones in parentheses, as in 0.1667 × (−0.7071)."""
    return f"({dec(x)})" if x < 0 else dec(x)


def num(x: float) -> str:
    """A gradient weight: 4 significant digits (they can be small), minus as −."""
    return "0" if x == 0 else f"{x:.4g}".replace("-", "−")


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def band(res) -> tuple:
    """(lower, upper) clip bounds 1 − ε_low, 1 + ε_high of the result's settings (lower None without ε_low)."""
    cfg = res.explanation.settings
    return (None if cfg.eps_low is None else 1 - cfg.eps_low), 1 + cfg.eps_high


def band_text(res) -> str:
    b = bounds(res.explanation.settings)
    return f"[{b['lo']}, {b['hi']}]" if b["lo"] else f"(0, {b['hi']}]"   # no lower bound: a ratio is > 0


def reason(res, i: int, t: int) -> str:
    """Why the objective marked the token, in its own words (core/objectives/<name>.py)."""
    ex = res.explanation
    return OBJECTIVES[ex.objective].reasons[clip(res, i, t)].format(**bounds(ex.settings))


def near(x: float, *marks: float) -> str:
    """x as the tables round it, with more decimals where that rounding would make it equal a bound it is not
    (s = 1.00041 against 1 + ε_high = 1.0004 shows as 1.00041)."""
    for places in range(4, 12):
        s = f"{x:.{places}f}".rstrip("0").rstrip(".")
        if not any(m is not None and m != x and s == f"{m:.{places}f}".rstrip("0").rstrip(".") for m in marks):
            return "0" if s in ("-0", "") else s
    return repr(x)


def decision(res, i: int, t: int, x: float, sym: str = "r") -> str:
    """How the objective decided on token t of response i, whose clip looks at the ratio x (r or s_i), in words:
    past the bound its advantage clips, inside the range, or outside it against its advantage."""
    lo, hi = band(res)
    shown = near(x, lo, hi)
    if clip(res, i, t) != "none":
        return f"{sym} = {shown} {reason(res, i, t)}: clipped"
    if (lo is None or lo <= x) and x <= hi:
        return f"{sym} = {shown} is inside the range {band_text(res)}: not clipped"
    A = adv(res, i, t)
    side, moved = ("above", "more") if x > hi else ("below", "less")
    return (f"{sym} = {shown} is {side} the range {band_text(res)}, but it moved against its advantage (it made the "
            f"{'response' if sym != 'r' else 'token'} {moved} likely while A {'>' if A > 0 else '<' if A < 0 else '='}"
            f" 0): not clipped")


def mark(res, code: str) -> str:
    return OBJECTIVES[res.explanation.objective].marks[code]


def push(g: float) -> str:
    return "raises the token" if g > 0 else "lowers the token" if g < 0 else "gradient exactly 0"


def factor(res, i: int, t: int) -> float:
    """The aggregation weight of the token (of its response, for per-sequence terms): the run's loss_agg_mode."""
    from ..core.loss import policy_weights
    ex = res.explanation
    w = policy_weights(OBJECTIVES[ex.objective], ex.loss_mask, ex.settings, longest(ex.mask, ex.settings.max_tokens))
    return float(w[i]) if w.dim() == 1 else float(w[i, t])


def factor_text(res, i: int, t: int) -> str:
    """Where the token's aggregation factor comes from: the objective's aggregation, in words."""
    from ..core.aggregation import AGGREGATIONS
    obj = OBJECTIVES[res.explanation.objective]
    mode = res.explanation.settings.loss_agg_mode
    return f"{num(factor(res, i, t))} is the token's weight in {obj.title}'s {AGGREGATIONS[mode]}"


def term_at(res, r: float, A: float) -> tuple[float, float]:
    """The objective's own per-token term and its ∂/∂log π for one token with ratio r and advantage A, before
    aggregation (core.curves.clip_curve on one point)."""
    from ..core.curves import clip_curve
    c = clip_curve(res.explanation.objective, [r], A, res.explanation.settings)
    return (None if c.value is None else c.value[0]), c.grad[0]


def curve_note(results: dict, i: int, t: int) -> str:
    """What the curve figures show against the gradient weights the sentences quote: the per-token term and its
    ∂/∂log π before aggregation, so a quoted weight is the curve at r times the token's aggregation factor."""
    factors = [f"{num(factor(res, i, t))} under {title(name)}" for name, res in results.items()]
    return ("The plots show one token's term and its gradient ∂term/∂log π_θ against the ratio, before "
            "aggregation: a gradient weight quoted above is the gradient plot's value at the marked r times the token's "
            f"aggregation factor ({', '.join(factors)}).")


def curve_figure(results: dict, kind: str, A: float, r: float, label: str, height: int = 330):
    """The term ('value') or gradient ('grad') against the ratio for a token with advantage A, for each result's
    objective, a dotted line at the token's ratio r (the Clip Explorer's figure)."""
    from ..core.curves import clip_curve, ratio_axis, ratio_grid
    from ..views.plots import clip_explorer_figure
    grid = ratio_grid(*ratio_axis(max(2.5, 1.2 * r), (r,)).grid)
    curves = {name: clip_curve(name, grid, A, res.explanation.settings) for name, res in results.items()}
    return clip_explorer_figure(curves, kind, A, "ratio r = π_θ/π_old", (r, html.escape(label)), height)


def group_rows(case) -> list[dict]:
    """The lesson's group as table rows: every token's probabilities, ratio, reward and advantage (one advantage
    column per objective whose advantages differ from the first one's)."""
    results = list(case.results.items())
    first_name, first = results[0]
    columns = [(first_name, first)] + [(n, r) for n, r in results[1:] if not bool((r.advantages == first.advantages)
                                                                               .all())]
    rows = []
    for i, resp in enumerate(first.scenario.responses):
        for t, token in enumerate(resp.tokens):
            row = {"response": i + 1, "t": t + 1, "token": token, "p_old": math.exp(resp.logp_old[t]),
                   "p_new": math.exp(resp.logp_new[t]), "r": ratio(first, i, t), "reward": resp.reward}
            for name, res in columns:
                row[f"A ({title(name)})" if len(columns) > 1 else "A"] = adv(res, i, t)
            rows.append(row)
    return rows


def maps(results: list, grad_only: bool = False) -> list:
    """The Token Lab's maps of these results side by side on one colour scale: ratio and gradient weight (or the
    gradient weight alone), each a full-width figure."""
    from ..views.plots import DESIGN_WIDTH, comparison_maps, heatmap_height
    ratio_fig, grad_fig = comparison_maps(results, heatmap_height(len(results[0].scenario.responses)),
                                          width=DESIGN_WIDTH)
    return [grad_fig] if grad_only else [ratio_fig, grad_fig]


def clipped(res) -> list[tuple[int, int]]:
    """Every token of the loss the objective marked, in order."""
    ex = res.explanation
    return [(i, t) for i, row in enumerate((ex.clip * (ex.loss_mask > 0)).tolist()) for t, c in enumerate(row)
            if c != NONE]
