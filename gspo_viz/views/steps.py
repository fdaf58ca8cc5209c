"""Every step of one token's computation as a formula with the numbers substituted, its hover text, and the
seeds' wrong steps beside the right ones.

The steps are built from a ScenarioResult: the objective's own steps (core/objectives/<name>.py) sit between the
common ones (log-probabilities, ratio, advantage) and the KL term; the last step is the closed-form gradient weight,
and `autograd_step` gives autograd's answer beside it. Responses and tokens are numbered from 1, as on every page.
"""
from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, replace

import torch

from ..core.advantages import kl_derivative, kl_estimate
from ..core.aggregation import longest
from ..core.loss import kl_weights, policy_weights
from ..core.objectives import OBJECTIVES
from ..core.objectives.base import CLIP_NAMES, Step, Token, n
from ..scenarios.run import ScenarioResult

__all__ = ["Step", "Mistake", "token_steps", "autograd_step", "token_context", "hover_texts", "seed_mistakes",
           "typeset", "plain_powers"]

# A number as Python prints it in scientific notation (f"{x:.6g}" gives "1e-06", "-2.5e+12"), not inside a name
# or a command (the lookarounds keep "\\theta", "x2e5" and "1.5e-3x" alone).
_SCI = re.compile(r"(?<![\w.\\])(\d+(?:\.\d+)?)e([+-]?)(\d+)(?![\w.])")
# \bar followed by its argument: {…}, a command such as \Delta, or one character.
_BAR = re.compile(r"\\bar(?![A-Za-z])\s*(\{[^{}]*\}|\\[A-Za-z]+|[A-Za-z0-9])")
# \text{…} (no nested braces): words, whose numbers stay as they are written
_TEXT = re.compile(r"(\\text\{[^{}]*\})")


# Where a × inside a number cannot be read as binding to a neighbour: next to these (spaces aside) a number in
# scientific notation needs no parentheses; elsewhere (after \ln, around /, ...) it gets them.
_FREE_BEFORE = ("", "=", "+", "-", "(", "{", "[", ",", r"\cdot", r"\quad")
_FREE_AFTER = ("", "=", "+", "-", ")", "}", "]", ",", r"\cdot", r"\quad")


def _sci(m: re.Match) -> str:
    mantissa, sign, exponent = m.group(1), m.group(2), int(m.group(3))
    power = rf"{mantissa} \times 10^{{{'-' if sign == '-' else ''}{exponent}}}"
    before, after = m.string[:m.start()].rstrip(), m.string[m.end():].lstrip()
    free = any(before.endswith(b) for b in _FREE_BEFORE if b) or not before
    free = free and (not after or any(after.startswith(a) for a in _FREE_AFTER if a))
    return power if free else f"({power})"


def _bar(m: re.Match) -> str:
    arg = m.group(1)
    return rf"\overline{{{arg[1:-1] if arg.startswith('{') else arg}}}"


def typeset(latex: str) -> str:
    r"""A formula as KaTeX should show it: a number in scientific notation as a power of ten ("1e-06" is
    1 \times 10^{-6}, not "1e − 06"), and a mean's bar as \overline (KaTeX's \bar is a thin accent that a browser
    at 100 % zoom drops inside a fraction or an exponent: \frac{R_i - \bar R}{…} showed "R_i − R"). Text in
    \text{…} is left as written."""
    parts = _TEXT.split(latex)
    return "".join(p if k % 2 else _BAR.sub(_bar, _SCI.sub(_sci, p)) for k, p in enumerate(parts))


_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def plain_powers(text: str) -> str:
    """Prose with numbers in scientific notation written as powers of ten in Unicode ("std + 1e-06" becomes
    "std + 1×10⁻⁶"), for formulas quoted in plain text such as the conventions."""
    def power(m: re.Match) -> str:
        exponent = ("-" if m.group(2) == "-" else "") + str(int(m.group(3)))
        return f"{m.group(1)}×10{exponent.translate(_SUPERSCRIPT)}"
    return _SCI.sub(power, text)


@dataclass
class Mistake:
    title: str
    source: str
    wrong_latex: str
    wrong_value: float
    right_latex: str
    right_value: float
    why: str

    @property
    def wrong_formula(self) -> str:
        """The article's step and where it leads, typeset: `wrong_latex = wrong_value`."""
        return typeset(f"{self.wrong_latex} = {n(self.wrong_value)}")

    @property
    def right_formula(self) -> str:
        """The right step and its value, typeset: `right_latex = right_value`."""
        return typeset(f"{self.right_latex} = {n(self.right_value)}")


