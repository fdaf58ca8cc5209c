"""Scenario files (JSON): parse and validate with messages that name the field, then run one objective on them.

Parsing needs no torch; the torch-based core is imported when a scenario is run, so that the app's landing page
and a file check start fast.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..core.settings import Settings, SettingsError


MAX_FILE_BYTES = 2_000_000
MAX_RESPONSES = 256
MAX_TOKENS_PER_RESPONSE = 4096
MAX_TOTAL_TOKENS = 65_536
MAX_ABS_LOG_RATIO = 700.0   # exp(±709) is the float64 limit

TOP_KEYS = ("title", "notes", "responses", "settings")
RESPONSE_KEYS = ("tokens", "p_old", "p_new", "logp_old", "logp_new", "p_ref", "logp_ref", "reward", "advantage",
                 "truncated")


class ScenarioError(ValueError):
    """Bad input. `where` is a path like responses[1].p_new[3]; str() reads 'where: what is wrong'."""

    def __init__(self, where: str, message: str):
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where
        self.message = message


@dataclass
class Response:
    tokens: list[str]
    logp_old: list[float]
    logp_new: list[float]
    logp_ref: Optional[list[float]] = None
    reward: Optional[float] = None
    advantage: Optional[float | list[float]] = None
    truncated: bool = False


@dataclass
class Scenario:
    responses: list[Response]
    settings: Settings
    title: str = ""
    notes: str = ""


# --------------------------------------------------------------------------- parsing

def _finite(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ScenarioError(where, f"must be a number, got {json.dumps(v) if _jsonable(v) else repr(v)}")
    if not math.isfinite(v):
        raise ScenarioError(where, f"must be a finite number, got {v}")
    return float(v)


def _jsonable(v: Any) -> bool:
    try:
        json.dumps(v)
        return True
    except (TypeError, ValueError):
        return False


def _number_list(v: Any, where: str) -> list[float]:
    if not isinstance(v, list):
        raise ScenarioError(where, f"must be a list of numbers, got {type(v).__name__}")
    return [_finite(x, f"{where}[{k}]") for k, x in enumerate(v)]


def _logps(r: dict, which: str, where: str, required: bool) -> Optional[list[float]]:
    """log-probs of one policy from either `p_<which>` (in (0, 1]) or `logp_<which>` (<= 0)."""
    pk, lk = f"p_{which}", f"logp_{which}"
    if pk in r and lk in r:
        raise ScenarioError(f"{where}", f"give {pk} or {lk}, not both")
    if pk in r:
        ps = _number_list(r[pk], f"{where}.{pk}")
        for k, p in enumerate(ps):
            if not 0 < p <= 1:
                raise ScenarioError(f"{where}.{pk}[{k}]", f"probability {p} is outside (0, 1]")
        return [math.log(p) for p in ps]
    if lk in r:
        ls = _number_list(r[lk], f"{where}.{lk}")
        for k, lp in enumerate(ls):
            if lp > 0:
                raise ScenarioError(f"{where}.{lk}[{k}]", f"log-probability {lp} is above 0 (probability above 1)")
        return ls
    if required:
        raise ScenarioError(where, f"needs {pk} (probabilities) or {lk} (log-probabilities)")
    return None


def _response(r: Any, i: int) -> Response:
    where = f"responses[{i}]"
    if not isinstance(r, dict):
        raise ScenarioError(where, f"must be an object, got {type(r).__name__}")
    unknown = sorted(set(r) - set(RESPONSE_KEYS))
    if unknown:
        raise ScenarioError(f"{where}.{unknown[0]}", f"unknown field; valid fields: {', '.join(RESPONSE_KEYS)}")
    old = _logps(r, "old", where, True)
    new = _logps(r, "new", where, True)
    ref = _logps(r, "ref", where, False)
    n = len(old)
    if n == 0:
        raise ScenarioError(where, "is empty: a response needs at least one token")
    if n > MAX_TOKENS_PER_RESPONSE:
        raise ScenarioError(where, f"has {n} tokens; the limit is {MAX_TOKENS_PER_RESPONSE}")
    lists = {"old": old, "new": new} | ({"ref": ref} if ref is not None else {})
    tokens = r.get("tokens")
    if tokens is not None:
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise ScenarioError(f"{where}.tokens", "must be a list of strings")
        lists["tokens"] = tokens
    lengths = {k: len(v) for k, v in lists.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{k}: {v}" for k, v in lengths.items())
        raise ScenarioError(where, f"lists have unequal lengths ({shown})")
    for k, (a, b) in enumerate(zip(new, old)):
        if abs(a - b) > MAX_ABS_LOG_RATIO:
            raise ScenarioError(f"{where} token {k}", f"log-ratio {a - b:.1f} is beyond ±{MAX_ABS_LOG_RATIO:g}; "
                                                      "its exponential would overflow")
    reward = None if r.get("reward") is None else _finite(r["reward"], f"{where}.reward")
    adv = r.get("advantage")
    if adv is not None:
        adv = _number_list(adv, f"{where}.advantage") if isinstance(adv, list) else _finite(adv, f"{where}.advantage")
        if isinstance(adv, list) and len(adv) != n:
            raise ScenarioError(f"{where}.advantage", f"has {len(adv)} per-token values for {n} tokens")
    truncated = r.get("truncated", False)
    if not isinstance(truncated, bool):
        raise ScenarioError(f"{where}.truncated", f"must be true or false, got {truncated!r}")
    if reward is None and adv is None:
        raise ScenarioError(where, "needs a reward (or an advantage given directly)")
    return Response(tokens or [f"t{k + 1}" for k in range(n)], old, new, ref, reward, adv, truncated)


def parse_scenario(data: Any, objective: Optional[str] = None) -> Scenario:
    """A Scenario from parsed JSON; `objective` overrides the file's settings.objective."""
    if not isinstance(data, dict):
        raise ScenarioError("", f"the file must hold a JSON object with 'responses', got {type(data).__name__}")
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise ScenarioError(unknown[0], f"unknown field; valid fields: {', '.join(TOP_KEYS)}")
    for k in ("title", "notes"):
        if not isinstance(data.get(k, ""), str):
            raise ScenarioError(k, "must be a string")
    responses = data.get("responses")
    if not isinstance(responses, list) or not responses:
        raise ScenarioError("responses", "must be a non-empty list of responses")
    if len(responses) > MAX_RESPONSES:
        raise ScenarioError("responses", f"has {len(responses)} responses; the limit is {MAX_RESPONSES}")
    parsed = [_response(r, i) for i, r in enumerate(responses)]
    total = sum(len(r.logp_old) for r in parsed)
    if total > MAX_TOTAL_TOKENS:
        raise ScenarioError("responses", f"hold {total} tokens in all; the limit is {MAX_TOTAL_TOKENS}")
    try:
        settings = Settings.from_dict(data.get("settings", {}) or {}, objective)
    except SettingsError as e:
        where = "objective" if e.field == "objective" and objective is not None else f"settings.{e.field}"
        raise ScenarioError(where, str(e).split(": ", 1)[1]) from None
    except TypeError as e:  # e.g. a wrong type inside 'overlong'
        raise ScenarioError("settings", str(e)) from None
    return Scenario(parsed, settings, data.get("title", ""), data.get("notes", ""))


