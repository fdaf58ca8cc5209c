"""Every step of one token's computation as a formula with the numbers substituted, and the seeds' wrong steps.

The steps are built from a ScenarioResult: each step's value is what the core computed (the last step is the
autograd gradient weight), and its formula shows the arithmetic a person can redo with a calculator.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .advantages import kl_derivative, kl_estimate
from .objectives import CLIP_NAMES, OBJECTIVES
from .scenario import ScenarioResult


@dataclass
class Step:
    label: str
    latex: str      # the formula with the numbers filled in
    value: float


@dataclass
class Mistake:
    title: str
    source: str
    wrong_latex: str
    wrong_value: float
    right_latex: str
    right_value: float
    why: str


def n(x: float) -> str:
    """A number for a formula: 6 significant digits, negative numbers in parentheses."""
    s = f"{x:.6g}"
    return f"({s})" if x < 0 else s


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
    steps.append(Step("group mean of the rewards", rf"\bar R = ({listed}) / {G} = {n(res.reward_mean)}",
                      res.reward_mean))
    if res.no_signal:
        steps.append(Step("all rewards are equal: no learning signal", "A_i = 0", 0.0))
        return steps, 0.0
    if cfg.advantage == "group":
        denom = G - 1 if cfg.std == "sample" else G
        steps.append(Step(f"group std ({'sample, G − 1' if cfg.std == 'sample' else 'population, G'})",
                          rf"\sigma = \sqrt{{\sum_j (R_j - \bar R)^2 / {denom}}} = {n(res.reward_std)}",
                          res.reward_std))
        steps.append(Step("advantage (group z-score)",
                          rf"A_i = \frac{{R_i - \bar R}}{{\sigma + \epsilon}} = \frac{{{n(R[i])} - {n(res.reward_mean)}}}"
                          rf"{{{n(res.reward_std)} + {cfg.adv_eps:g}}} = {n(A)}", A))
    elif cfg.advantage == "mean":
        steps.append(Step("advantage (Dr.GRPO, mean-centred)",
                          rf"A_i = R_i - \bar R = {n(R[i])} - {n(res.reward_mean)} = {n(A)}", A))
    else:
        others = (sum(R) - R[i]) / (G - 1)
        steps.append(Step("advantage (RLOO, leave-one-out)",
                          rf"A_i = R_i - \frac{{\sum_{{j \ne i}} R_j}}{{G - 1}} = {n(R[i])} - {n(others)} = {n(A)}", A))
    return steps, A


def _factor(res: ScenarioResult, i: int, mode: str) -> tuple[str, float]:
    ex = res.explanation
    part = ex.loss_mask
    lengths = part.sum(-1)
    G = int((lengths > 0).sum())
    L = int(lengths[i])
    if L == 0:
        return r"\text{this response is masked out of the loss: } 0", 0.0
    if mode == "seq-mean":
        return rf"\frac{{1}}{{G}} = \frac{{1}}{{{G}}}", 1 / G
    if mode == "seq-mean-token-mean":
        return rf"\frac{{1}}{{G\,|y_i|}} = \frac{{1}}{{{G} \cdot {L}}}", 1 / (G * L)
    if mode == "token-mean":
        total = int(part.sum())
        return rf"\frac{{1}}{{\sum_j |y_j|}} = \frac{{1}}{{{total}}}", 1 / total
    l_max = ex.settings.max_tokens if ex.settings.max_tokens is not None else int(ex.mask.sum(-1).max())
    return rf"\frac{{1}}{{G \cdot L_{{max}}}} = \frac{{1}}{{{G} \cdot {l_max}}}", 1 / (G * l_max)


def token_steps(res: ScenarioResult, i: int, t: int) -> list[Step]:
    """The computation of token t of response i, step by step, ending with its gradient weight ∂J/∂log π_θ."""
    ex = res.explanation
    cfg = ex.settings
    name = ex.objective
    obj = OBJECTIVES[name]
    resp = res.scenario.responses[i]
    lo, lp = resp.logp_old[t], resp.logp_new[t]
    delta = lp - lo
    r = math.exp(delta)
    L = len(resp.logp_old)
    steps = [
        Step("log-probabilities", rf"\log\pi_{{old}} = \ln {n(math.exp(lo))} = {n(lo)},\quad "
                                  rf"\log\pi_\theta = \ln {n(math.exp(lp))} = {n(lp)}", lp),
        Step("log-ratio", rf"\Delta_{{i,t}} = {n(lp)} - {n(lo)} = {n(delta)}", delta),
        Step("token ratio", rf"r_{{i,t}} = e^{{\Delta}} = \pi_\theta / \pi_{{old}} = {n(r)}", float(ex.token_ratio[i, t])),
    ]
    adv_steps, A = _adv_steps(res, i, t)
    steps += adv_steps
    decision = CLIP_NAMES[int(ex.clip[i, t])]
    fac_latex, fac = _factor(res, i, obj.aggregation)
    local = 0.0

    if name in ("grpo", "dapo", "dr_grpo", "dual_clip", "gspo", "gspo_token"):
        x = r
        if obj.level == "sequence":
            deltas = [b - a for a, b in zip(resp.logp_old, resp.logp_new)]
            mean_delta = sum(deltas) / L
            s = float(ex.seq_ratio[i])
            shown = " + ".join(n(d) for d in deltas) if L <= 6 else r"\sum_t \Delta_{i,t}"
            steps.append(Step("mean log-ratio over the response",
                              rf"\bar\Delta_i = ({shown}) / {L} = {n(mean_delta)}", mean_delta))
            steps.append(Step("sequence ratio", rf"s_i = e^{{\bar\Delta_i}} = {n(s)}", s))
            x = s
        sym = "s" if obj.level == "sequence" else "r"
        lo_b, hi_b = 1 - cfg.eps_low, 1 + cfg.eps_high
        clipped = min(max(x, lo_b), hi_b)
        steps.append(Step("clip bounds", rf"[1 - \epsilon_{{low}}, 1 + \epsilon_{{high}}] = [{n(lo_b)}, {n(hi_b)}]", hi_b))
        steps.append(Step("clipped ratio", rf"\mathrm{{clip}}({sym}, {n(lo_b)}, {n(hi_b)}) = {n(clipped)}", clipped))
        term = min(x * A, clipped * A)
        steps.append(Step("the min", rf"\min({sym}A, \mathrm{{clip}}({sym})A) = \min({n(x)} \cdot {n(A)},\ "
                                     rf"{n(clipped)} \cdot {n(A)}) = {n(term)}", term))
        if name == "dual_clip" and A < 0:
            floored = max(term, cfg.dual_clip_c * A)
            steps.append(Step("dual-clip floor (A < 0)", rf"\max({n(term)},\ c A) = \max({n(term)},\ "
                                                         rf"{n(cfg.dual_clip_c)} \cdot {n(A)}) = {n(floored)}", floored))
        free = decision == "none"
        steps.append(Step("clip decision", rf"\text{{{decision}}}" + (
            r"\text{: the gradient flows}" if free else r"\text{: this branch is constant, gradient } 0"), 0.0 if not free else 1.0))
        steps.append(Step("aggregation factor", fac_latex + f" = {n(fac)}", fac))
        if name == "gspo":
            local = x * A / L if free else 0.0
            steps.append(Step("gradient weight", rf"\frac{{1}}{{G}} \cdot \frac{{s_i A_i}}{{|y_i|}} = {n(fac)} \cdot "
                                                 rf"{n(x)} \cdot {n(A)} / {L} = {n(fac * local)}" if free else
                              r"0 \text{ (clipped)}", fac * local))
        else:
            local = x * A if free else 0.0
            steps.append(Step("gradient weight", rf"\text{{factor}} \cdot {sym} \cdot A = {n(fac)} \cdot {n(x)} \cdot "
                                                 rf"{n(A)} = {n(fac * local)}" if free else r"0 \text{ (clipped)}",
                              fac * local))
    elif name == "cispo":
        low = 0.0 if cfg.eps_low is None else 1 - cfg.eps_low
        w = min(max(r, low), 1 + cfg.eps_high)
        low_text = r"\text{no lower bound}" if cfg.eps_low is None else n(low)
        steps.append(Step("capped IS weight (stop-gradient)", rf"\hat r = \mathrm{{sg}}[\mathrm{{clip}}(r, {low_text}, "
                                                             rf"{n(1 + cfg.eps_high)})] = {n(w)}", w))
        steps.append(Step("term", rf"\hat r \cdot A \cdot \log\pi_\theta = {n(w)} \cdot {n(A)} \cdot {n(lp)} = "
                                  rf"{n(w * A * lp)}", w * A * lp))
        steps.append(Step("aggregation factor", fac_latex + f" = {n(fac)}", fac))
        local = w * A
        steps.append(Step("gradient weight (never zeroed)", rf"\text{{factor}} \cdot \hat r \cdot A = {n(fac)} \cdot "
                                                           rf"{n(w)} \cdot {n(A)} = {n(fac * local)}", fac * local))
    elif name == "gmpo":
        eps = cfg.gmpo_eps
        deltas = [b - a for a, b in zip(resp.logp_old, resp.logp_new)]
        sgn = (A > 0) - (A < 0)
        clipped = [sgn * min(sgn * d, sgn * min(max(d, -eps), eps)) for d in deltas]
        rho = float(ex.seq_ratio[i])
        steps.append(Step("sign-aware clip of this token's log-ratio",
                          rf"\tilde\Delta = \mathrm{{sgn}}(A)\min(\mathrm{{sgn}}(A)\Delta,\ \mathrm{{sgn}}(A)\,"
                          rf"\mathrm{{clip}}(\Delta, -{n(eps)}, {n(eps)})) = {n(clipped[t])}", clipped[t]))
        steps.append(Step("geometric-mean ratio", rf"\rho_i = \exp\big(\tfrac{{1}}{{{L}}}\sum_t \tilde\Delta_t\big) = "
                                                  rf"\exp({n(sum(clipped) / L)}) = {n(rho)}", rho))
        steps.append(Step("term", rf"\rho_i A_i = {n(rho)} \cdot {n(A)} = {n(rho * A)}", rho * A))
        steps.append(Step("aggregation factor", fac_latex + f" = {n(fac)}", fac))
        free = decision == "none"
        local = rho * A / L if free else 0.0
        steps.append(Step("gradient weight", rf"\frac{{1}}{{G}} \cdot \frac{{\rho_i A_i}}{{|y_i|}} = {n(fac)} \cdot "
                                             rf"{n(rho)} \cdot {n(A)} / {L} = {n(fac * local)}" if free else
                          r"0 \text{ (this token's log-ratio is clipped)}", fac * local))
    elif name == "sapo":
        tau = cfg.tau_pos if A > 0 else cfg.tau_neg
        sig = 1 / (1 + math.exp(-tau * (r - 1)))
        steps.append(Step("temperature", rf"\tau = \tau_{{{'pos' if A > 0 else 'neg'}}} = {n(tau)}", tau))
        steps.append(Step("gate", rf"\sigma(\tau(r - 1)) = \sigma({n(tau)} \cdot {n(r - 1)}) = {n(sig)}", sig))
        f = sig * 4 / tau
        steps.append(Step("term", rf"f(r) A = \sigma \cdot \frac{{4}}{{\tau}} \cdot A = {n(f)} \cdot {n(A)} = {n(f * A)}",
                          f * A))
        gate = 4 * sig * (1 - sig)
        steps.append(Step("soft gate weight", rf"4\sigma(1-\sigma) = {n(gate)}", gate))
        steps.append(Step("aggregation factor", fac_latex + f" = {n(fac)}", fac))
        local = gate * r * A
        steps.append(Step("gradient weight", rf"\text{{factor}} \cdot 4\sigma(1-\sigma) \cdot r \cdot A = {n(fac)} \cdot "
                                             rf"{n(gate)} \cdot {n(r)} \cdot {n(A)} = {n(fac * local)}", fac * local))
    total = fac * local
    if cfg.beta and resp.logp_ref is not None and fac:
        lr = resp.logp_ref[t]
        k = float(kl_estimate(torch.tensor(lp), torch.tensor(lr), cfg.kl))
        dk = float(kl_derivative(torch.tensor(lp), torch.tensor(lr), cfg.kl))
        kl_fac = fac if obj.aggregation != "seq-mean" else fac / L
        steps.append(Step(f"KL estimate ({cfg.kl})", rf"k = {n(k)},\quad \partial k / \partial \log\pi_\theta = {n(dk)}", k))
        steps.append(Step("KL gradient", rf"-\beta \cdot \text{{factor}} \cdot \partial k = -{n(cfg.beta)} \cdot "
                                         rf"{n(kl_fac)} \cdot {n(dk)} = {n(-cfg.beta * kl_fac * dk)}",
                          -cfg.beta * kl_fac * dk))
        total += -cfg.beta * kl_fac * dk
    steps.append(Step("autograd check: ∂J/∂log π_θ of the aggregated objective",
                      rf"\partial J / \partial \log\pi_\theta(y_{{{i},{t + 1}}}) = {n(float(ex.grad_weight[i, t]))}",
                      float(ex.grad_weight[i, t])))
    return steps


def seed_mistakes(res: ScenarioResult, i: int, t: int) -> list[Mistake]:
    """The source articles' wrong steps that apply to this token, each beside the right one."""
    ex = res.explanation
    name = ex.objective
    cfg = ex.settings
    out = []
    resp = res.scenario.responses[i]
    r = math.exp(resp.logp_new[t] - resp.logp_old[t])
    a = res.advantages[i]
    A = float(a) if a.dim() == 0 else float(a[t])
    if name in ("grpo", "dapo", "dr_grpo", "dual_clip"):
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
                r"A_i = \frac{R_i - \bar R}{\sigma + \epsilon}", A,
                f"GRPO with an outcome reward gives every token of response {i} the same group-relative advantage "
                "A_i; nothing is discounted."))
    if name == "gspo" and res.rewards is not None and ex.seq_ratio is not None and len(res.rewards) >= 2:
        s = ex.seq_ratio.tolist()
        R = res.rewards
        cut = sorted(R)[len(R) // 2]
        good = [s[k] for k in range(len(R)) if R[k] >= cut] or s
        bad = [s[k] for k in range(len(R)) if R[k] < cut] or s
        wrong = sum(good) / len(good) - sum(bad) / len(bad)
        out.append(Mistake(
            "GSPO's advantage is the group z-score of rewards", "shared/seeds/003, GSPO step 3",
            r"A = \overline{s}_{good} - \overline{s}_{bad}", wrong,
            r"A_i = \frac{R_i - \bar R}{\sigma + \epsilon}", A,
            "s_i is the importance weight that multiplies A_i; the advantage comes from the rewards alone."))
    if name == "dapo":
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


def hover_texts(res: ScenarioResult) -> list[list[str]]:
    """(G, T) short hover texts: the token's numbers and its formula with those numbers filled in."""
    ex = res.explanation
    cfg = ex.settings
    name = ex.objective
    obj = OBJECTIVES[name]
    ratio = ex.token_ratio.tolist()
    grad = ex.grad_weight.tolist()
    clip = ex.clip.tolist()
    seq = None if ex.seq_ratio is None else ex.seq_ratio.tolist()
    adv = res.advantages.tolist()
    out = []
    for i, resp in enumerate(res.scenario.responses):
        row = []
        for t, tok in enumerate(resp.tokens):
            r = ratio[i][t]
            A = adv[i][t] if isinstance(adv[i], list) else adv[i]
            head = (f"<b>{tok}</b> (response {i}, t = {t + 1})<br>p_old {math.exp(resp.logp_old[t]):.6g} → "
                    f"p_new {math.exp(resp.logp_new[t]):.6g}<br>r = p_new/p_old = {r:.6g}, A = {A:.6g}<br>")
            if name in ("grpo", "dapo", "dr_grpo", "dual_clip", "gspo", "gspo_token"):
                x, sym = (seq[i], "s") if obj.level == "sequence" else (r, "r")
                lo_b, hi_b = 1 - cfg.eps_low, 1 + cfg.eps_high
                c = min(max(x, lo_b), hi_b)
                body = (f"{'s_i = ' + format(x, '.6g') + '<br>' if sym == 's' else ''}"
                        f"min({sym}·A, clip({sym}, {lo_b:g}, {hi_b:g})·A) = min({x * A:.6g}, {c * A:.6g}) = "
                        f"{min(x * A, c * A):.6g}")
                if name == "dual_clip" and A < 0:
                    body += f"<br>max(that, c·A = {cfg.dual_clip_c * A:.6g})"
            elif name == "cispo":
                low = 0.0 if cfg.eps_low is None else 1 - cfg.eps_low
                body = f"weight sg[clip(r)] = {min(max(r, low), 1 + cfg.eps_high):.6g} (never zeroed)"
            elif name == "gmpo":
                body = f"ρ_i = {seq[i]:.6g} (log-ratio clipped to ±{cfg.gmpo_eps:g} by the sign of A)"
            else:
                tau = cfg.tau_pos if A > 0 else cfg.tau_neg
                sig = 1 / (1 + math.exp(-tau * (r - 1)))
                body = f"gate 4σ(1−σ) = {4 * sig * (1 - sig):.6g} with σ = σ({tau:g}·(r − 1)) = {sig:.6g}"
            row.append(f"{head}{body}<br>clip: {CLIP_NAMES[clip[i][t]]}<br>∂J/∂log π = {grad[i][t]:.6g}")
        out.append(row)
    return out