def _adv_steps(res: ScenarioResult, i: int, t: int) -> tuple[list[Step], float]:
    r = res.scenario.responses[i]
    cfg = res.explanation.settings
    a = res.advantages[i]
    A = float(a) if a.dim() == 0 else float(a[t])
    if r.advantage is not None or res.rewards is None:
        sub = "_{i,t}" if a.dim() == 1 else "_i"
        return [Step("advantage (given in the scenario)", f"A{sub} = {n(A)}", A)], A
    G = len(res.rewards)
    R = res.shaped_rewards
    steps = []
    if res.shaped_rewards != res.rewards:
        steps.append(Step("reward after DAPO's overlong punishment",
                          f"R_i = {n(res.rewards[i])} + ({n(R[i] - res.rewards[i])}) = {n(R[i])}", R[i]))
    listed = " + ".join(n(x) for x in R) if G <= 8 else r"\sum_j R_j"
    steps.append(Step("group mean of the rewards", rf"\overline{{R}} = ({listed}) / {G} = {n(res.reward_mean)}",
                      res.reward_mean))
    if res.no_signal:
        steps.append(Step("all rewards are equal: no learning signal", "A_i = 0", 0.0))
        return steps, 0.0
    if cfg.advantage == "group":
        denom = G - 1 if cfg.std == "sample" else G
        steps.append(Step(f"group std ({'sample, G − 1' if cfg.std == 'sample' else 'population, G'})",
                          rf"\sigma = \sqrt{{\sum_j (R_j - \overline{{R}})^2 / {denom}}} = {n(res.reward_std)}",
                          res.reward_std))
        steps.append(Step("advantage (group z-score)",
                          rf"A_i = \frac{{R_i - \overline{{R}}}}{{\sigma + \epsilon_{{std}}}} = "
                          rf"\frac{{{n(R[i])} - {n(res.reward_mean)}}}{{{n(res.reward_std)} + {cfg.adv_eps:g}}} = {n(A)}",
                          A))
    elif cfg.advantage == "mean":
        steps.append(Step("advantage (Dr.GRPO, mean-centred)",
                          rf"A_i = R_i - \overline{{R}} = {n(R[i])} - {n(res.reward_mean)} = {n(A)}", A))
    else:
        others = (sum(R) - R[i]) / (G - 1)
        steps.append(Step("advantage (RLOO, leave-one-out)",
                          rf"A_i = R_i - \frac{{\sum_{{j \ne i}} R_j}}{{G - 1}} = {n(R[i])} - {n(others)} = {n(A)}", A))
    return steps, A


def _weights(res: ScenarioResult):
    """The run's aggregation weights ((G, T), or (G,) for per-sequence terms) and Dr.GRPO's L_max."""
    ex = res.explanation
    l_max = longest(ex.mask, ex.settings.max_tokens)
    rw = None if ex.rollout is None else ex.rollout.weight
    return policy_weights(OBJECTIVES[ex.objective], ex.loss_mask, ex.settings, l_max, rw), l_max


def _factor(res: ScenarioResult, i: int, t: int, w=None, l_max=None) -> tuple[str, float]:
    """The aggregation weight of token (i, t) (of response i for per-sequence terms), as a formula and a number."""
    ex = res.explanation
    if int(ex.loss_mask[i].sum()) == 0:
        return r"\text{this response is masked out of the loss: } 0", 0.0
    if w is None:
        w, l_max = _weights(res)
    value = float(w[i]) if w.dim() == 1 else float(w[i, t])
    latex = _agg_factor(res, i, l_max)
    if ex.rollout is not None:                     # the rollout-correction weight is part of the factor
        rc = float(ex.rollout.weight[i, t])
        latex += rf" \cdot w^{{rc}} = {n(value / rc) if rc else 0} \cdot {n(rc)}"
    return latex, value


