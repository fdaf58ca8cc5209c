"""The editable tables of the Token Lab (pandas, no Streamlit): scenario ⇄ tables, and edits that keep what was typed.

Responses and tokens are numbered from 1 in the tables, as on every page.

Two tables: responses (one row per response: reward, optional advantage, truncated) and tokens (one row per token:
response, t, token, and p_old/p_new or logp_old/logp_new). Converting back never drops a typed value: an invalid
entry goes into the scenario as typed, so parse_scenario names it (e.g. responses[1].p_new[2]).

The numbers are edited as text (NUMBER_COLUMNS): Streamlit's number cell editor drops what is not a digit, a point or
a minus sign while one types, so "1e308" arrived as 1308 and "0.5e-1" as 0.51, silently. As text, what was typed
reaches number_cell() and the parser: a number is read as Python reads it ("1e308", "-2.5E-3"), anything else stays
as typed, and the parser refuses it with its message.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..scenarios.files import MAX_RESPONSES, MAX_TOKENS_PER_RESPONSE, MAX_TOTAL_TOKENS

if TYPE_CHECKING:
    from ..scenarios.run import ScenarioResult

RESPONSE_COLUMNS = ["response", "reward", "advantage", "truncated"]
NUMBER_COLUMNS = ("reward", "advantage", "p_old", "p_new", "logp_old", "logp_new")   # edited as text


def number_text(v: Any) -> Any:
    """A number as its table text (the shortest text that reads back to the same float); empty stays None and
    anything else (a value typed earlier that is not a number) stays as it is."""
    v = _cell(v)
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, int):
        return str(v)
    return v


def number_cell(v: Any) -> Any:
    """A table cell as the scenario's JSON value: text that Python reads as a number becomes that number ("1e308"
    → 1e308, which the parser then refuses by name), empty text or an emptied cell becomes None (the parser reports a
    missing value), other text stays as typed (the parser says it is not a number)."""
    v = _cell(v)
    if isinstance(v, str):
        text = v.strip()
        if not text:
            return None
        try:
            return float(text)
        except ValueError:
            return v
    return v


def scenario_to_tables(data: dict, log_space: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(responses, tokens) tables from a scenario dict (p_* or logp_* fields; per-token advantages are kept out)."""
    rows, toks = [], []
    for i, r in enumerate(data.get("responses", [])):
        adv = r.get("advantage")
        rows.append({"response": i + 1, "reward": number_text(r.get("reward")),
                     "advantage": number_text(adv) if not isinstance(adv, list) else None,
                     "truncated": bool(r.get("truncated", False))})
        old, new = _values(r, "old", log_space), _values(r, "new", log_space)
        tokens = r.get("tokens") or [f"t{k + 1}" for k in range(max(len(old), len(new)))]
        cols = ("logp_old", "logp_new") if log_space else ("p_old", "p_new")
        for t, tok in enumerate(tokens):
            toks.append({"response": i + 1, "t": t + 1, "token": tok,
                         cols[0]: number_text(old[t]) if t < len(old) else None,
                         cols[1]: number_text(new[t]) if t < len(new) else None})
    value_cols = ["logp_old", "logp_new"] if log_space else ["p_old", "p_new"]
    responses = pd.DataFrame(rows, columns=RESPONSE_COLUMNS)
    tokens = pd.DataFrame(toks, columns=["response", "t", "token"] + value_cols)
    for frame, columns in ((responses, ("reward", "advantage")), (tokens, value_cols)):
        for c in columns:
            frame[c] = frame[c].astype(object)   # text, even when every cell is empty
    return responses, tokens


def _values(r: dict, which: str, log_space: bool) -> list:
    """One policy's numbers in the requested space (as typed when no conversion is needed; a value that cannot be
    converted to the other space becomes an empty cell, which the parser then names)."""
    p, lp = r.get(f"p_{which}"), r.get(f"logp_{which}")
    if log_space:
        if lp is not None:
            return list(lp)
        return [math.log(x) if _num(x) and 0 < x <= 1 else None for x in (p or [])]
    if p is not None:
        return list(p)
    return [math.exp(x) if _num(x) and x <= 0 else None for x in (lp or [])]


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _cell(v: Any) -> Any:
    """A table cell as JSON: NaN/None (an emptied cell) stays None so the parser reports it."""
    if v is None:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if hasattr(v, "item"):
        v = v.item()
    return v


