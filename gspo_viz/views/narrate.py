"""One generated sentence per objective, built from facts read off the computed result (what was marked, why, with
what values). Each Fact carries the claims a test can check against the numbers."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..core.objectives import OBJECTIVES
from ..core.objectives.base import CLIP_NAMES, NONE
from ..scenarios.run import ScenarioResult
from .style import bounds, fmt

MAX_LISTED = 3


@dataclass
class Fact:
    """A piece of a sentence and what it claims.

    kind: 'dropped' | 'masked' | 'no_signal' | 'marked' | 'count' | 'none_marked' | 'shared' | 'gate' | 'kl' | 'loss'
    items: the (response, token) pairs it names (0-based; the text numbers them from 1)
    zero: it claims these tokens' policy-term gradient is exactly 0
    code: the clip decision it claims for its items ('marked')
    count / of: '{count} of {of}' as the text says it (responses or tokens, see unit)
    quoted: the numbers the text quotes, as (what, i, t, value): what ∈ ratio (r), seq_ratio (s), gate, loss
    """
    kind: str
    text: str
    items: list[tuple[int, int]] = field(default_factory=list)
    zero: bool = False
    code: Optional[int] = None
    unit: str = "token"
    count: Optional[int] = None
    of: Optional[int] = None
    quoted: list[tuple[str, int, int, float]] = field(default_factory=list)


def _listing(shown: list[str], n: int) -> str:
    """The first items named, then how many more."""
    return ", ".join(shown) + (f" and {n - len(shown)} more" if n > len(shown) else "")


def facts(res: ScenarioResult) -> list[Fact]:
    """The sentence's facts, in the order they are said (rollout correction's just before the loss)."""
    out = _facts(res)
    return out[:-1] + _rollout(res) + out[-1:]


def _rollout(res: ScenarioResult) -> list[Fact]:
    """What rollout correction did: how many tokens' weights it capped (TIS) or set to 0 (IcePop)."""
    ex = res.explanation
    rc, cfg = ex.rollout, ex.settings
    if rc is None:
        return []
    valid = ex.loss_mask > 0
    n = int(valid.sum())
    unit = "token" if cfg.rollout_is == "token" else "response"
    head = (f"Rollout correction ({unit} level, mean |log π_old − log π_rollout| = "
            f"{fmt(ex.metrics['rollout_logp_gap'])})")
    C = fmt(cfg.rollout_is_threshold)
    if cfg.rollout_is_threshold_lower is None:
        k = int((rc.truncated & valid).sum())
        text = (f"{head}: {k} of {n} tokens' weights π_old/π_rollout were above C = {C} and count with weight {C}."
                if k else f"{head}: no token's weight π_old/π_rollout is above C = {C}, so none is truncated.")
        return [Fact("rollout", text, count=k, of=n)]
    items = [(int(i), int(t)) for i, t in (rc.masked & valid).nonzero().tolist()]
    band = f"[{fmt(cfg.rollout_is_threshold_lower)}, {C}]"
    if not items:
        return [Fact("rollout", f"{head}: no token's weight falls outside {band}, so none is set to 0.", count=0, of=n)]
    return [Fact("rollout", f"{head}: {len(items)} of {n} tokens' weights fell outside {band} and were set to 0, so "
                            "their policy gradient is 0.", items, zero=True, count=len(items), of=n)]


def _facts(res: ScenarioResult) -> list[Fact]:
    ex = res.explanation
    obj = OBJECTIVES[ex.objective]
    cfg = ex.settings
    title = obj.title
    valid = (ex.loss_mask > 0).tolist()                            # (G, T) as lists: read once, not per token
    G = len(valid)
    every = [(i, t) for i, row in enumerate(valid) for t, v in enumerate(row) if v]
    kl_on = bool(cfg.beta) and ex.metrics.get("kl") is not None
    kl_note = f" (the KL term, β = {fmt(cfg.beta)}, still moves them)" if kl_on else ""
    loss = Fact("loss", f"Loss {fmt(ex.loss)}.", quoted=[("loss", -1, -1, ex.loss)])
    tokens = [(i, t) for i in range(G) for t in range(len(res.scenario.responses[i].tokens))]
    if res.dropped:
        return [Fact("dropped", f"{title}: all task rewards are equal, so dynamic sampling dropped the group: no token "
                                "takes part in the loss and nothing is learned.", tokens, zero=True), loss]
    if not every:
        return [Fact("masked", f"{title}: every response is masked out of the loss (overlong filtering), so no token "
                               "takes part and nothing is learned.", tokens, zero=True), loss]
    if res.no_signal:
        equal_task = res.rewards is not None and len(set(res.rewards)) == 1
        return [Fact("no_signal", f"{title}: all rewards are equal, so every advantage is 0 and the policy term gives "
                                  f"no token a gradient{kl_note}"
                                  + (" (DAPO's dynamic sampling would drop this group)." if equal_task else "."),
                     tokens, zero=True), loss]
    if ex.gate is not None:
        gate = ex.gate.tolist()
        g = [gate[i][t] for i, t in every]
        lo = min(range(len(g)), key=g.__getitem__)
        hi = max(range(len(g)), key=g.__getitem__)
        return [Fact("gate", f"{title} clips nothing: its soft gate {obj.gate_name} scales each token's r·A by "
                             f"{fmt(g[lo])} to {fmt(g[hi])} here (1 at r = 1), so no token's gradient is zeroed.",
                     quoted=[("gate", *every[lo], g[lo]), ("gate", *every[hi], g[hi])])] + _kl(ex, kl_on) + [loss]
    return _marked(res, valid, every, kl_note) + _kl(ex, kl_on) + [loss]