def _agg_factor(res: ScenarioResult, i: int, l_max) -> str:
    """The aggregation part of a token's factor, as a formula (loss_agg_mode and the objective's kind of term)."""
    ex = res.explanation
    obj = OBJECTIVES[ex.objective]
    part = ex.loss_mask
    lens = part.sum(-1)
    G = int((lens > 0).sum())
    L = int(lens[i])
    mode = ex.settings.loss_agg_mode
    S = int(part.sum())
    if obj.per_sequence_terms and mode != "seq-mean":    # the response's term once per token: its tokens' weights
        latex = {
            "seq-mean-token-mean": rf"|y_i| \cdot \frac{{1}}{{G\,|y_i|}} = \frac{{1}}{{{G}}}",
            "token-mean": rf"\frac{{|y_i|}}{{\sum_j |y_j|}} = \frac{{{L}}}{{{S}}}",
            "seq-mean-token-sum": rf"\frac{{|y_i|}}{{G}} = \frac{{{L}}}{{{G}}}",
            "seq-mean-token-sum-norm": rf"\frac{{|y_i|}}{{G \cdot L_{{max}}}} = \frac{{{L}}}{{{G} \cdot {l_max}}}",
        }[mode]
        return latex
    return {
        "seq-mean": rf"\frac{{1}}{{G}} = \frac{{1}}{{{G}}}",
        "seq-mean-token-mean": rf"\frac{{1}}{{G\,|y_i|}} = \frac{{1}}{{{G} \cdot {L}}}",
        "token-mean": rf"\frac{{1}}{{\sum_j |y_j|}} = \frac{{1}}{{{S}}}",
        "seq-mean-token-sum": rf"\frac{{1}}{{G}} = \frac{{1}}{{{G}}}",
        "seq-mean-token-sum-norm": rf"\frac{{1}}{{G \cdot L_{{max}}}} = \frac{{1}}{{{G} \cdot {l_max}}}",
    }[mode]


def _rollout_steps(res: ScenarioResult, i: int, t: int) -> list[Step]:
    """The rollout-correction weight of token (i, t): π_old/π_rollout (or the response's product), then truncated or
    masked (core/rollout.py)."""
    ex = res.explanation
    cfg = ex.settings
    resp = res.scenario.responses[i]
    raw, w = float(ex.rollout.raw[i, t]), float(ex.rollout.weight[i, t])
    if cfg.rollout_is == "token":
        lo, lr = resp.logp_old[t], resp.logp_rollout[t]
        first = Step("rollout IS weight (token)", rf"\pi_{{old}} / \pi_{{rollout}} = e^{{{n(lo)} - ({n(lr)})}} = "
                                                  rf"{n(raw)}", raw)
    else:
        gap = sum(o - r for o, r in zip(resp.logp_old, resp.logp_rollout))
        first = Step("rollout IS weight (sequence)", rf"\prod_t \pi_{{old}} / \pi_{{rollout}} = e^{{{n(gap)}}} = "
                                                     rf"{n(raw)}", raw)
    C, lower = cfg.rollout_is_threshold, cfg.rollout_is_threshold_lower
    if lower is None:
        second = Step("truncated at C (TIS)", rf"w^{{rc}} = \min({n(raw)}, {n(C)}) = {n(w)}", w)
    else:
        inside = lower <= raw <= C
        second = Step("kept inside [lower, C] (IcePop)", rf"w^{{rc}} = {n(raw)} \text{{ if }} {n(lower)} \le "
                                                          rf"{n(raw)} \le {n(C)} \text{{ else }} 0 = {n(w)}"
                      + ("" if inside else r"\ \text{(masked: policy gradient 0)}"), w)
    return [first, second]


def token_context(res: ScenarioResult, i: int, t: int, deltas: tuple = None, factor=("", 0.0)) -> Token:
    """The numbers of token t of response i (0-based) that an objective's steps and hover read. `deltas` (the
    response's log-ratios) and `factor` may be passed when the caller has them (hover texts skip the factor)."""
    ex = res.explanation
    resp = res.scenario.responses[i]
    a = res.advantages[i]
    if deltas is None:
        deltas = tuple(b - o for o, b in zip(resp.logp_old, resp.logp_new))
        factor = _factor(res, i, t)
    return Token(i, t, deltas, float(a) if a.dim() == 0 else float(a[t]),
                 None if ex.seq_ratio is None else float(ex.seq_ratio[i]), int(ex.clip[i, t]), factor[1], factor[0],
                 ex.settings, logp_old=resp.logp_old[t])


