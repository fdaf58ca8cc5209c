"""Scenario files (JSON): parse and validate with messages that name the field, then run one objective on them.

Parsing needs no torch; the torch-based core is imported when a scenario is run, so that the app's landing page
and a file check start fast.
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from ..core.settings import Settings, SettingsError


MAX_FILE_BYTES = 2_000_000
MAX_RESPONSES = 256
MAX_TOKENS_PER_RESPONSE = 4096
MAX_TOTAL_TOKENS = 65_536
MAX_ABS_LOG_RATIO = 700.0   # exp(±709) is the float64 limit
MAX_ABS_VALUE = 1e15        # rewards and advantages: beyond this the group's statistics and the loss lose precision
MAX_DEPTH = 16              # JSON nesting; a scenario nests 4 levels (file → responses → a response → its lists)
QUOTE_CHARS = 40            # a value quoted in a message is cut to about this many characters
MAX_INT_DIGITS = 330        # an integer literal longer than this is beyond float64 (±1.8e308) anyway

TOP_KEYS = ("title", "notes", "responses", "settings")
RESPONSE_KEYS = ("tokens", "p_old", "p_new", "logp_old", "logp_new", "p_ref", "logp_ref", "p_rollout", "logp_rollout",
                 "reward", "advantage", "truncated")

_SURROGATE = re.compile("[\ud800-\udfff]")
_FLOAT_MAX_INT = int(sys.float_info.max)
_E15 = "1e15"  # MAX_ABS_VALUE as messages write it


class ScenarioError(ValueError):
    """Bad input. `where` is a path like responses[1].p_new[3]; str() reads 'where: what is wrong'."""

    def __init__(self, where: str, message: str):
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where
        self.message = message


class LongInteger:
    """An integer literal too long to be a number here (Python's int() refuses more than 4300 digits, float64
    ends near 1.8e308). JSON parsing keeps it as text so that validation can name its field."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return _cut_digits(self.text)


def _parse_int(text: str) -> Any:
    return int(text) if len(text) <= MAX_INT_DIGITS else LongInteger(text)


def _cut_digits(text: str) -> str:
    digits = len(text.lstrip("-"))
    if len(text) <= QUOTE_CHARS:
        return text
    return f"{text[:QUOTE_CHARS // 2]}…{text[-8:]} ({digits} digits)"


def cut(text: str, limit: int = QUOTE_CHARS) -> str:
    """`text` at most about `limit` characters, cut in the middle with "…"."""
    return text if len(text) <= limit else f"{text[:limit - 12]}…{text[-10:]}"


def _escape_surrogates(text: str) -> str:
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def brief(v: Any) -> str:
    """A person's value as a message quotes it: JSON-like and short (long text and numbers cut with "…"), so that
    a 400-digit number or a 1 MB string does not flood the message, and printable (lone surrogates escaped)."""
    if v is None or isinstance(v, bool):
        return json.dumps(v)
    if isinstance(v, LongInteger):
        return repr(v)
    if isinstance(v, int):
        if v.bit_length() > 14_000:  # str() of an int refuses more than 4300 digits
            return f"an integer of about {int(v.bit_length() * 0.30103)} digits"
        return _cut_digits(str(v))
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        shown = v if len(v) <= QUOTE_CHARS else v[:QUOTE_CHARS - 1] + "…"
        return _escape_surrogates(json.dumps(shown, ensure_ascii=False))
    if isinstance(v, (list, dict)):
        if len(v) <= 8:  # a short one is shown as it is
            try:
                shown = json.dumps(v, ensure_ascii=False, default=brief)
                if len(shown) <= QUOTE_CHARS:
                    return _escape_surrogates(shown)
            except (ValueError, TypeError, RecursionError):
                pass
        n = len(v)
        return f"a list of {n} item{'s' * (n != 1)}" if isinstance(v, list) else f"an object with {n} field" + \
            "s" * (n != 1)
    return cut(_escape_surrogates(type(v).__name__))


@dataclass
class Response:
    tokens: list[str]
    logp_old: list[float]
    logp_new: list[float]
    logp_ref: Optional[list[float]] = None
    reward: Optional[float] = None
    advantage: Optional[float | list[float]] = None
    truncated: bool = False
    logp_rollout: Optional[list[float]] = None   # the inference engine's log-probs under the old weights