def _marked(res: ScenarioResult, valid: list[list[bool]], every: list[tuple[int, int]], kl_note: str) -> list[Fact]:
    """What was marked and why: a whole response when the clip acts on its sequence ratio and every token of it
    shares the mark, else token by token."""
    ex = res.explanation
    obj = OBJECTIVES[ex.objective]
    title = obj.title
    fill = bounds(ex.settings)
    codes = ex.clip.tolist()
    ratio = ex.token_ratio.tolist()
    seq = None if ex.seq_ratio is None else ex.seq_ratio.tolist()
    sym = obj.seq_ratio_symbol
    whole: dict[int, list[int]] = {}                 # code → responses marked whole
    single: dict[int, list[tuple[int, int]]] = {}    # code → tokens marked one by one
    rows = [i for i, row in enumerate(valid) if any(row)]
    for i in rows:
        toks = [t for t, v in enumerate(valid[i]) if v]
        row_codes = {codes[i][t] for t in toks}
        if obj.level == "sequence" and len(row_codes) == 1 and row_codes != {NONE}:
            whole.setdefault(row_codes.pop(), []).append(i)
        else:
            for t in toks:
                if codes[i][t] != NONE:
                    single.setdefault(codes[i][t], []).append((i, t))
    n_whole = sum(len(v) for v in whole.values())
    n_single = sum(len(v) for v in single.values())
    out: list[Fact] = []
    if not n_whole and not n_single:
        what = "response" if obj.level == "sequence" else "token"
        x = "s_i" if sym == "s" else "ratio"
        out.append(Fact("none_marked", f"{title} clipped no {what}: {obj.nothing_marked.format(x=x, **fill)}.",
                        every))
        if obj.unmarked_note:
            out.append(Fact("shared", f"So {obj.unmarked_note}.", every))
        return out
    zero = obj.zeroes_clipped
    if n_whole:
        parts = []
        for code, rs in whole.items():
            listed = [f"response {i + 1} ({sym} = {fmt(seq[i])})" for i in rs[:MAX_LISTED]]
            parts.append(f"{_listing(listed, len(rs))} {obj.reasons[CLIP_NAMES[code]].format(**fill)}")
            its = [(i, t) for i in rs for t, v in enumerate(valid[i]) if v]
            out.append(Fact("marked", "", its, zero=zero, code=code, unit="response", count=len(rs),
                            quoted=[("seq_ratio", i, -1, seq[i]) for i in rs[:MAX_LISTED]]))
        one = n_whole == 1
        effect = (f"so {'all its tokens get' if one else 'all their tokens get'} policy gradient 0{kl_note}" if zero
                  else f"so {'its' if one else 'their'} {obj.effect}")
        counted = "responses" if len(rows) == len(valid) else "counted responses"   # overlong-filtered rows are not
        how_many = "its one response" if len(valid) == 1 else f"{n_whole} of {len(rows)} {counted}"
        out.append(Fact("count", f"{title} clipped {how_many} whole: {'; '.join(parts)}, "
                                 f"{effect}.", unit="response", count=n_whole, of=len(rows)))
    if n_single:
        total = len(every)
        parts = []
        for code, its in single.items():
            listed, quoted = [], []
            for i, t in its[:MAX_LISTED]:
                tok = res.scenario.responses[i].tokens[t]
                if obj.level == "sequence":
                    listed.append(f"“{tok}” (response {i + 1}, t = {t + 1}, A = {fmt(_adv(res, i, t))}, "
                                  f"{sym} = {fmt(seq[i])})")
                    quoted.append(("seq_ratio", i, t, seq[i]))
                else:
                    listed.append(f"“{tok}” (r = {fmt(ratio[i][t])})")
                    quoted.append(("ratio", i, t, ratio[i][t]))
            parts.append(f"{_listing(listed, len(its))} {obj.reasons[CLIP_NAMES[code]].format(**fill)}")
            out.append(Fact("marked", "", its, zero=zero, code=code, count=len(its), quoted=quoted))
        one = n_single == 1
        effect = (f"so {'its' if one else 'their'} policy gradient is 0{kl_note}" if zero
                  else f"so {'its' if one else 'their'} {obj.effect}")
        lead = f"{title} clipped" if not n_whole else "It also clipped"
        out.append(Fact("count", f"{lead} {n_single} of {total} tokens ({100 * n_single / total:.0f}%): "
                                 f"{'; '.join(parts)}, {effect}.", count=n_single, of=total))
    return out


def _adv(res: ScenarioResult, i: int, t: int) -> float:
    a = res.advantages[i]
    return float(a) if a.dim() == 0 else float(a[t])


def _kl(ex, kl_on: bool) -> list[Fact]:
    if not kl_on:
        return []
    return [Fact("kl", f"With β = {fmt(ex.settings.beta)}, the KL term ({ex.settings.kl}) adds its own gradient to "
                       f"every token; mean KL estimate {fmt(ex.metrics['kl'])}.")]


def sentence(res: ScenarioResult) -> str:
    """E.g. 'GRPO clipped 3 of 5 tokens (60%): “《” (r = 1.3333), … rose above 1 + ε_high = 1.2 with A > 0, so their
    policy gradient is 0. Loss −1.135.'"""
    return " ".join(f.text for f in facts(res) if f.text)