def token_steps(res: ScenarioResult, i: int, t: int) -> list[Step]:
    """The computation of token t of response i (0-based), step by step; the last step is its gradient weight
    ∂J/∂log π_θ by the closed form (the policy term's, plus the KL term's when β > 0)."""
    ex = res.explanation
    cfg = ex.settings
    obj = OBJECTIVES[ex.objective]
    resp = res.scenario.responses[i]
    lo, lp = resp.logp_old[t], resp.logp_new[t]
    tok = token_context(res, i, t)
    steps = [
        Step("log-probabilities", rf"\log\pi_{{old}} = \ln {n(math.exp(lo))} = {n(lo)},\quad "
                                  rf"\log\pi_\theta = \ln {n(math.exp(lp))} = {n(lp)}", lp),
        Step("log-ratio", rf"\Delta_{{i,t}} = {n(lp)} - {n(lo)} = {n(tok.delta)}", tok.delta),
        Step("token ratio", rf"r_{{i,t}} = e^{{\Delta}} = \pi_\theta / \pi_{{old}} = {n(tok.r)}",
             float(ex.token_ratio[i, t])),
    ]
    steps += _adv_steps(res, i, t)[0]
    if ex.rollout is not None:
        steps += _rollout_steps(res, i, t)
    own = obj.steps(tok)
    steps += own
    policy = own[-1].value
    if cfg.beta and resp.logp_ref is not None and float(ex.loss_mask[i, t]) > 0:   # (KL: no rollout weight)
        lr = resp.logp_ref[t]
        lp_t, lr_t = torch.tensor(lp, dtype=torch.float64), torch.tensor(lr, dtype=torch.float64)
        k = float(kl_estimate(lp_t, lr_t, cfg.kl))
        dk = float(kl_derivative(lp_t, lr_t, cfg.kl))
        kl_fac = float(kl_weights(ex.loss_mask, cfg, longest(ex.mask, cfg.max_tokens))[i, t])
        kl_grad = -cfg.beta * kl_fac * dk
        steps.append(Step(f"KL estimate ({cfg.kl})", rf"k = {n(k)},\quad \partial k / \partial \log\pi_\theta = "
                                                     rf"{n(dk)}", k))
        steps.append(Step("KL gradient", rf"-\beta \cdot w^{{KL}}_{{i,t}} \cdot \partial k = -{n(cfg.beta)} \cdot "
                                         rf"{n(kl_fac)} \cdot {n(dk)} = {n(kl_grad)}", kl_grad))
        steps.append(Step("gradient weight (policy + KL)", rf"{n(policy)} + {n(kl_grad)} = {n(policy + kl_grad)}",
                          policy + kl_grad))
    return [replace(s, latex=typeset(s.latex)) for s in steps]


def autograd_step(res: ScenarioResult, i: int, t: int) -> Step:
    """Autograd's ∂J/∂log π_θ(y_{i,t}) of the aggregated objective: the answer key for the last step."""
    g = float(res.explanation.grad_weight[i, t])
    return Step("autograd check: ∂J/∂log π_θ of the aggregated objective",
                typeset(rf"\partial J / \partial \log\pi_\theta(y_{{{i + 1},{t + 1}}}) = {n(g)}"), g)