def load_scenario(path: str | Path, objective: Optional[str] = None) -> Scenario:
    """Read and validate a scenario file. Errors are ScenarioError, never a traceback's worth of detail."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise ScenarioError("", f"cannot read the file ({e.strerror})") from None
    if size > MAX_FILE_BYTES:
        raise ScenarioError("", f"the file is {size} bytes; the limit is {MAX_FILE_BYTES}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ScenarioError("", f"cannot read the file as UTF-8 text ({e})") from None
    return parse_scenario(loads(text), objective)


def loads(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ScenarioError(f"line {e.lineno} column {e.colno}", f"invalid JSON: {e.msg}") from None


def scenario_to_dict(s: Scenario) -> dict:
    """The JSON form (log-probs written as logp_*), the inverse of parse_scenario."""
    out = []
    for r in s.responses:
        d: dict[str, Any] = {"tokens": r.tokens, "logp_old": r.logp_old, "logp_new": r.logp_new}
        if r.logp_ref is not None:
            d["logp_ref"] = r.logp_ref
        for k in ("reward", "advantage"):
            if getattr(r, k) is not None:
                d[k] = getattr(r, k)
        if r.truncated:
            d["truncated"] = True
        out.append(d)
    settings = {f.name: getattr(s.settings, f.name) for f in dataclasses.fields(s.settings)
                if getattr(s.settings, f.name) is not None}
    if "overlong" in settings:
        settings["overlong"] = dataclasses.asdict(settings["overlong"])
    return {"title": s.title, "notes": s.notes, "responses": out, "settings": settings}
