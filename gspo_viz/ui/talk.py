"""Talk mode: the app as a speaker shows it on a projector (link flag `mode=talk`): no sidebar, no editing controls,
large type, the charts first; a talk's scenes are stepped with the arrow keys, Page Up/Down or on-screen buttons.

A talk travels in its link: `talk=NAME` for one shipped in examples/talks/, or `t=` the talk itself (encoded as a
scenario is), and `scene=K` (from 1). The sidebar builds a talk from the views the speaker adds, and saves and loads
it as a small JSON file (scenarios/talks.py checks it).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional
from urllib.parse import urlencode

import streamlit as st

from ..scenarios.files import ScenarioError, cut
from ..scenarios.talks import SCENE_PAGES, Scene, Talk, decode_talk, encode_talk, parse_talk, shipped_talk
from ..views.text import plain_text, safe_markdown
from .uploads import read_upload

TALK = "talk"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TALKS = EXAMPLES / "talks"

# Our own style sheet for talk mode (no user text in it): no sidebar or header, large type, and on screens larger
# than a 1280×720 projector the whole page scaled up, so the view designed for 720 px fills 1080 px too. A Plotly
# chart inside a zoomed page is drawn at the zoomed size of its box and then zoomed again (cut off at the right), so
# each chart undoes the zoom: it is laid out in the zoomed page (its box 1.5× as wide and high) and drawn at 1×.
TALK_CSS = """
<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stHeader"],
[data-testid="stToolbar"], [data-testid="stDecoration"] {display: none !important;}
[data-testid="stMainBlockContainer"] {padding: 0.6rem 1.2rem 1rem 1.2rem !important; max-width: 100% !important;}
[data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li {font-size: 1.15rem;}
[data-testid="stCaptionContainer"] {font-size: 1.0rem;}
.st-key-talk_pageup, .st-key-talk_pagedown {display: none;}
.st-key-talk_title h3 {font-size: 1.7rem; line-height: 1.2; padding: 0; margin: 0;}
@media (min-width: 1700px) and (min-height: 950px) { .stApp {zoom: 1.5;} .stPlotlyChart {zoom: calc(1 / 1.5);} }
@media (min-width: 2400px) and (min-height: 1350px) { .stApp {zoom: 2;} .stPlotlyChart {zoom: 0.5;} }
</style>
"""


def in_talk() -> bool:
    """Is this session showing the app in talk mode? Pages draw no editing control then (ui.state.control returns
    the scene's value without a widget)."""
    return st.session_state.get("mode") == TALK


def current_talk() -> Optional[Talk]:
    return st.session_state.get("talk")


def current_scene() -> Optional[Scene]:
    talk = current_talk()
    return None if talk is None else talk.scenes[st.session_state.get("scene", 0)]


def boot_talk(qp, flash) -> None:
    """Once per browser session, from the link: talk mode, the talk and its scene (messages for a bad talk)."""
    ss = st.session_state
    ss.mode = TALK if qp.get("mode") == TALK else None
    ss.talk, ss.scene = None, 0
    talk = None
    try:
        if "talk" in qp:
            talk = shipped_talk(qp["talk"], TALKS, EXAMPLES)
        elif "t" in qp:
            talk = decode_talk(qp["t"], EXAMPLES)
    except ScenarioError as e:
        flash(f"The talk in this link could not be used ({e}); showing the view instead.")
    except Exception as e:  # noqa: BLE001 (a link must never break the session; the message names the error)
        flash(f"The talk in this link could not be used ({type(e).__name__}).")
    if talk is None:
        return
    ss.talk = talk
    ss.talk_name = qp["talk"] if "talk" in qp else None
    try:
        k = int(qp.get("scene", "1")) - 1
    except ValueError:
        k = 0
    if not 0 <= k < len(talk.scenes):
        flash(f"This talk has scenes 1 to {len(talk.scenes)}; showing scene 1.")
        k = 0
    apply_scene(k)


def apply_scene(k: int) -> None:
    """Make scene k (from 0) the current view: its scenario and its page's controls."""
    from .state import set_scenario
    ss = st.session_state
    scene = ss.talk.scenes[k]
    ss.scene = k
    set_scenario(scene.scenario)
    ss.ctl = dict(scene.controls)
    ss.ctl_version = ss.get("ctl_version", 0) + 1


def talk_params() -> dict:
    """The link's parameters for the current talk and scene (empty without a talk)."""
    talk = current_talk()
    if talk is None:
        return {}
    ss = st.session_state
    shipped = ss.get("talk_name")
    ref = {"talk": shipped} if shipped else {"t": encode_talk(talk)}
    return ref | {"scene": str(ss.scene + 1)}


def go_to_scene(k: int, pages: dict) -> None:
    """Step to scene k (from 0): its scenario, controls and page."""
    apply_scene(k)
    st.switch_page(pages[current_scene().page])


def talk_bar(pages: dict, page_key: Optional[str]) -> None:
    """The top of a page in talk mode: the scene's title and line, where we are, and the buttons (arrow keys and
    Page Up/Down, as a presentation clicker sends them). Sends the viewer to the scene's page if elsewhere."""
    st.markdown(TALK_CSS, unsafe_allow_html=True)
    ss = st.session_state
    talk = current_talk()
    if talk is None:
        left, right = st.columns([9, 1])
        if right.button("Exit talk", key="talk_exit", icon=":material/close:"):
            exit_talk()
        return
    scene = current_scene()
    if page_key != scene.page:               # opened on another page: the scene decides
        st.switch_page(pages[scene.page])
    n, k = len(talk.scenes), ss.scene
    prev, nxt, title, where, leave = st.columns([1, 1, 9.6, 0.8, 0.55], vertical_alignment="center")
    # words, no arrow icons: Streamlit already shows each button's key (← →) beside its label
    back = prev.button("Back", key="talk_prev", shortcut="Left", disabled=k == 0, width="stretch",
                       help="Previous scene (← or Page Up)")
    fwd = nxt.button("Next", key="talk_next", shortcut="Right", disabled=k == n - 1, width="stretch",
                     help="Next scene (→ or Page Down)", type="primary")
    with title.container(key="talk_title"):
        st.markdown(f"### {safe_markdown(scene.title)}")
    where.markdown(f"**{k + 1} / {n}**")
    if leave.button("", key="talk_exit", icon=":material/close:", help="Leave talk mode (this view, editable)"):
        exit_talk()
    # a clicker sends Page Up / Page Down: the same steps, from buttons the style sheet hides
    back = st.button("Page Up", key="talk_pageup", shortcut="PageUp", disabled=k == 0) or back
    fwd = st.button("Page Down", key="talk_pagedown", shortcut="PageDown", disabled=k == n - 1) or fwd
    if scene.say:
        st.markdown(safe_markdown(scene.say))
    if back and k > 0:
        go_to_scene(k - 1, pages)
    if fwd and k < n - 1:
        go_to_scene(k + 1, pages)


def exit_talk() -> None:
    """Leave talk mode: the same view, with its controls (the talk is kept in the sidebar's talk builder)."""
    ss = st.session_state
    ss.mode = None
    ss.ctl_version = ss.get("ctl_version", 0) + 1
    st.rerun()


# ------------------------------------------------------------------------------------------------ building a talk
def _scene_of_view(page_key: str) -> Scene:
    """The current view as a scene: the page, the scenario (by its example's name when it is one) and controls."""
    from .state import example_name
    ss = st.session_state
    name = example_name(ss.scenario)
    title = ss.scenario.get("title") or page_key
    return Scene(title=cut(str(title), 200), page=page_key, scenario=ss.scenario, controls=dict(ss.ctl),
                 example=name)


def talk_url(params: dict) -> str:
    """An absolute link when the browser told us where the app is, else a relative one."""
    base = st.context.url or ""
    return f"{base}?{urlencode(params)}"


def talk_sidebar(page_key: Optional[str]) -> None:
    """In the sidebar: a link that opens this view in talk mode, and a talk built from views (add, save, load,
    present)."""
    from .state import link_params
    ss = st.session_state
    st.subheader("Talk")
    st.caption("Talk mode: no sidebar or controls, large type, charts first.")
    # the links sit in popovers: a code block's highlighter (1.5 MB of script) loads when one is opened, not with
    # every page
    with st.popover("Talk link to this view", icon=":material/link:", width="stretch"):
        st.caption("This link shows this view in talk mode (hover it for a copy button):")
        st.code(talk_url(link_params() | {"mode": TALK}), language=None, wrap_lines=True)
    scenes = list(ss.get("talk_draft", []))
    can_add = page_key in SCENE_PAGES
    if st.button("Add this view as a scene", icon=":material/add_to_queue:", disabled=not can_add,
                 help=None if can_add else f"A scene shows one of: {', '.join(SCENE_PAGES)}"):
        scenes.append(_scene_of_view(page_key))
        ss.talk_draft = scenes
    if scenes:
        talk = Talk(title="My talk", scenes=tuple(scenes))
        st.caption(f"Your talk: {len(scenes)} scene{'s' if len(scenes) != 1 else ''} ("
                   + "; ".join(f"{k + 1}. {plain_text(cut(s.title, 40))}" for k, s in enumerate(scenes)) + ").")
        with st.popover("Link to your talk", icon=":material/link:", width="stretch"):
            st.caption("This link holds every scene and opens the first (hover it for a copy button):")
            st.code(talk_url({"mode": TALK, "t": encode_talk(talk), "scene": "1"}), language=None, wrap_lines=True)
        c1, c2 = st.columns(2)
        c1.download_button("Save (JSON)", json.dumps(talk.to_dict(), ensure_ascii=False, indent=1)
                           .encode("utf-8", "backslashreplace"), file_name="talk.json", mime="application/json",
                           icon=":material/download:")
        if c2.button("Clear", icon=":material/delete:"):
            ss.talk_draft = []
            st.rerun()
    upload = st.file_uploader("Load a talk (JSON)", type=["json"], key=f"talk_upload_{ss.get('talk_uploads', 0)}")
    if upload is not None:
        _load_talk(upload)


def _load_talk(upload) -> None:
    """An uploaded talk file starts talk mode at its first scene, or its message shows under the uploader."""
    ss = st.session_state
    talk = read_upload(upload, lambda data: parse_talk(data, EXAMPLES), "loaded")
    if talk is None:
        return
    ss.talk_uploads = ss.get("talk_uploads", 0) + 1
    ss.talk_draft = list(talk.scenes)
    start_talk(talk)


def start_talk(talk: Talk, name: Optional[str] = None) -> None:
    """Present `talk` from its first scene (name: a shipped talk's, which keeps the link short)."""
    from .state import PAGE_FILES
    ss = st.session_state
    ss.mode, ss.talk, ss.talk_name = TALK, talk, name
    go_to_scene(0, PAGE_FILES)
