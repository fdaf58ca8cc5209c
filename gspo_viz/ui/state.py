"""Streamlit glue: the shared scenario in session state, controls that survive page switches, and the link (URL).

The URL holds `s` (the scenario, see urlstate) and `v` (the page controls as JSON), so a copied link reopens the
same view. A broken link falls back to the default scenario with a visible message.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import streamlit as st

from ..scenarios.files import ScenarioError, brief, parse_scenario
from ..scenarios.talks import example_path
from ..scenarios.urlstate import decode_controls, decode_scenario, encode_scenario
from ..views.text import plain_text
from .talk import TALK, boot_talk, current_talk, in_talk, talk_params

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEFAULT_EXAMPLE = "default_group.json"
# The app's pages by key (app.py routes to them; a talk's scenes name them by key)
PAGE_FILES = {
    "token_lab": "pages/1_token_lab.py",
    "clip_explorer": "pages/2_clip_explorer.py",
    "length": "pages/3_length_aggregation.py",
    "formula": "pages/4_formula_checker.py",
    "train": "pages/5_train.py",
    "lessons": "pages/6_lessons.py",
}


def example_files() -> list[Path]:
    default = EXAMPLES / DEFAULT_EXAMPLE
    return [default] + [p for p in sorted(EXAMPLES.glob("*.json")) if p != default]


@st.cache_data(show_spinner=False)
def read_example(path: str) -> dict:
    """The JSON of a preset (cached: presets are files shipped with the app, the same for every viewer)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def default_scenario() -> dict:
    return read_example(str(EXAMPLES / DEFAULT_EXAMPLE))


_SHIPPED: dict[str, dict] = {}


def shipped(path: Path) -> dict:
    """A shipped example's JSON, to read only (never to change or hand on): loaded once per process. read_example's
    cache hands out a fresh copy on every call."""
    key = str(path)
    if key not in _SHIPPED:
        _SHIPPED[key] = read_example(key)
    return _SHIPPED[key]


def example_name(data: dict) -> str | None:
    """The name of the shipped example `data` is, unchanged, or None (so a link can say `example=NAME` and a picker
    can show the preset loaded). Titles are compared first: a rerun compares no whole group but the one titled
    alike."""
    title = data.get("title")
    return next((p.stem for p in example_files() if shipped(p).get("title") == title and shipped(p) == data), None)


def _example_from_link(qp) -> dict | None:
    """The link's `example=NAME` (a short link to a shipped example), or None with a message saying why not."""
    if "example" not in qp or "s" in qp:
        return None
    try:
        data = read_example(str(example_path(qp["example"], EXAMPLES)))
        parse_scenario(data)
        return data
    except ScenarioError as e:
        flash(f"This link's example could not be opened ({e.message}); showing the default scenario instead.")
    return None


def flash(message: str) -> None:
    """A message shown once at the top of the next page that runs (as plain text: it may quote a link or a file)."""
    st.session_state.setdefault("flash", []).append(message)


def show_flash() -> None:
    for message in st.session_state.pop("flash", []):
        st.warning(plain_text(message), icon=":material/link_off:")


def set_scenario(data: dict, replace_tables: bool = True) -> None:
    """Make `data` (already validated) the current scenario. replace_tables resets the Token Lab's editors."""
    ss = st.session_state
    ss.scenario = data
    if replace_tables:
        ss.version = ss.get("version", 0) + 1
        ss.editor_base = data


def _scenario_from_link(qp) -> dict | None:
    """The link's scenario, validated, or None (no scenario in the link, or a message flashed saying why not)."""
    if "s" not in qp:
        return None
    try:
        data = decode_scenario(qp["s"])
        parse_scenario(data)
        return data
    except ScenarioError as e:
        flash(f"The scenario in this link could not be used ({e.message if e.where == 'link' else e}); showing the "
              "default scenario instead.")
    except Exception as e:  # noqa: BLE001 (a link must never break the session; the message names the error)
        flash(f"The scenario in this link could not be used ({type(e).__name__}); showing the default scenario "
              "instead.")
    return None


def _controls_from_link(qp) -> dict:
    if "v" not in qp:
        return {}
    try:
        return decode_controls(qp["v"])
    except ScenarioError as e:
        flash(f"The page settings in this link could not be read ({e.message}); using the default settings.")
    except Exception as e:  # noqa: BLE001 (as above)
        flash(f"The page settings in this link could not be read ({type(e).__name__}); using the default settings.")
    return {}


