"""Scenario and controls in a URL: compact, exact (full float precision) and checked on the way back in.

A link is input from anyone: it is decoded with the limits of a scenario file (MAX_FILE_BYTES once inflated, the
same JSON rules), so a crafted link gets a message, never a traceback or a stall.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
import zlib
from typing import Any

from .files import MAX_FILE_BYTES, ScenarioError, brief, check_tree, loads

MAX_LINK_CHARS = 60_000
MAX_CONTROLS = 200  # page controls in a link (the app has about 50)


def encode_scenario(data: dict) -> str:
    """JSON → zlib → base64url (no padding). Floats keep full precision, so a link reproduces every number."""
    raw = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode("ascii").rstrip("=")


def _inflate(packed: bytes) -> bytes:
    """zlib data inflated to at most MAX_FILE_BYTES: a link that inflates further (a zlib bomb) is refused after
    MAX_FILE_BYTES + 1 bytes of work, not after inflating all of it."""
    d = zlib.decompressobj()
    raw = d.decompress(packed, MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES or d.unconsumed_tail:
        raise ScenarioError("link", f"the scenario in the link inflates to more than {MAX_FILE_BYTES} bytes; the "
                                    f"limit is {MAX_FILE_BYTES} ({MAX_FILE_BYTES / 1e6:g} MB), as for a file")
    if not d.eof:
        raise zlib.error("truncated")
    return raw


def decode_scenario(text: str) -> dict:
    """The inverse of encode_scenario; a broken or hand-edited link raises ScenarioError('link', ...)."""
    if len(text) > MAX_LINK_CHARS:
        raise ScenarioError("link", f"the scenario in the link is {len(text)} characters; the limit is {MAX_LINK_CHARS}")
    damaged = ScenarioError("link", "the scenario in the link is damaged (was it cut off or edited?)")
    try:
        raw = _inflate(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        decoded = raw.decode("utf-8")
    except ScenarioError:
        raise
    except (binascii.Error, zlib.error, ValueError):  # ValueError: also non-ASCII text and bad UTF-8
        raise damaged from None
    try:
        data = loads(decoded)
    except ScenarioError as e:
        if "invalid JSON" in e.message:
            raise damaged from None
        raise ScenarioError("link", f"the scenario in the link: {e}") from None
    if not isinstance(data, dict):
        raise ScenarioError("link", "the scenario in the link is not a scenario object")
    return data


def _control_value_ok(v: Any) -> bool:
    if v is None or isinstance(v, (bool, str)):
        return True
    if isinstance(v, int):
        return abs(v) <= 2 ** 53
    if isinstance(v, float):
        return math.isfinite(v)
    return False


def decode_controls(text: str) -> dict:
    """The page controls of a link (`v`): a JSON object whose values are numbers, text, true/false or flat lists
    of them, as the pages' widgets hold. Anything else raises ScenarioError('link', ...) saying what is wrong."""
    if len(text) > MAX_LINK_CHARS:
        raise ScenarioError("link", f"the page settings are {len(text)} characters; the limit is {MAX_LINK_CHARS}")
    try:
        ctl = loads(text)
    except ScenarioError as e:
        raise ScenarioError("link", f"the page settings: {e}") from None
    return check_controls(ctl, "link", "the page settings")


def check_controls(ctl: Any, where: str, what: str = "the controls") -> dict:
    """`ctl` if it is what a page's controls hold (an object of numbers, text, true/false or flat lists of them),
    else ScenarioError(where, ...) saying what is wrong (a link's `v`, a talk scene's `controls`)."""
    try:
        check_tree(ctl)  # nesting, lone surrogates, huge integers
    except ScenarioError as e:
        raise ScenarioError(where, f"{what}: {e}") from None
    if not isinstance(ctl, dict):
        raise ScenarioError(where, f"{what} must be a JSON object, got {brief(ctl)}")
    if len(ctl) > MAX_CONTROLS:
        raise ScenarioError(where, f"{what} hold {len(ctl)} controls; the limit is {MAX_CONTROLS}")
    for key, value in ctl.items():
        values = value if isinstance(value, list) else [value]
        if not all(_control_value_ok(x) for x in values):
            raise ScenarioError(where, f"{what}: {brief(key)} has a value no control takes: {brief(value)}")
    return ctl