def tables_to_scenario(responses: pd.DataFrame, tokens: pd.DataFrame, base: dict) -> dict:
    """A scenario dict from the two tables; title, notes and settings come from `base`.

    Tokens are grouped by their `response` column in table order. A response with no token rows becomes an
    empty response (which the parser refuses by name).
    """
    log_space = "logp_old" in tokens.columns
    cols = ("logp_old", "logp_new") if log_space else ("p_old", "p_new")
    out = []
    for k, row in enumerate(responses.to_dict("records")):
        i = _cell(row.get("response"))
        mine = tokens[tokens["response"] == i] if i is not None else tokens.iloc[0:0]
        r: dict[str, Any] = {"tokens": [str(_cell(x)) if _cell(x) is not None else "" for x in mine["token"]],
                             cols[0]: [number_cell(x) for x in mine[cols[0]]],
                             cols[1]: [number_cell(x) for x in mine[cols[1]]]}
        reward, adv = number_cell(row.get("reward")), number_cell(row.get("advantage"))
        if reward is not None:
            r["reward"] = reward
        if adv is not None:
            r["advantage"] = adv
        if bool(_cell(row.get("truncated"))):
            r["truncated"] = True
        out.append(r)
    return {"title": base.get("title", ""), "notes": base.get("notes", ""), "responses": out,
            "settings": dict(base.get("settings", {}))}


def where_in_tables(where: str, tokens: pd.DataFrame) -> str:
    """Translate a parser location like responses[1].p_new[2] into the table the person edits."""
    import re
    m = re.match(r"responses\[(\d+)\]\.(p_old|p_new|logp_old|logp_new|tokens)\[(\d+)\]", where)
    if m:
        return f"tokens table, response {int(m.group(1)) + 1}, t = {int(m.group(3)) + 1}, column {m.group(2)}"
    m = re.match(r"responses\[(\d+)\](?:\.(reward|advantage|truncated))?", where)
    if m:
        field = m.group(2)
        return f"responses table, response {int(m.group(1)) + 1}" + (f", column {field}" if field else "")
    return where


# --------------------------------------------------------------------------- structural edits (keep typed values)

class EditRefused(ValueError):
    """A structural edit that would break a limit of the scenario files; str() says which, and the tables stay
    as they were."""


def _total(tokens: pd.DataFrame) -> int:
    return len(tokens)