def boot() -> None:
    """Once per browser session: take the scenario and controls from the link, or the defaults.

    Whatever the link holds, this leaves a valid scenario and controls in session state (a session that lost them
    boots again), so one crafted link cannot break every page of the session."""
    ss = st.session_state
    if ss.get("booted") and "scenario" in ss and "ctl" in ss:
        return
    ss.booted = True
    qp = st.query_params
    data = None
    try:
        data = _scenario_from_link(qp) or _example_from_link(qp)
    finally:
        set_scenario(data if data is not None else default_scenario())
        ss.ctl = {}
        ss.ctl_version = 0
    ss.ctl = _controls_from_link(qp)
    boot_talk(qp, flash)          # talk mode; a talk's scene replaces the scenario and controls


def within(value: Any, n: int) -> int:
    """An index from 0 to n − 1 for a control's value (a link's or a talk scene's, which no widget has checked in
    talk mode): the nearest end when out of range, 0 when not a number."""
    try:
        return min(max(int(value), 0), n - 1)
    except (TypeError, ValueError):
        return 0


def slider(where: Any, label: str, lo: Any, hi: Any, value: Any, step: Any = None, **kwargs) -> Any:
    """where.slider(...) that refuses an initial value outside [lo, hi] (Streamlit 1.67 draws the handle off the
    track and returns the value as given), so that `control` falls back to the default with its message."""
    values = value if isinstance(value, (tuple, list)) else (value,)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and lo <= v <= hi for v in values):
        raise ValueError(f"{label}: {value!r} is outside [{lo}, {hi}]")
    return where.slider(label, lo, hi, value, step, **kwargs)


def control(key: str, make: Callable[[Any, str], Any], default: Any) -> Any:
    """A widget whose value survives page switches and goes into the link.

    make(value, widget_key) creates the widget with `value` as its initial value and returns its value.
    A value from a hand-edited link that the widget refuses falls back to `default` with a message.
    """
    ss = st.session_state
    value = ss.ctl.get(key, default)
    if in_talk():                     # the scene's value, and no widget: a talk has no editing controls
        return value
    wkey = f"ctl_{key}_{ss.ctl_version}"
    try:
        out = make(value, wkey)
    except Exception:  # noqa: BLE001 (Streamlit raises its own API errors for an invalid initial value)
        if value == default:
            raise
        flash(f"The link's value {brief(value)} for '{key}' is not valid here; using {default!r}.")
        out = make(default, wkey + "_fallback")
    ss.ctl[key] = out
    return out


def link_params() -> dict:
    """The link's parameters for the current view: the scenario (`example=NAME` when it is a shipped example,
    unchanged; else `s`) and the controls (`v`)."""
    ss = st.session_state
    name = example_name(ss.scenario)
    scenario = {"example": name} if name else {"s": encode_scenario(ss.scenario)}
    return scenario | {"v": json.dumps(ss.ctl, separators=(",", ":"), sort_keys=True)}


def sync_url() -> None:
    """Write the current view into the URL (only when it changed): in a talk, the talk and its scene (the scene
    holds the scenario and controls); else the scenario and controls, and `mode=talk` in talk mode."""
    want = talk_params() if current_talk() is not None and in_talk() else link_params()
    if in_talk():
        want = {"mode": TALK} | want
    if {k: st.query_params.get(k) for k in want} != want or len(st.query_params) != len(want):
        st.query_params.from_dict(want)


def replace_tables(data: dict) -> None:
    """New editor tables from `data`, which may hold invalid entries the person typed; the scenario only
    changes when `data` is valid."""
    ss = st.session_state
    ss.version = ss.get("version", 0) + 1
    ss.editor_base = data
    ss.keep_base = True
    try:
        parse_scenario(data)
    except ScenarioError:
        return
    ss.scenario = data


def require_app() -> None:
    """Call first in every page. If the page runs without app.py, go through app.py instead.

    Streamlit 1.67 treats an app with a pages/ folder as a legacy multipage app until a run calls st.navigation
    (PagesManager sets `uses_pages_directory` from the folder's existence; only st.navigation clears it, and AppTest
    resets it before every run). A page then runs alone, without app.py's routing, state and sidebar: for the first
    visitor of a fresh server who opens a shared link, and for every page run in AppTest. Streamlit offers no
    supported setting for this (checked in 1.67: no config option, and `client.showSidebarNavigation` only hides the
    legacy menu), so this is the app's one workaround: switch the legacy mode off and rerun, which sends the same URL
    through app.py. tests/test_browser.py opens a page link on a fresh server to check it.
    """
    if st.session_state.get("in_app_run"):
        return
    from streamlit.runtime.pages_manager import PagesManager
    PagesManager.uses_pages_directory = False
    st.rerun()
