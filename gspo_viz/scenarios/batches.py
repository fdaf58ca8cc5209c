"""A trainer's own batch, read as groups: JSONL (one response per line) or Parquet with the same columns.

Each response (line or row) holds `group` (the prompt's id: a string or a whole number), `logp_old` and `logp_new`
(or `p_old`/`p_new`), optional `tokens`, `logp_ref`, `reward` or `advantage`, `truncated` — the fields of a scenario's
response (files.py) plus `group`. The responses of a group, in file order, are one scenario; its settings come from
the command line or the app. Every bad line is reported with its number (from 1), at most MAX_REPORTED of them;
nothing in the file is executed or unpickled (Parquet is read as columns of numbers and strings by pyarrow).
Limits: MAX_BATCH_BYTES per file; per group the limits of a scenario file (responses, tokens).
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from .files import (MAX_RESPONSES, MAX_TOTAL_TOKENS, RESPONSE_KEYS, ScenarioError, _response, brief, check_tree, cut,
                    loads, read_limited)

MAX_BATCH_BYTES = 32_000_000    # a batch holds many groups; each group keeps a scenario file's limits
MAX_GROUPS = 10_000
MAX_REPORTED = 20               # bad lines listed in one message
BATCH_SUFFIXES = (".jsonl", ".parquet")


@dataclass
class Batch:
    groups: dict[str, list[dict]]     # group id (as text) → its responses, in file order, as scenario responses
    lines: dict[str, list[int]]       # group id → the line (row) number of each response, from 1
    source: str                       # "JSONL" or "Parquet"

    def scenario(self, group: str, title: str = "") -> dict:
        """The group as a scenario's JSON (no settings: the caller's apply)."""
        if group not in self.groups:
            raise ScenarioError("group", f"no group {cut(group)!r} in this batch; it has {self.describe()}")
        return {"title": title or f"group {group}", "responses": self.groups[group]}

    def describe(self, limit: int = 8) -> str:
        ids = list(self.groups)
        shown = ", ".join(repr(g) for g in ids[:limit]) + (f", … ({len(ids)} in all)" if len(ids) > limit else "")
        return f"{len(ids)} group{'s' if len(ids) != 1 else ''}: {shown}"


def read_batch(raw: bytes, name: str) -> Batch:
    """A batch from a file's bytes; `name` decides the format by its suffix (.jsonl or .parquet)."""
    if len(raw) > MAX_BATCH_BYTES:
        raise ScenarioError("", _too_big(len(raw)))
    suffix = Path(name).suffix.lower()
    if suffix == ".parquet":
        return _collect(_parquet_rows(raw), "Parquet", "row")
    if suffix == ".jsonl":
        return _collect(_jsonl_rows(raw), "JSONL", "line")
    raise ScenarioError("", f"a batch is a .jsonl or .parquet file, not {cut(suffix or name)!r}")


def _too_big(size: int) -> str:
    return f"the file is {size:,} bytes; a batch may be at most {MAX_BATCH_BYTES:,}"


def load_batch(path: str | Path) -> Batch:
    return read_batch(read_limited(path, MAX_BATCH_BYTES, _too_big), Path(path).name)


def is_batch(name: str) -> bool:
    return Path(name).suffix.lower() in BATCH_SUFFIXES


def _jsonl_rows(raw: bytes):
    """(line number, the line's object or the ScenarioError of reading it), blank lines skipped."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise ScenarioError(f"line {line}", f"cannot read the file as UTF-8 text ({e.reason})") from None
    for k, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield k, loads(line)
        except ScenarioError as e:                  # its place within the line: "line 1 column 9" → "column 9"
            column = e.where.rpartition("column")[2].strip()
            yield k, ScenarioError(f"column {column}" if column else "", e.message)


def _parquet_rows(raw: bytes):
    try:
        import pyarrow.parquet as pq
        table = pq.read_table(io.BytesIO(raw))
    except Exception as e:  # noqa: BLE001 (pyarrow raises several kinds for a file that is not Parquet)
        raise ScenarioError("", f"cannot read the file as Parquet ({cut(str(e), 120)})") from None
    unknown = sorted(set(table.column_names) - set(RESPONSE_KEYS) - {"group"})
    if unknown:
        raise ScenarioError(f"column {cut(unknown[0])!r}", f"unknown column; valid: group, {', '.join(RESPONSE_KEYS)}")
    for k, row in enumerate(table.to_pylist(), 1):
        yield k, {c: v for c, v in row.items() if v is not None}


def _collect(rows, source: str, unit: str) -> Batch:
    groups: dict[str, list[dict]] = {}
    lines: dict[str, list[int]] = {}
    bad: list[str] = []
    count = 0
    for k, row in rows:
        where = f"{unit} {k}"
        try:
            if isinstance(row, ScenarioError):
                raise row
            group, response = _one(row)
        except ScenarioError as e:
            bad.append(f"{where}: {e}")
            if len(bad) >= MAX_REPORTED:
                bad.append(f"(stopped after {MAX_REPORTED} bad {unit}s)")
                break
            continue
        count += 1
        if group not in groups and len(groups) >= MAX_GROUPS:
            raise ScenarioError(where, f"more than {MAX_GROUPS:,} groups")
        groups.setdefault(group, []).append(response)
        lines.setdefault(group, []).append(k)
    if bad:
        raise ScenarioError("", "\n".join(bad))
    if not groups:
        raise ScenarioError("", f"the file holds no responses (one JSON object per {unit}, each with a group)")
    for group, rs in groups.items():
        first = lines[group][0]
        if len(rs) > MAX_RESPONSES:
            raise ScenarioError(f"group {cut(group)!r}", f"has {len(rs)} responses (from {unit} {first}); the limit "
                                                         f"is {MAX_RESPONSES}")
        total = sum(len(r.get("logp_old", r.get("p_old", []))) for r in rs)
        if total > MAX_TOTAL_TOKENS:
            raise ScenarioError(f"group {cut(group)!r}", f"holds {total} tokens in all; the limit is "
                                                         f"{MAX_TOTAL_TOKENS}")
    return Batch(groups, lines, source)


def _one(row: Any) -> tuple[str, dict]:
    """(group id as text, the response as a scenario holds it); ScenarioError naming the field."""
    if not isinstance(row, dict):
        raise ScenarioError("", f"must be a JSON object with a group, got {brief(row)}")
    check_tree(row)
    if "group" not in row:
        raise ScenarioError("group", "missing: each response names its group (the prompt's id)")
    group = row["group"]
    if isinstance(group, bool) or not isinstance(group, (str, int)):
        raise ScenarioError("group", f"must be a string or a whole number, got {brief(group)}")
    response = {k: v for k, v in row.items() if k != "group"}
    try:
        _response(response, 0)
    except ScenarioError as e:
        raise ScenarioError(e.where.removeprefix("responses[0]").lstrip(".") or "", e.message) from None
    return str(group), response


def to_jsonl(groups: dict[str, list[dict]]) -> str:
    """The batch format written out (the inverse of read_batch for JSONL), e.g. for a test or an example."""
    return "\n".join(json.dumps({"group": g, **r}, ensure_ascii=False) for g, rs in groups.items() for r in rs) + "\n"


def pick_group(batch: Batch, group: Optional[str]) -> str:
    """The group to show: `group` when given, the only one when there is one, else a message listing them."""
    if group is not None:
        if group not in batch.groups:
            raise ScenarioError("--group", f"no group {cut(group)!r}; this batch has {batch.describe()}")
        return group
    if len(batch.groups) == 1:
        return next(iter(batch.groups))
    raise ScenarioError("--group", f"choose a group: this batch has {batch.describe()}")