def add_response(responses: pd.DataFrame, tokens: pd.DataFrame, n_tokens: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A new last response of `n_tokens` tokens (p = 0.5, reward 0). Refused past MAX_RESPONSES responses or
    MAX_TOTAL_TOKENS tokens in all."""
    if len(responses) >= MAX_RESPONSES:
        raise EditRefused(f"No response added: the group already has {len(responses)} responses, the limit")
    if _total(tokens) + n_tokens > MAX_TOTAL_TOKENS:
        raise EditRefused(f"No response added: the group would hold {_total(tokens) + n_tokens:,} tokens in all; the "
                          f"limit is {MAX_TOTAL_TOKENS:,}")
    i = int(responses["response"].max()) + 1 if len(responses) else 1
    responses = pd.concat([responses, pd.DataFrame([{"response": i, "reward": number_text(0.0), "advantage": None,
                                                     "truncated": False}])], ignore_index=True)
    value_cols = [c for c in tokens.columns if c not in ("response", "t", "token")]
    fill = number_text(0.5 if value_cols[0] == "p_old" else math.log(0.5))
    new = pd.DataFrame([{"response": i, "t": t + 1, "token": f"t{t + 1}", value_cols[0]: fill, value_cols[1]: fill}
                        for t in range(n_tokens)])
    return responses, pd.concat([tokens, new], ignore_index=True)


def remove_response(responses: pd.DataFrame, tokens: pd.DataFrame, i: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Remove response i (as numbered in the table) and renumber the later ones so they stay 1..G. Refused for
    the last one."""
    if len(responses) <= 1:
        raise EditRefused(f"Response {i} was not removed: a group needs at least one response")
    responses = responses[responses["response"] != i].copy()
    tokens = tokens[tokens["response"] != i].copy()
    responses.loc[responses["response"] > i, "response"] -= 1
    tokens.loc[tokens["response"] > i, "response"] -= 1
    return responses.reset_index(drop=True), tokens.reset_index(drop=True)


def add_token(tokens: pd.DataFrame, i: int) -> pd.DataFrame:
    """A token (p = 0.5) at the end of response i. Refused past MAX_TOKENS_PER_RESPONSE tokens in the response or
    MAX_TOTAL_TOKENS in all."""
    mine = tokens[tokens["response"] == i]
    if len(mine) >= MAX_TOKENS_PER_RESPONSE:
        raise EditRefused(f"No token added: response {i} already has {len(mine):,} tokens, the limit per response")
    if _total(tokens) >= MAX_TOTAL_TOKENS:
        raise EditRefused(f"No token added: the group already holds {_total(tokens):,} tokens, the limit in all")
    value_cols = [c for c in tokens.columns if c not in ("response", "t", "token")]
    fill = number_text(0.5 if value_cols[0] == "p_old" else math.log(0.5))
    row = {"response": i, "t": len(mine) + 1, "token": f"t{len(mine) + 1}", value_cols[0]: fill, value_cols[1]: fill}
    at = (mine.index.max() + 1) if len(mine) else len(tokens)
    return pd.concat([tokens.iloc[:at], pd.DataFrame([row]), tokens.iloc[at:]], ignore_index=True)


def remove_token(tokens: pd.DataFrame, i: int) -> pd.DataFrame:
    """Remove response i's last token. Refused for its only token (a response needs one: remove the response)."""
    mine = tokens[tokens["response"] == i]
    if len(mine) <= 1:
        raise EditRefused(f"No token removed: response {i} has {'only one token' if len(mine) else 'no token'}, and "
                          "a response needs at least one (remove the response instead)")
    return tokens.drop(index=mine.index.max()).reset_index(drop=True)


# --------------------------------------------------------------------------- every number, per token

MAX_TABLE_ROWS = 5_000   # rows of the "every number" table rendered at once; the CSV has every row


def token_frame(results: dict[str, "ScenarioResult"]) -> pd.DataFrame:
    """One row per token and objective with every number of views.report.token_rows (the same columns and
    values, built from the tensors at once rather than token by token), the objective first."""
    from ..core.objectives.base import CLIP_NAMES
    cols: dict[str, list] = {c: [] for c in ("objective", "response", "t", "token", "p_old", "p_new", "ratio r",
                                             "ratio used", "seq ratio", "advantage", "clip", "grad weight")}
    if any(r.explanation.rollout is not None for r in results.values()):     # rollout correction's weight
        cols["rollout weight"] = []
    for name, res in results.items():
        ex = res.explanation
        inside = ex.mask > 0
        rows = inside.nonzero()
        i, t = rows[:, 0], rows[:, 1]
        rs = res.scenario.responses
        n = len(i)
        cols["objective"] += [name] * n
        cols["response"] += (i + 1).tolist()
        cols["t"] += (t + 1).tolist()
        cols["token"] += [tok for r in rs for tok in r.tokens]
        cols["p_old"] += [math.exp(x) for r in rs for x in r.logp_old]
        cols["p_new"] += [math.exp(x) for r in rs for x in r.logp_new]
        cols["ratio r"] += ex.token_ratio[inside].tolist()
        cols["ratio used"] += ex.ratio[inside].tolist()
        cols["seq ratio"] += [None] * n if ex.seq_ratio is None else ex.seq_ratio[i].tolist()
        a = res.advantages
        cols["advantage"] += (a[i] if a.dim() == 1 else a[inside]).tolist()
        cols["clip"] += [CLIP_NAMES[c] for c in ex.clip[inside].tolist()]
        cols["grad weight"] += ex.grad_weight[inside].tolist()
        if "rollout weight" in cols:
            cols["rollout weight"] += [None] * n if ex.rollout is None else ex.rollout.weight[inside].tolist()
    return pd.DataFrame(cols)


def rows_shown(frame: pd.DataFrame, response: int | None = None,
               cap: int = MAX_TABLE_ROWS) -> tuple[pd.DataFrame, str | None]:
    """The rows of `frame` to render: all of them when they are at most `cap`; else response `response`'s
    (numbered from 1; the first by default), at most `cap` of them. The note says what is shown (None: all)."""
    if len(frame) <= cap:
        return frame, None
    r = 1 if response is None else int(response)
    mine = frame[frame["response"] == r]
    shown = mine.head(cap)
    part = f"the first {len(shown):,} of its {len(mine):,} rows" if len(mine) > cap else f"its {len(shown):,} rows"
    return shown, (f"{len(frame):,} rows in all, too many to show at once: showing response {r}, {part}. The CSV "
                   "download has every row.")