def seed_mistakes(res: ScenarioResult, i: int, t: int) -> list[Mistake]:
    """The source articles' wrong steps that apply to this token, each beside the right one."""
    ex = res.explanation
    obj = OBJECTIVES[ex.objective]
    cfg = ex.settings
    out = []
    resp = res.scenario.responses[i]
    r = math.exp(resp.logp_new[t] - resp.logp_old[t])
    a = res.advantages[i]
    A = float(a) if a.dim() == 0 else float(a[t])
    if obj.clip_form == "ppo" and obj.level == "token":
        lo_b, hi_b = 1 - cfg.eps_low, 1 + cfg.eps_high
        right = min(max(r, lo_b), hi_b)
        out.append(Mistake(
            "clip is not a product of min and max", "shared/seeds/003, GRPO step 3",
            rf"\min({n(r)}, {n(hi_b)}) \cdot \max({n(r)}, {n(lo_b)})",
            min(r, hi_b) * max(r, lo_b),
            rf"\min(\max({n(r)}, {n(lo_b)}), {n(hi_b)})", right,
            "the article writes clip(r) as min(r, 1+ε)·max(r, 1−ε); clip bounds the ratio to [1−ε, 1+ε], "
            "min(max(r, 1−ε), 1+ε), while the product multiplies two ratios together."))
        if lo_b <= r <= hi_b and r < 1:
            out.append(Mistake(
                "a ratio inside the range is not clipped", "shared/seeds/003 (0.875 'clipped to 0.8')",
                rf"\mathrm{{clip}}({n(r)}, {n(lo_b)}, {n(hi_b)})", lo_b,
                rf"\mathrm{{clip}}({n(r)}, {n(lo_b)}, {n(hi_b)})", r,
                f"{n(lo_b)} ≤ {n(r)} ≤ {n(hi_b)}: the ratio is inside the range and passes unchanged."))
        if CLIP_NAMES[int(ex.clip[i, t])] == "upper":
            out.append(Mistake(
                "a clipped token has zero gradient", "shared/seeds/003 (1.2 × G_t as the token's weight)",
                rf"(1+\epsilon)\cdot A = {n(hi_b)} \cdot {n(A)}", hi_b * A,
                r"\partial J/\partial\log\pi_\theta = 0", float(ex.grad_weight[i, t]),
                "past 1+ε with A > 0 the objective is the constant (1+ε)·A; a constant has no gradient."))
        if res.rewards is not None and resp.advantage is None:
            L = len(resp.logp_old)
            gamma = 0.9
            out.append(Mistake(
                "an outcome reward is not a discounted return", "shared/seeds/003, GRPO step 1",
                rf"G_t = \gamma^{{L-t}} R = 0.9^{{{L - t - 1}}} \cdot {n(res.rewards[i])}",
                gamma ** (L - t - 1) * res.rewards[i],
                r"A_i = \frac{R_i - \overline{R}}{\sigma + \epsilon_{std}}", A,
                f"GRPO with an outcome reward gives every token of response {i + 1} the same group-relative advantage "
                "A_i; nothing is discounted."))
    if obj.level == "sequence" and not obj.per_token_advantages and res.rewards is not None \
            and len(res.rewards) >= 2:
        s = ex.seq_ratio.tolist()
        R = res.rewards
        cut = sorted(R)[len(R) // 2]
        good = [s[k] for k in range(len(R)) if R[k] >= cut] or s
        bad = [s[k] for k in range(len(R)) if R[k] < cut] or s
        wrong = sum(good) / len(good) - sum(bad) / len(bad)
        out.append(Mistake(
            "GSPO's advantage is the group z-score of rewards", "shared/seeds/003, GSPO step 3",
            r"A = \overline{s}_{good} - \overline{s}_{bad}", wrong,
            r"A_i = \frac{R_i - \overline{R}}{\sigma + \epsilon_{std}}", A,
            "s_i is the importance weight that multiplies A_i; the advantage comes from the rewards alone."))
    if obj.clip_form == "ppo" and cfg.loss_agg_mode == "token-mean":
        part = ex.loss_mask.sum(-1)
        G = int((part > 0).sum())
        L = int(part[i])
        out.append(Mistake(
            "DAPO averages over all tokens of the group", "shared/seeds/004, DAPO objective",
            rf"\sum_i \frac{{1}}{{|o_i|}}\sum_t \Rightarrow \text{{factor }} \frac{{1}}{{|o_i|}} = \frac{{1}}{{{L}}}",
            1 / L if L else 0.0,
            rf"\frac{{1}}{{\sum_i |o_i|}}\sum_i\sum_t \Rightarrow \frac{{1}}{{{int(part.sum())}}}",
            1 / int(part.sum()) if int(part.sum()) else 0.0,
            f"token-level loss: every token of the {G} responses weighs the same, long answers are not diluted."))
    return out


def hover_texts(res: ScenarioResult, rows: list[int] | range | None = None) -> list[list[str]]:
    """(G, T) short hover texts: the token's numbers and its formula with those numbers filled in; with `rows`,
    only those responses' (one list per row, in the order given)."""
    ex = res.explanation
    obj = OBJECTIVES[ex.objective]
    ratio = ex.token_ratio.tolist()
    grad = ex.grad_weight.tolist()
    clip = ex.clip.tolist()
    out = []
    for i in (range(len(res.scenario.responses)) if rows is None else rows):
        resp = res.scenario.responses[i]
        row = []
        deltas = tuple(b - o for o, b in zip(resp.logp_old, resp.logp_new))
        for t, tok in enumerate(resp.tokens):
            ctx = token_context(res, i, t, deltas)
            head = (f"<b>{html.escape(tok)}</b> (response {i + 1}, t = {t + 1})<br>p_old {math.exp(resp.logp_old[t]):.6g} → "
                    f"p_new {math.exp(resp.logp_new[t]):.6g}<br>r = p_new/p_old = {ratio[i][t]:.6g}, A = {ctx.A:.6g}<br>")
            row.append(f"{head}{obj.hover(ctx)}<br>clip: {CLIP_NAMES[clip[i][t]]}<br>∂J/∂log π = {grad[i][t]:.6g}")
        out.append(row)
    return out
