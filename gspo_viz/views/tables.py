"""The editable tables of the Token Lab (pandas, no Streamlit): scenario ⇄ tables, and edits that keep what was typed.

Responses and tokens are numbered from 1 in the tables, as on every page.

Two tables: responses (one row per response: reward, optional advantage, truncated) and tokens (one row per token:
response, t, token, and p_old/p_new or logp_old/logp_new). Converting back never drops a typed value: an invalid
entry goes into the scenario as typed, so parse_scenario names it (e.g. responses[1].p_new[2]).
"""
from __future__ import annotations

import math
from typing import Any

import pandas as pd

RESPONSE_COLUMNS = ["response", "reward", "advantage", "truncated"]


def scenario_to_tables(data: dict, log_space: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(responses, tokens) tables from a scenario dict (p_* or logp_* fields; per-token advantages are kept out)."""
    rows, toks = [], []
    for i, r in enumerate(data.get("responses", [])):
        adv = r.get("advantage")
        rows.append({"response": i + 1, "reward": r.get("reward"), "advantage": adv if not isinstance(adv, list) else None,
                     "truncated": bool(r.get("truncated", False))})
        old, new = _values(r, "old", log_space), _values(r, "new", log_space)
        tokens = r.get("tokens") or [f"t{k + 1}" for k in range(max(len(old), len(new)))]
        cols = ("logp_old", "logp_new") if log_space else ("p_old", "p_new")
        for t, tok in enumerate(tokens):
            toks.append({"response": i + 1, "t": t + 1, "token": tok, cols[0]: old[t] if t < len(old) else None,
                         cols[1]: new[t] if t < len(new) else None})
    value_cols = ["logp_old", "logp_new"] if log_space else ["p_old", "p_new"]
    return (pd.DataFrame(rows, columns=RESPONSE_COLUMNS),
            pd.DataFrame(toks, columns=["response", "t", "token"] + value_cols))


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
                             cols[0]: [_cell(x) for x in mine[cols[0]]],
                             cols[1]: [_cell(x) for x in mine[cols[1]]]}
        reward, adv = _cell(row.get("reward")), _cell(row.get("advantage"))
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

def add_response(responses: pd.DataFrame, tokens: pd.DataFrame, n_tokens: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    i = int(responses["response"].max()) + 1 if len(responses) else 1
    responses = pd.concat([responses, pd.DataFrame([{"response": i, "reward": 0.0, "advantage": None,
                                                     "truncated": False}])], ignore_index=True)
    value_cols = [c for c in tokens.columns if c not in ("response", "t", "token")]
    fill = 0.5 if value_cols[0] == "p_old" else math.log(0.5)
    new = pd.DataFrame([{"response": i, "t": t + 1, "token": f"t{t + 1}", value_cols[0]: fill, value_cols[1]: fill}
                        for t in range(n_tokens)])
    return responses, pd.concat([tokens, new], ignore_index=True)


def remove_response(responses: pd.DataFrame, tokens: pd.DataFrame, i: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Remove response i (as numbered in the table) and renumber the later ones so they stay 1..G."""
    responses = responses[responses["response"] != i].copy()
    tokens = tokens[tokens["response"] != i].copy()
    responses.loc[responses["response"] > i, "response"] -= 1
    tokens.loc[tokens["response"] > i, "response"] -= 1
    return responses.reset_index(drop=True), tokens.reset_index(drop=True)


def add_token(tokens: pd.DataFrame, i: int) -> pd.DataFrame:
    mine = tokens[tokens["response"] == i]
    value_cols = [c for c in tokens.columns if c not in ("response", "t", "token")]
    fill = 0.5 if value_cols[0] == "p_old" else math.log(0.5)
    row = {"response": i, "t": len(mine) + 1, "token": f"t{len(mine) + 1}", value_cols[0]: fill, value_cols[1]: fill}
    at = (mine.index.max() + 1) if len(mine) else len(tokens)
    return pd.concat([tokens.iloc[:at], pd.DataFrame([row]), tokens.iloc[at:]], ignore_index=True)


def remove_token(tokens: pd.DataFrame, i: int) -> pd.DataFrame:
    mine = tokens[tokens["response"] == i]
    if not len(mine):
        return tokens
    return tokens.drop(index=mine.index.max()).reset_index(drop=True)
