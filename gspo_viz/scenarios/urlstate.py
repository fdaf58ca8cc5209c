"""Scenario and controls in a URL: compact, exact (full float precision) and checked on the way back in."""
from __future__ import annotations

import base64
import binascii
import json
import zlib

from .files import ScenarioError

MAX_LINK_CHARS = 60_000


def encode_scenario(data: dict) -> str:
    """JSON → zlib → base64url (no padding). Floats keep full precision, so a link reproduces every number."""
    raw = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode("ascii").rstrip("=")


def decode_scenario(text: str) -> dict:
    """The inverse of encode_scenario; a broken or hand-edited link raises ScenarioError('link', ...)."""
    if len(text) > MAX_LINK_CHARS:
        raise ScenarioError("link", f"the scenario in the link is {len(text)} characters; the limit is {MAX_LINK_CHARS}")
    try:
        raw = zlib.decompress(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), bufsize=2_000_000)
        data = json.loads(raw.decode("utf-8"))
    except (binascii.Error, zlib.error, UnicodeDecodeError, json.JSONDecodeError, ValueError):
        raise ScenarioError("link", "the scenario in the link is damaged (was it cut off or edited?)") from None
    if not isinstance(data, dict):
        raise ScenarioError("link", "the scenario in the link is not a scenario object")
    return data
