"""A scenario's result as the CLI's JSON document and as a plain-text table for checking by hand."""
from __future__ import annotations

import math

from ..core.objectives import OBJECTIVES
from ..core.objectives.base import CLIP_NAMES
from ..scenarios.run import ScenarioResult


def to_json(res: ScenarioResult) -> dict:
    """{objective, settings, loss, advantages, responses: [{response, sequence_ratio, tokens: [...]}], metrics,
    conventions, sentence}; responses and tokens carry their numbers from 1, as the app shows them."""
    from .narrate import sentence
    ex = res.explanation
    adv = res.advantages
    advantages = [float(a) for a in adv] if adv.dim() == 1 else \
        [[float(x) for x in adv[i, :len(r.logp_old)]] for i, r in enumerate(res.scenario.responses)]
    ratio, token_ratio, clip = ex.ratio.tolist(), ex.token_ratio.tolist(), ex.clip.tolist()
    grad, policy = ex.grad_weight.tolist(), ex.policy_grad.tolist()
    responses = []
    for i, r in enumerate(res.scenario.responses):
        a = advantages[i]
        tokens = [{"t": t + 1, "token": tok, "p_old": math.exp(r.logp_old[t]), "p_new": math.exp(r.logp_new[t]),
                   "advantage": a[t] if isinstance(a, list) else a, "token_ratio": token_ratio[i][t],
                   "ratio": ratio[i][t], "clip": CLIP_NAMES[clip[i][t]], "grad_weight": grad[i][t],
                   "policy_grad_weight": policy[i][t]} for t, tok in enumerate(r.tokens)]
        seq = None if ex.seq_ratio is None else float(ex.seq_ratio[i])
        responses.append({"response": i + 1, "sequence_ratio": seq, "masked": i in res.masked, "tokens": tokens})
    return {"objective": ex.objective, "settings": ex.settings.effective_dict(), "loss": ex.loss,
            "advantages": advantages, "responses": responses, "metrics": ex.metrics,
            "conventions": list(res.conventions), "sentence": sentence(res)}


def steps_json(res: ScenarioResult, i: int, t: int) -> dict:
    """The Formula Checker's steps for token t of response i (0-based), as `python -m gspo_viz steps --json` prints
    them (numbered from 1)."""
    from .steps import autograd_step, token_steps
    steps = token_steps(res, i, t)
    return {"objective": res.explanation.objective, "response": i + 1, "token": t + 1,
            "steps": [{"name": s.label, "formula": s.latex, "value": s.value} for s in steps],
            "grad_weight": steps[-1].value, "autograd": autograd_step(res, i, t).value}


def steps_text(res: ScenarioResult, i: int, t: int) -> str:
    """The same steps as plain text: one numbered line per step."""
    d = steps_json(res, i, t)
    tok = res.scenario.responses[i].tokens[t]
    lines = [f"{OBJECTIVES[d['objective']].title}: response {d['response']}, token {d['token']} “{tok}”", ""]
    lines += [f"{k:>2}. {s['name']}: {s['formula']}    [{s['value']:.10g}]" for k, s in enumerate(d["steps"], 1)]
    lines += ["", f"gradient weight by the steps: {d['grad_weight']:.12g}", f"autograd:                     "
              f"{d['autograd']:.12g}", "", "conventions:"] + [f"  - {c}" for c in res.conventions]
    return "\n".join(lines)


def _f(x: float, width: int = 10) -> str:
    return f"{x:>{width}.6g}"


def to_text(res: ScenarioResult) -> str:
    """The per-token table, sequence ratios, advantages, loss and the conventions used."""
    ex = res.explanation
    obj = OBJECTIVES[ex.objective]
    scn = res.scenario
    lines = []
    if scn.title:
        lines.append(scn.title)
    lines.append(f"objective: {obj.title} ({obj.name}; {obj.paper})")
    lines.append("")
    if res.rewards is not None:
        shaped = "" if res.shaped_rewards == res.rewards else f"  shaped rewards {[round(x, 6) for x in res.shaped_rewards]}"
        lines.append(f"rewards {res.rewards}{shaped}  mean {res.reward_mean:.6g}  std {res.reward_std:.6g}")
        if res.no_signal:
            lines.append("all rewards are equal: every advantage is 0, this group gives no learning signal"
                         + (" (dropped by dynamic sampling)" if res.dropped else
                            " (DAPO's dynamic sampling would drop it)"))
    for i, r in enumerate(scn.responses):
        a = res.advantages[i]
        a_text = f"{float(a):.6g}" if a.dim() == 0 else "per token"
        head = f"response {i + 1}: {len(r.tokens)} tokens, advantage {a_text}"
        if r.reward is not None:
            head += f", reward {r.reward:g}"
        if ex.seq_ratio is not None:
            head += f", sequence ratio {float(ex.seq_ratio[i]):.6g}"
        if i in res.masked:
            head += "  [masked out of the loss]"
        lines.append("")
        lines.append(head)
        lines.append(f"  {'t':>3} {'token':<12} {'p_old':>10} {'p_new':>10} {'r=new/old':>10} "
                     f"{'ratio used':>10} {'clip':<6} {'grad_weight':>12}")
        for t, tok in enumerate(r.tokens):
            lines.append(f"  {t + 1:>3} {tok[:12]:<12} {_f(math.exp(r.logp_old[t]))} {_f(math.exp(r.logp_new[t]))} "
                         f"{_f(float(ex.token_ratio[i, t]))} {_f(float(ex.ratio[i, t]))} "
                         f"{CLIP_NAMES[int(ex.clip[i, t])]:<6} {float(ex.grad_weight[i, t]):>12.6g}")
    lines.append("")
    lines.append(f"J = {ex.J:.8g}    loss = −J = {ex.loss:.8g}")
    m = ex.metrics
    lines.append(f"clip fraction {m['clip_fraction']:.4g} (upper {m['clip_fraction_upper']:.4g}, "
                 f"lower {m['clip_fraction_lower']:.4g}, dual {m['clip_fraction_dual']:.4g})"
                 + (f"; sequences clipped {m['seq_clip_fraction']:.4g}" if "seq_clip_fraction" in m else ""))
    from .narrate import sentence
    lines.append("")
    lines.append(sentence(res))
    lines.append("")
    lines.append("conventions:")
    lines.extend(f"  - {c}" for c in res.conventions)
    return "\n".join(lines)


def token_rows(res: ScenarioResult) -> list[dict]:
    """One row per token with every number a person checks by hand (for tables in the app)."""
    ex = res.explanation
    rows = []
    for i, r in enumerate(res.scenario.responses):
        a = res.advantages[i]
        for t, tok in enumerate(r.tokens):
            rows.append({
                "response": i + 1, "t": t + 1, "token": tok,
                "p_old": math.exp(r.logp_old[t]), "p_new": math.exp(r.logp_new[t]),
                "ratio r": float(ex.token_ratio[i, t]), "ratio used": float(ex.ratio[i, t]),
                "seq ratio": None if ex.seq_ratio is None else float(ex.seq_ratio[i]),
                "advantage": float(a) if a.dim() == 0 else float(a[t]),
                "clip": CLIP_NAMES[int(ex.clip[i, t])], "grad weight": float(ex.grad_weight[i, t]),
            })
    return rows