@dataclass
class Scenario:
    responses: list[Response]
    settings: Settings
    title: str = ""
    notes: str = ""


def _key(path: str, k: str) -> str:
    k = cut(_escape_surrogates(k))
    return f"{path}.{k}" if path else k


def check_tree(data: Any, where: str = "") -> None:
    """What no field may hold, checked once over the whole document before anything reads it: nesting deeper than
    MAX_DEPTH, text that is not valid Unicode (lone surrogates: they cannot be written as UTF-8, so the download,
    the link and the terminal would fail on them), and integers beyond float64. Raises ScenarioError at the field."""
    problem = _scalar_problem(data)
    if problem:
        raise ScenarioError(where, problem)
    stack = [(data, where, 1)] if isinstance(data, (dict, list)) else []
    while stack:
        node, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ScenarioError(cut(path, 60), f"is nested more than {MAX_DEPTH} levels deep (a scenario nests 4: "
                                               "the file, responses, a response, its lists)")
        pairs = node.items() if isinstance(node, dict) else enumerate(node)
        for k, v in pairs:
            if isinstance(k, str):
                problem = _scalar_problem(k)
                if problem:
                    raise ScenarioError(path, f"the field name {brief(k)} {problem}")
            if type(v) is float:
                continue
            if isinstance(v, (dict, list)):
                stack.append((v, _key(path, k) if isinstance(k, str) else f"{path}[{k}]", depth + 1))
            else:
                problem = _scalar_problem(v)
                if problem:
                    raise ScenarioError(_key(path, k) if isinstance(k, str) else f"{path}[{k}]", problem)


def _scalar_problem(v: Any) -> Optional[str]:
    if isinstance(v, str):
        m = _SURROGATE.search(v)
        if m:
            return (f"contains an unpaired surrogate ({_escape_surrogates(m.group())}); text must be valid Unicode "
                    "(it is saved as UTF-8)")
    elif isinstance(v, LongInteger) or (isinstance(v, int) and not isinstance(v, bool) and abs(v) > _FLOAT_MAX_INT):
        return f"the number {brief(v)} is too large (float64 ends near ±1.8e308)"
    return None


# --------------------------------------------------------------------------- parsing

