"""Streamlit glue for a session's lifetime: the Train page's runs are released once their tab is gone for good."""
from __future__ import annotations

import streamlit as st
from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from ..toy.lifetime import REAPER
from ..toy.session import Background

MARGIN = 30.0      # seconds after the server would refuse the session's reconnect, before its runs are released


def connected(session_id: str) -> bool:
    """Is the session's tab connected now? True when there is no server (AppTest): nothing is released then."""
    return not Runtime.exists() or Runtime.instance().is_active_session(session_id)


def grace() -> float:
    """How long a closed tab's runs are kept: as long as the server keeps its session for a reconnect, and more."""
    return float(st.get_option("server.disconnectedSessionTTL")) + MARGIN


def keep_while_open(bg: Background) -> None:
    """Release bg's runs once this session's tab has been closed for longer than a reconnect can take."""
    ctx = get_script_run_ctx()
    if ctx is not None:
        REAPER.track(bg, ctx.session_id, connected, grace())
