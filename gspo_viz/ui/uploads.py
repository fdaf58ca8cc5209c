"""Reading an uploaded JSON file (a scenario, a talk) by the command line's rules, with its one-line message under
the uploader instead of a traceback."""
from __future__ import annotations

from typing import Any, Callable, Optional

import streamlit as st

from ..scenarios.files import MAX_FILE_BYTES, ScenarioError, cut, loads_bytes
from ..views.text import plain_text


def read_upload(upload, check: Callable[[Any], Any], verb: str) -> Optional[Any]:
    """check(data) of the uploaded file's JSON (at most MAX_FILE_BYTES, UTF-8, valid JSON), or None after an error
    under the uploader that names the file and what is wrong ("could not be <verb>" for anything unforeseen)."""
    name = cut(upload.name, 60)
    try:
        if upload.size > MAX_FILE_BYTES:
            raise ScenarioError("", f"the file is {upload.size} bytes; the limit is {MAX_FILE_BYTES} "
                                    f"({MAX_FILE_BYTES / 1e6:g} MB)")
        return check(loads_bytes(upload.getvalue()))
    except ScenarioError as e:
        st.error(plain_text(f"{name}: {e}"), icon=":material/error:")
    except Exception as e:  # noqa: BLE001 (an upload must never break the page; the message names the error)
        st.error(plain_text(f"{name}: could not be {verb} ({type(e).__name__})"), icon=":material/error:")
    return None