def _finite(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ScenarioError(where, f"must be a number, got {brief(v)}")
    try:
        x = float(v)
    except OverflowError:
        raise ScenarioError(where, f"the number {brief(v)} is too large (float64 ends near ±1.8e308)") from None
    if not math.isfinite(x):
        raise ScenarioError(where, f"must be a finite number, got {x}")
    return x


def _bounded(v: Any, where: str) -> float:
    """A reward or an advantage: finite and within ±MAX_ABS_VALUE."""
    x = _finite(v, where)
    if abs(x) > MAX_ABS_VALUE:
        raise ScenarioError(where, f"{x:g} is beyond ±{_E15}, the limit for rewards and advantages "
                                   "(larger ones overflow the group's std and the loss in float64; scale them down)")
    return x


def _number_list(v: Any, where: str, number=_finite) -> list[float]:
    if not isinstance(v, list):
        raise ScenarioError(where, f"must be a list of numbers, got {brief(v)}")
    return [number(x, f"{where}[{k}]") for k, x in enumerate(v)]


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


def _log_ratio_bound(a: list[float], b: list[float], where: str, what: str) -> None:
    for k, (x, y) in enumerate(zip(a, b)):
        if abs(x - y) > MAX_ABS_LOG_RATIO:
            raise ScenarioError(f"{where} token {k}", f"{what} {x - y:.6g} is beyond ±{MAX_ABS_LOG_RATIO:g}; "
                                                      "its exponential would overflow")


def _response(r: Any, i: int) -> Response:
    where = f"responses[{i}]"
    if not isinstance(r, dict):
        raise ScenarioError(where, f"must be an object, got {brief(r)}")
    unknown = sorted(set(r) - set(RESPONSE_KEYS))
    if unknown:
        raise ScenarioError(_key(where, unknown[0]), f"unknown field; valid fields: {', '.join(RESPONSE_KEYS)}")
    old = _logps(r, "old", where, True)
    new = _logps(r, "new", where, True)
    ref = _logps(r, "ref", where, False)
    rollout = _logps(r, "rollout", where, False)
    n = len(old)
    if n == 0:
        raise ScenarioError(where, "is empty: a response needs at least one token")
    if n > MAX_TOKENS_PER_RESPONSE:
        raise ScenarioError(where, f"has {n} tokens; the limit is {MAX_TOKENS_PER_RESPONSE}")
    lists = {"old": old, "new": new} | ({"ref": ref} if ref is not None else {}) | \
        ({"rollout": rollout} if rollout is not None else {})
    tokens = r.get("tokens")
    if tokens is not None:
        if not isinstance(tokens, list):
            raise ScenarioError(f"{where}.tokens", f"must be a list of strings, got {brief(tokens)}")
        for k, tok in enumerate(tokens):
            if not isinstance(tok, str):
                raise ScenarioError(f"{where}.tokens[{k}]", f"must be a string, got {brief(tok)}")
        lists["tokens"] = tokens
    lengths = {k: len(v) for k, v in lists.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{k}: {v}" for k, v in lengths.items())
        raise ScenarioError(where, f"lists have unequal lengths ({shown})")
    _log_ratio_bound(new, old, where, "log-ratio")
    if ref is not None:
        _log_ratio_bound(new, ref, where, "log-ratio to the reference, log π_new − log π_ref,")
    if rollout is not None:
        _log_ratio_bound(old, rollout, where, "rollout log-ratio, log π_old − log π_rollout,")
    reward = None if r.get("reward") is None else _bounded(r["reward"], f"{where}.reward")
    adv = r.get("advantage")
    if adv is not None:
        adv = _number_list(adv, f"{where}.advantage", _bounded) if isinstance(adv, list) else \
            _bounded(adv, f"{where}.advantage")
        if isinstance(adv, list) and len(adv) != n:
            raise ScenarioError(f"{where}.advantage", f"has {len(adv)} per-token values for {n} tokens")
    truncated = r.get("truncated", False)
    if not isinstance(truncated, bool):
        raise ScenarioError(f"{where}.truncated", f"must be true or false, got {brief(truncated)}")
    if reward is None and adv is None:
        raise ScenarioError(where, "needs a reward (or an advantage given directly)")
    return Response(tokens or [f"t{k + 1}" for k in range(n)], old, new, ref, reward, adv, truncated, rollout)


class _Shown:
    """Stands in for a setting's value that no setting accepts (long text, a list, an object), so that the
    settings' own message quotes it briefly: its repr is brief(value)."""

    def __init__(self, value: Any):
        self.shown = brief(value)

    def __repr__(self) -> str:
        return self.shown

    __str__ = __repr__


_MAX_SETTING_INT = 2 ** 53


def _settings_for_messages(d: dict, where: str = "settings") -> dict:
    """The settings with every value their messages could not quote briefly replaced by a _Shown (never a valid
    value), and integers no setting can use refused here (settings' messages print the number in full)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) > _MAX_SETTING_INT:
            raise ScenarioError(_key(where, k), f"{brief(v)} is too large for a setting")
        if k == "overlong" and where == "settings" and isinstance(v, dict):
            unknown = sorted(set(v) - {"filter", "l_max", "l_cache"})
            if unknown:
                raise ScenarioError("settings.overlong", f"unknown key {brief(unknown[0])}; valid: filter, l_max, "
                                                         "l_cache")
            out[k] = _settings_for_messages(v, "settings.overlong")
        elif isinstance(v, (list, dict)) or (isinstance(v, str) and len(v) > QUOTE_CHARS):
            out[k] = _Shown(v)
        else:
            out[k] = v
    return out


def parse_scenario(data: Any, objective: Optional[str] = None, overrides: Optional[dict] = None) -> Scenario:
    """A Scenario from parsed JSON; `objective` overrides the file's settings.objective, and `overrides` (e.g. the
    command line's --set loss_agg_mode=token-mean) the file's settings of the same names."""
    if not isinstance(data, dict):
        raise ScenarioError("", f"the file must hold a JSON object with 'responses', got {brief(data)}")
    check_tree(data)
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise ScenarioError(_key("", unknown[0]), f"unknown field; valid fields: {', '.join(TOP_KEYS)}")
    for k in ("title", "notes"):
        if not isinstance(data.get(k, ""), str):
            raise ScenarioError(k, f"must be a string, got {brief(data[k])}")
    responses = data.get("responses")
    if not isinstance(responses, list) or not responses:
        raise ScenarioError("responses", "must be a non-empty list of responses")
    if len(responses) > MAX_RESPONSES:
        raise ScenarioError("responses", f"has {len(responses)} responses; the limit is {MAX_RESPONSES}")
    parsed = [_response(r, i) for i, r in enumerate(responses)]
    total = sum(len(r.logp_old) for r in parsed)
    if total > MAX_TOTAL_TOKENS:
        raise ScenarioError("responses", f"hold {total} tokens in all; the limit is {MAX_TOTAL_TOKENS}")
    settings = data.get("settings", {}) or {}
    if overrides and isinstance(settings, dict):
        settings = {**settings, **overrides}
    try:
        settings = Settings.from_dict(_settings_for_messages(settings) if isinstance(settings, dict) else settings,
                                      objective)
    except SettingsError as e:
        field = cut(_escape_surrogates(e.field))
        where = "objective" if e.field == "objective" and objective is not None else f"settings.{field}"
        raise ScenarioError(where, str(e).split(": ", 1)[1]) from None
    except TypeError as e:  # e.g. a wrong type inside 'overlong'
        raise ScenarioError("settings", cut(str(e), 200)) from None
    return Scenario(parsed, settings, data.get("title", ""), data.get("notes", ""))


def load_scenario(path: str | Path, objective: Optional[str] = None, overrides: Optional[dict] = None) -> Scenario:
    """Read and validate a scenario file. Errors are ScenarioError, never a traceback's worth of detail."""
    return parse_scenario(loads_bytes(read_limited(path, MAX_FILE_BYTES, file_too_big)), objective, overrides)


def read_limited(path: str | Path, limit: int, too_big: Callable[[int], str]) -> bytes:
    """A file's bytes, its size checked before it is read; ScenarioError with the OS's reason when it cannot be read,
    or too_big(size) when it is over `limit` bytes."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > limit:
            raise ScenarioError("", too_big(size))
        return path.read_bytes()
    except OSError as e:
        raise ScenarioError("", f"cannot read the file ({e.strerror})") from None


def file_too_big(size: int) -> str:
    return f"the file is {size} bytes; the limit is {MAX_FILE_BYTES} ({MAX_FILE_BYTES / 1e6:g} MB)"


def loads_bytes(raw: bytes) -> Any:
    """A scenario file's bytes as JSON (not yet validated): at most MAX_FILE_BYTES, UTF-8 (a BOM is allowed), JSON.
    The one rule for files, uploads and the command line."""
    if len(raw) > MAX_FILE_BYTES:
        raise ScenarioError("", file_too_big(len(raw)))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise ScenarioError(f"line {line} column {column}", f"cannot read the file as UTF-8 text (byte "
                                                            f"0x{raw[e.start]:02x}: {e.reason}); save it as UTF-8")
    return loads(text)


_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def loads(text: str) -> Any:
    """JSON text → data, with errors at their line and column. Integers too long for a number are kept as
    LongInteger (validation names their field); nesting too deep for the parser is refused where it starts."""
    try:
        return json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as e:
        raise ScenarioError(f"line {e.lineno} column {e.colno}", f"invalid JSON: {e.msg}") from None
    except RecursionError:
        pass
    depth = 0
    for m in _JSON_TOKENS.finditer(text):
        c = m.group()  # a bracket, or a whole string (whose brackets do not count)
        depth += 1 if c in ("[", "{") else -1 if c in ("]", "}") else 0
        if depth > MAX_DEPTH:
            line = text.count("\n", 0, m.start()) + 1
            column = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
            break
    else:
        line = column = 1
    raise ScenarioError(f"line {line} column {column}", f"the JSON nests more than {MAX_DEPTH} levels deep (a "
                                                        "scenario nests 4)")


def scenario_to_dict(s: Scenario) -> dict:
    """The JSON form (log-probs written as logp_*), the inverse of parse_scenario."""
    out = []
    for r in s.responses:
        d: dict[str, Any] = {"tokens": r.tokens, "logp_old": r.logp_old, "logp_new": r.logp_new}
        if r.logp_ref is not None:
            d["logp_ref"] = r.logp_ref
        if r.logp_rollout is not None:
            d["logp_rollout"] = r.logp_rollout
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
