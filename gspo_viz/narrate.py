"""One generated sentence per objective that reads the computed numbers: what was clipped, why, and with what values."""
from __future__ import annotations

from .objectives import CLIP_NAMES, OBJECTIVES
from .scenario import ScenarioResult
from .style import fmt

WHY = {
    "upper": "rose above 1 + ε_high = {hi} with A > 0",
    "lower": "fell below 1 − ε_low = {lo} with A < 0",
    "dual": "exceeded c = {c} with A < 0",
}
CISPO_WHY = {"upper": "rose above 1 + ε_high = {hi}", "lower": "fell below 1 − ε_low = {lo}"}
NOTHING_PAST = ("is past a bound in the direction its advantage pushes (above 1 + ε_high with A > 0, below "
                "1 − ε_low with A < 0)")
MAX_LISTED = 3


def _listing(items: list[str]) -> str:
    shown = items[:MAX_LISTED]
    more = len(items) - len(shown)
    text = ", ".join(shown)
    return text + (f" and {more} more" if more else "")


def sentence(res: ScenarioResult) -> str:
    """E.g. 'GRPO clipped 3 of 5 tokens (60%): 《 (r = 1.3333) … rose above 1 + ε_high = 1.2 with A > 0, so their
    gradient is 0. Loss −1.135.'"""
    ex = res.explanation
    obj = OBJECTIVES[ex.objective]
    cfg = ex.settings
    title = obj.title
    loss = f"Loss {fmt(ex.loss)}."
    if res.dropped:
        return f"{title}: all rewards are equal, so dynamic sampling dropped the group; nothing is learned. {loss}"
    if res.no_signal:
        return (f"{title}: all rewards are equal, so every advantage is 0 and no token gets a gradient "
                f"(DAPO's dynamic sampling would drop this group). {loss}")
    fill = {"hi": fmt(1 + cfg.eps_high) if cfg.eps_high is not None else "", "c": fmt(cfg.dual_clip_c or 0),
            "lo": fmt(1 - cfg.eps_low) if cfg.eps_low is not None else ""}
    valid = ex.loss_mask > 0
    codes = ex.clip
    if ex.objective == "sapo":
        g = ex.grad_weight[valid].abs()
        return (f"{title} clips nothing: its soft gate scales each token's gradient by 4σ(1−σ), from "
                f"{fmt(float(g.min()))} to {fmt(float(g.max()))} in absolute weight here. {loss}")
    if obj.level == "sequence":
        rows = [i for i in range(codes.shape[0]) if valid[i].any()]
        clipped = [i for i in rows if (codes[i][valid[i]] != 0).any()]
        parts = {}
        for i in clipped:
            name = CLIP_NAMES[int(codes[i][valid[i]][0])]
            parts.setdefault(name, []).append(f"response {i} (s = {fmt(float(ex.seq_ratio[i]))})")
        if not clipped:
            return (f"{title} clipped no response: no s_i {NOTHING_PAST}, so all tokens of response i share the "
                    f"weight (1/G)·s_i·A_i/|y_i|. {loss}")
        why = "; ".join(f"{_listing(v)} {WHY[k].format(**fill)}" for k, v in parts.items())
        return (f"{title} clipped {len(clipped)} of {len(rows)} responses: {why}, so "
                f"{'all its tokens get' if len(clipped) == 1 else 'all their tokens get'} gradient 0. {loss}")
    total = int(valid.sum())
    groups: dict[str, list[str]] = {}
    for i, t in zip(*torch_nonzero(codes, valid)):
        name = CLIP_NAMES[int(codes[i, t])]
        tok = res.scenario.responses[i].tokens[t]
        groups.setdefault(name, []).append(f"“{tok}” (r = {fmt(float(ex.token_ratio[i, t]))})")
    n_clipped = sum(len(v) for v in groups.values())
    if not n_clipped:
        if ex.objective == "gmpo":
            return (f"{title} clipped no token: no log-ratio is beyond ±{fmt(cfg.gmpo_eps)} in the direction its "
                    f"advantage pushes. {loss}")
        return f"{title} clipped no token: no ratio {NOTHING_PAST}. {loss}"
    one = n_clipped == 1
    if ex.objective == "gmpo":
        why = "; ".join(f"{_listing(v)} had a log-ratio beyond ±{fmt(cfg.gmpo_eps)} in the direction of its "
                        f"advantage" for v in groups.values())
        effect = f"so {'it drops' if one else 'they drop'} out of the geometric mean's gradient"
    elif ex.objective == "cispo":
        why = "; ".join(f"{_listing(v)} {CISPO_WHY[k].format(**fill)}" for k, v in groups.items())
        effect = f"so {'its' if one else 'their'} weight is capped at the bound but still flows"
    else:
        why = "; ".join(f"{_listing(v)} {WHY[k].format(**fill)}" for k, v in groups.items())
        effect = f"so {'its' if one else 'their'} gradient is 0"
    pct = 100 * n_clipped / total
    return f"{title} clipped {n_clipped} of {total} tokens ({pct:.0f}%): {why}, {effect}. {loss}"


def torch_nonzero(codes, valid):
    idx = ((codes != 0) & valid).nonzero().tolist()
    return [i for i, _ in idx], [t for _, t in idx]
