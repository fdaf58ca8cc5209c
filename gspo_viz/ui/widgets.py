"""Streamlit pieces every page shares: the scenario sidebar (presets, import, download) and the settings controls."""
from __future__ import annotations

import json
from pathlib import Path

import streamlit as st

from ..scenario import MAX_FILE_BYTES, ScenarioError, loads, parse_scenario
from ..settings import (ADVANTAGE_MODES, COMMON_DEFAULTS, DEFAULTS, KL_ESTIMATORS, OBJECTIVES as OBJECTIVE_NAMES_TUPLE,
                        Settings, SettingsError)
from ..style import CLIP_MEANING, COLORS
from .state import example_files, flash, read_example, set_scenario

OBJECTIVE_NAMES = list(OBJECTIVE_NAMES_TUPLE)


def title_of(path: Path) -> str:
    return read_example(str(path)).get("title") or path.stem


def scenario_sidebar() -> None:
    """Preset, import and download of the current scenario (shared by every page)."""
    ss = st.session_state
    with st.sidebar:
        st.subheader("Scenario")
        st.caption(ss.scenario.get("title") or "(untitled scenario)")
        files = example_files()
        choice = st.selectbox("Preset", files, format_func=title_of, key=f"preset_{ss.version}")
        if st.button("Load preset", key="load_preset", icon=":material/folder_open:"):
            set_scenario(read_example(str(choice)))
            st.rerun()
        upload = st.file_uploader("Import a scenario file (JSON)", type=["json"], key=f"upload_{ss.version}")
        if upload is not None:
            try:
                if upload.size > MAX_FILE_BYTES:
                    raise ScenarioError("", f"the file is {upload.size} bytes; the limit is {MAX_FILE_BYTES}")
                data = loads(upload.getvalue().decode("utf-8", errors="replace"))
                parse_scenario(data)
            except ScenarioError as e:
                st.error(f"{upload.name}: {e}", icon=":material/error:")
            else:
                set_scenario(data)
                flash(f"Imported {upload.name}.")
                st.rerun()
        st.download_button("Download this scenario", json.dumps(ss.scenario, ensure_ascii=False, indent=1),
                           file_name="scenario.json", mime="application/json", icon=":material/download:")


def settings_controls() -> None:
    """ε's, c, advantage and KL controls that edit the scenario's settings; a bad value shows its message inline
    and is not applied (the charts keep the last valid settings)."""
    ss = st.session_state
    current = dict(ss.scenario.get("settings", {}))
    # what an unset knob shows: the core's defaults (GRPO's ε for "one ε for every objective")
    shown = COMMON_DEFAULTS | {"eps": DEFAULTS["grpo"]["eps_high"], "dual_clip_c": DEFAULTS["dual_clip"]["dual_clip_c"]}
    v = ss.version
    new = dict(current)
    c0, c1, c2, c3 = st.columns([2, 1, 1, 1])
    own = c0.toggle("Each objective uses its paper's ε", value=current.get("eps_low") is None
                    and current.get("eps_high") is None, key=f"own_eps_{v}",
                    help="GRPO/Dual-Clip 0.2/0.2, DAPO 0.2/0.28, GSPO 3e-4/4e-4, CISPO ε_high 0.2. "
                         "Turn off to give every objective the same ε.")
    if own:
        new.pop("eps_low", None)
        new.pop("eps_high", None)
    else:
        new["eps_low"] = c1.number_input("ε_low", value=float(current.get("eps_low") or shown["eps"]), step=0.0001,
                                         format="%.4f", key=f"eps_low_{v}")
        new["eps_high"] = c2.number_input("ε_high", value=float(current.get("eps_high") or shown["eps"]), step=0.0001,
                                          format="%.4f", key=f"eps_high_{v}")
    new["dual_clip_c"] = c3.number_input("Dual-Clip c", value=float(current.get("dual_clip_c") or shown["dual_clip_c"]),
                                         step=0.1,
                                         key=f"c_{v}", help="for A < 0 the term never falls below c·A; c > 1")
    a1, a2, a3, a4 = st.columns(4)
    mode = current.get("advantage") or shown["advantage"]
    new["advantage"] = a1.selectbox("Advantage", ADVANTAGE_MODES, index=ADVANTAGE_MODES.index(mode),
                                    key=f"adv_{v}", format_func={"group": "group z-score", "mean": "mean-centred",
                                                                 "rloo": "RLOO"}.get,
                                    help="unless you choose here, Dr.GRPO uses its own mean-centring")
    std = current.get("std") or shown["std"]
    new["std"] = a2.radio("std over", ["sample", "population"], index=["sample", "population"].index(std),
                          horizontal=True, key=f"std_{v}", format_func={"sample": "G − 1", "population": "G"}.get,
                          help="TRL and verl use the sample std (G − 1)")
    new["beta"] = a3.number_input("β (KL weight)", value=float(current.get("beta") or shown["beta"]), step=0.01,
                                  format="%.3f", key=f"beta_{v}", help="needs p_ref or logp_ref on every response")
    kl = current.get("kl") or shown["kl"]
    new["kl"] = a4.selectbox("KL estimator", KL_ESTIMATORS, index=KL_ESTIMATORS.index(kl), key=f"kl_{v}")
    # A knob the scenario leaves unset stays unset while it shows its default (so visiting a page changes nothing;
    # the advantage left unset lets each objective keep its own, e.g. Dr.GRPO's mean-centring).
    for key in ("dual_clip_c", "advantage", "std", "beta", "kl"):
        if key not in current and new.get(key) == shown[key]:
            new.pop(key, None)
    try:
        Settings.from_dict(new)
    except SettingsError as e:
        st.error(f"{e}. The charts still show the last valid settings.", icon=":material/error:")
        return
    if new != current:
        ss.scenario = dict(ss.scenario, settings=new)


def objective_header(name: str) -> None:
    from ..objectives import OBJECTIVES
    obj = OBJECTIVES[name]
    st.markdown(f"<h4 style='color:{COLORS[name]};margin:0'>■ {obj.title}</h4>"
                f"<span style='color:#666;font-size:0.8em'>{obj.paper}</span>", unsafe_allow_html=True)


def clip_legend() -> None:
    st.caption("  ·  ".join(CLIP_MEANING.values()))

# Every chart: no mode bar, and no Streamlit theme (the figures carry their own styling; skipping the theme makes
# an edit-to-updated-chart about 130 ms faster in the browser).
PLOT_ARGS = {"config": {"displayModeBar": False}, "theme": None}
