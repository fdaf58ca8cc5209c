"""Talk mode: the app as a speaker shows it on a projector (link flag `mode=talk`): no sidebar, no editing controls,
large type, the charts first; a talk's scenes are stepped with the arrow keys, Page Up/Down or on-screen buttons."""
from __future__ import annotations

import streamlit as st

TALK = "talk"


def in_talk() -> bool:
    """Is this session showing the app in talk mode? Pages draw no editing control then (ui.state.control returns
    the scene's value without a widget)."""
    return st.session_state.get("mode") == TALK
