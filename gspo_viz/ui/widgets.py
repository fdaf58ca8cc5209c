"""Streamlit pieces every page shares: the scenario sidebar (presets, import, download) and the settings controls."""
from __future__ import annotations

import json
from pathlib import Path

import streamlit as st

from ..core.objectives import NAMES
from ..core.settings import ADVANTAGE_MODES, COMMON_DEFAULTS, KL_ESTIMATORS, Settings, SettingsError
from ..scenarios.files import MAX_FILE_BYTES, cut, parse_scenario
from ..views.style import clip_legend as legend_lines
from ..views.text import plain_text, safe_markdown
from .state import example_files, example_name, flash, read_example, set_scenario, shipped
from .talk import in_talk
from .uploads import read_upload

OBJECTIVE_NAMES = list(NAMES)
# What the ε boxes and c show while a scenario leaves them unset and every objective uses the same ε
SHOWN_EPS = 0.2


def _shown_c() -> float:
    from ..core.objectives import OBJECTIVES
    return next(o.defaults["dual_clip_c"] for o in OBJECTIVES.values() if "dual_clip_c" in o.defaults)


def title_of(path: Path) -> str:
    return shipped(path).get("title") or path.stem


# A preset picker's first entry while the scenario is none of its presets (a string, never a preset's Path).
CURRENT = "current scenario"


def loaded_preset(scenario: dict, files: list[Path]) -> Path | None:
    """The preset whose file holds exactly this scenario (it was loaded and not changed since), or None."""
    name = example_name(scenario)
    return next((p for p in files if p.stem == name), None) if name else None


def current_label(scenario: dict, what: str) -> str:
    """How a picker of presets names a current scenario that is not one of its entries, the state first (a narrow
    sidebar cuts the end): 'Current, edited: <title>' when it carries a preset's title but not that preset's content
    (changed in the tables, the settings or a link), else 'Current, not a <what>: <title>' (an import, a sampled
    group, a link, or a preset the picker does not list)."""
    title = scenario.get("title")
    files = example_files()
    edited = any(title_of(p) == title for p in files) and loaded_preset(scenario, files) is None
    return f"Current, {'edited' if edited else f'not a {what}'}: {cut(title or '(untitled scenario)', 60)}"


def preset_picker(label: str, files: list[Path], key: str, button: str, icon: str, what: str, where=st,
                  button_where=None, **selectbox_args) -> None:
    """A selectbox of presets (in `where`) and a button (in `button_where`, default the same) that loads the one
    picked. The selectbox shows the preset that is loaded; when the scenario is not one of `files` (edited,
    imported, sampled, from a link), its first entry names the current scenario and says so, and the button waits
    for a preset to be picked."""
    ss = st.session_state
    loaded = loaded_preset(ss.scenario, files)
    options = list(files) if loaded is not None else [CURRENT] + list(files)
    current = current_label(ss.scenario, what) if loaded is None else ""
    # A new widget whenever the scenario is replaced (ss.version) or becomes, or stops being, a preset: Streamlit
    # keeps a keyed selectbox's choice whatever `index` says, so the key is what makes it show the loaded one.
    state = loaded.stem if loaded is not None else "current"
    choice = where.selectbox(label, options, index=options.index(loaded) if loaded is not None else 0,
                             format_func=lambda p: current if p == CURRENT else title_of(p),
                             key=f"{key}_{ss.version}_{state}", **selectbox_args)
    if (button_where or where).button(button, key=f"load_{key}", icon=icon, disabled=choice == CURRENT,
                                      help=f"Pick a {what} to load it." if choice == CURRENT else None):
        set_scenario(read_example(str(choice)))
        st.rerun()


def _import(upload) -> None:
    """An uploaded scenario file becomes the scenario, or its one-line message shows under the uploader (the file
    is read by the command line's rules: at most 2 MB, UTF-8, valid JSON, a valid scenario)."""
    def check(data):
        parse_scenario(data)
        return data
    data = read_upload(upload, check, "imported")
    if data is None:
        return
    name = cut(upload.name, 60)
    set_scenario(data)
    flash(f"Imported {name}.")
    st.rerun()


def _import_batch(upload) -> None:
    """An uploaded batch (JSONL or Parquet, one response per line or row with its group) is kept for the group
    picker, and its first group becomes the scenario with the current settings; or its message (every bad line by
    number) shows under the uploader."""
    from ..scenarios.batches import read_batch
    from ..scenarios.files import ScenarioError
    ss = st.session_state
    name = cut(upload.name, 60)
    try:
        batch = read_batch(upload.getvalue(), upload.name)        # its size, format and lines checked there
    except ScenarioError as e:                      # one line per bad line of the file
        st.error(plain_text(f"{name}: {e}").replace("\n", "  \n"), icon=":material/error:")
        return
    except Exception as e:  # noqa: BLE001 (an upload must never break the page; the message names the error)
        st.error(plain_text(f"{name}: could not be imported ({type(e).__name__})"), icon=":material/error:")
        return
    ss.batch, ss.batch_name = batch, name
    _show_group(next(iter(batch.groups)))
    flash(f"Imported {name}: {batch.describe()}.")
    st.rerun()


def _show_group(group: str) -> None:
    """The batch's group as the scenario, keeping the current settings (a batch has none of its own)."""
    from ..scenarios.files import ScenarioError
    ss = st.session_state
    data = ss.batch.scenario(group, f"{ss.batch_name}, group {group}")
    settings = ss.scenario.get("settings")
    if settings:
        data["settings"] = settings
    try:
        parse_scenario(data)
    except ScenarioError as e:   # e.g. the current settings ask for what this group lacks: drop them
        data.pop("settings", None)
        flash(f"Group {group} with the current settings: {e}; showing it with the default settings.")
    ss.batch_group = group
    set_scenario(data)


def batch_picker() -> None:
    """Page through the imported batch's groups (shown while one is loaded)."""
    ss = st.session_state
    batch = ss.get("batch")
    if batch is None:
        return
    ids = list(batch.groups)
    at = ids.index(ss.batch_group) if ss.get("batch_group") in ids else 0
    st.caption(plain_text(f"Batch {ss.batch_name} ({batch.source}): {batch.describe(3)}."))
    c1, c2, c3 = st.columns([1, 3, 1], vertical_alignment="bottom")
    step = -1 if c1.button("◀", key="batch_prev", disabled=at == 0, help="the previous group") else \
        1 if c3.button("▶", key="batch_next", disabled=at == len(ids) - 1, help="the next group") else 0
    chosen = c2.selectbox("Group", ids, index=at, key=f"batch_pick_{ss.version}",   # narrow: "q17 (8)"
                          format_func=lambda g: f"{g} ({len(batch.groups[g])})",
                          help="the group's id, and its number of responses in brackets")
    target = ids[at + step] if step else chosen
    if target != ids[at]:
        _show_group(target)
        st.rerun()
    if st.button("Forget the batch", key="batch_forget", icon=":material/close:"):
        for k in ("batch", "batch_name", "batch_group"):
            ss.pop(k, None)
        st.rerun()


def scenario_sidebar() -> None:
    """Preset, import and download of the current scenario (shared by every page)."""
    from ..scenarios.batches import BATCH_SUFFIXES, is_batch
    ss = st.session_state
    with st.sidebar:
        st.subheader("Scenario")
        st.caption(safe_markdown(ss.scenario.get("title") or "(untitled scenario)"))
        preset_picker("Preset", example_files(), "preset", "Load preset", ":material/folder_open:", what="preset")
        upload = st.file_uploader(f"Import a scenario (JSON, at most {MAX_FILE_BYTES / 1e6:g} MB) or a batch (JSONL "
                                  "or Parquet: one response per line or row, each with its group)",
                                  type=["json", *(x.lstrip(".") for x in BATCH_SUFFIXES)], key=f"upload_{ss.version}",
                                  help=f"A scenario file over {MAX_FILE_BYTES / 1e6:g} MB, not UTF-8 or not valid is "
                                       "refused with a message saying what is wrong and where; a batch's bad lines "
                                       "are listed by number. The batch format is in the README.")
        if upload is not None and is_batch(upload.name):
            _import_batch(upload)
        elif upload is not None:
            _import(upload)
        batch_picker()
        st.download_button("Download this scenario",
                           json.dumps(ss.scenario, ensure_ascii=False, indent=1).encode("utf-8", "backslashreplace"),
                           file_name="scenario.json", mime="application/json", icon=":material/download:")


def _paper_eps() -> str:
    """Each objective's own ε, from its definition."""
    from ..core.objectives import OBJECTIVES
    out = []
    for o in OBJECTIVES.values():
        if "eps_high" in o.defaults:
            low = o.defaults.get("eps_low")
            out.append(f"{o.title} {'no lower bound' if low is None else f'{low:g}'}/{o.defaults['eps_high']:g}")
    return "ε_low/ε_high: " + ", ".join(out)


def settings_controls() -> None:
    """ε's, c, advantage and KL controls that edit the scenario's settings; a bad value shows its message inline
    and is not applied (the charts keep the last valid settings)."""
    ss = st.session_state
    if in_talk():                     # a talk shows the scene's settings and has no editing controls
        return
    current = dict(ss.scenario.get("settings", {}))
    # what an unset knob shows: the core's common defaults; a value the scenario sets (0.0 included) is shown as set
    shown = COMMON_DEFAULTS | {"eps": SHOWN_EPS, "dual_clip_c": _shown_c()}

    def value(key, fallback):
        return current[key] if current.get(key) is not None else fallback
    v = ss.version
    new = dict(current)
    c0, c1, c2, c3 = st.columns([2, 1, 1, 1])
    own = c0.toggle("Each objective uses its paper's ε", value=current.get("eps_low") is None
                    and current.get("eps_high") is None, key=f"own_eps_{v}",
                    help=_paper_eps() + ". Turn off to give every objective the same ε.")
    if own:
        new.pop("eps_low", None)
        new.pop("eps_high", None)
    else:
        new["eps_low"] = c1.number_input("ε_low", value=float(value("eps_low", shown["eps"])), step=0.0001,
                                         format="%.4f", key=f"eps_low_{v}")
        new["eps_high"] = c2.number_input("ε_high", value=float(value("eps_high", shown["eps"])), step=0.0001,
                                          format="%.4f", key=f"eps_high_{v}")
    new["dual_clip_c"] = c3.number_input("Dual-Clip c", value=float(value("dual_clip_c", shown["dual_clip_c"])),
                                         step=0.1,
                                         key=f"c_{v}", help="for A < 0 the term never falls below c·A; c > 1")
    a1, a2, a3, a4, a5 = st.columns([1, 1, 1, 1, 1.3])
    mode = value("advantage", shown["advantage"])
    new["advantage"] = a1.selectbox("Advantage", ADVANTAGE_MODES, index=ADVANTAGE_MODES.index(mode),
                                    key=f"adv_{v}", format_func={"group": "group z-score", "mean": "mean-centred",
                                                                 "rloo": "RLOO"}.get,
                                    help="unless you choose here, Dr.GRPO uses its own mean-centring")
    std = value("std", shown["std"])
    new["std"] = a2.radio("std over", ["sample", "population"], index=["sample", "population"].index(std),
                          horizontal=True, key=f"std_{v}", format_func={"sample": "G − 1", "population": "G"}.get,
                          help="TRL and verl use the sample std (G − 1)")
    new["beta"] = a3.number_input("β (KL weight)", value=float(value("beta", shown["beta"])), step=0.01,
                                  format="%.3f", key=f"beta_{v}", help="needs p_ref or logp_ref on every response")
    kl = value("kl", shown["kl"])
    new["kl"] = a4.selectbox("KL estimator", KL_ESTIMATORS, index=KL_ESTIMATORS.index(kl), key=f"kl_{v}")
    from ..core.aggregation import TOKEN_MODES, WHO
    modes = [None, *TOKEN_MODES] + ([current["loss_agg_mode"]] if current.get("loss_agg_mode") not in
                                    (None, *TOKEN_MODES) else [])
    agg = a5.selectbox("Loss aggregation", modes, index=modes.index(current.get("loss_agg_mode")), key=f"agg_{v}",
                       format_func=lambda m: "each paper's own" if m is None else m,
                       help="verl's loss_agg_mode. " + "; ".join(f"{m}: {WHO[m]}" for m in TOKEN_MODES)
                            + ". GSPO's and GMPO's one term per response counts once per token of it under a token "
                              "mode, as verl aggregates its GSPO loss.")
    if agg is None:
        new.pop("loss_agg_mode", None)
    else:
        new["loss_agg_mode"] = agg
    rollout_controls(current, new, v)
    # A knob the scenario leaves unset stays unset while it shows its default (so visiting a page changes nothing;
    # the advantage left unset lets each objective keep its own, e.g. Dr.GRPO's mean-centring).
    for key in ("eps_low", "eps_high", "dual_clip_c", "advantage", "std", "beta", "kl"):
        if key not in current and key in new and new[key] == shown.get(key, shown["eps"]):
            new.pop(key, None)
    try:
        Settings.from_dict(new)
    except SettingsError as e:
        st.error(f"{e}. The charts still show the last valid settings.", icon=":material/error:")
        return
    if new != current:
        ss.scenario = dict(ss.scenario, settings=new)


def rollout_controls(current: dict, new: dict, v: int) -> None:
    """Rollout correction's settings, shown when every response carries the inference engine's probabilities
    (p_rollout or logp_rollout): the level (off, token, sequence), the cap C, and an optional lower bound that turns
    truncation into masking (verl's names: rollout_is, rollout_is_threshold, rollout_is_threshold_lower)."""
    responses = st.session_state.scenario.get("responses", [])
    level = None
    if responses and all("p_rollout" in r or "logp_rollout" in r for r in responses):
        r1, r2, r3 = st.columns([2, 1, 1])
        levels = [None, "token", "sequence"]
        level = r1.selectbox("Rollout correction (π_old/π_rollout)", levels,
                             index=levels.index(current.get("rollout_is")), key=f"rc_{v}",
                             format_func=lambda x: "off" if x is None else f"{x} level",
                             help="verl's algorithm.rollout_correction.rollout_is: weight each token's term by "
                                  "π_old/π_rollout (token), or by the response's product (sequence)")
    if level is None:                              # no rollout probabilities, or correction off
        for key in ("rollout_is", "rollout_is_threshold", "rollout_is_threshold_lower"):
            new.pop(key, None)
        return
    new["rollout_is"] = level
    new["rollout_is_threshold"] = r2.number_input("cap C", value=float(current.get("rollout_is_threshold") or 2.0),
                                                  step=0.1, key=f"rc_c_{v}", help="rollout_is_threshold")
    lower = r3.number_input("lower bound (masks)", value=current.get("rollout_is_threshold_lower"), step=0.1,
                            key=f"rc_low_{v}", placeholder="none: truncate",
                            help="rollout_is_threshold_lower: when set, weights outside [lower, C] are set to 0 "
                                 "(IcePop) instead of being truncated at C (TIS)")
    if lower is None:
        new.pop("rollout_is_threshold_lower", None)
    else:
        new["rollout_is_threshold_lower"] = float(lower)


def library_mapping(objectives: list[str]) -> None:
    """A popover with the current settings in verl's and TRL's words for each compared objective (copy buttons on
    the code blocks; the popover loads their highlighter only when opened)."""
    from ..core.objectives import OBJECTIVES
    from ..core.settings import SettingsError
    from ..views.libraries import library_settings
    ss = st.session_state
    if in_talk() or not objectives:
        return
    try:
        mapped = library_settings(dict(ss.scenario.get("settings", {})), objectives)
    except SettingsError:
        return                  # the settings controls show the message
    with st.popover("These settings in verl and TRL", icon=":material/swap_horiz:"):
        st.caption("verl 0.9 Hydra overrides and TRL 1.16 GRPOConfig keywords that run these settings (hover a block "
                   "for its copy button). The command line gives the same: `python -m gspo_viz config FILE --to "
                   "verl` (or `--to trl --json`), and reads them back with `--from`.")
        for m in mapped:
            st.markdown(f"**{OBJECTIVES[m.objective].title}**")
            st.code(m.verl, language=None, wrap_lines=True)
            if m.trl is not None:
                st.code(m.trl, language="python", wrap_lines=True)
            for note in m.notes:
                st.caption(note)


def objective_header(name: str) -> None:
    from ..core.objectives import OBJECTIVES
    obj = OBJECTIVES[name]
    st.markdown(f"<h4 style='color:{obj.color};margin:0'>■ {obj.title}</h4>"
                f"<span style='color:#666;font-size:0.8em'>{obj.paper}</span>", unsafe_allow_html=True)


def clip_legend(names: list[str]) -> None:
    """What each mark means for each objective on the page (CISPO's ▲ differs from GRPO's, SAPO has none)."""
    st.caption("\n\n".join(legend_lines(names)))

# Every chart: no mode bar, and no Streamlit theme (the figures carry their own styling; skipping the theme makes
# an edit-to-updated-chart about 130 ms faster in the browser).
PLOT_ARGS = {"config": {"displayModeBar": False}, "theme": None}


# What a chart's place shows while the first run of a session computes it: an empty chart (no axes, no traces), so
# the browser starts loading its chart library while the server loads the core. Its height is about a map's.
SKELETON = {"data": [], "layout": {"height": 280, "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
                                   "xaxis": {"visible": False}, "yaxis": {"visible": False},
                                   "annotations": [{"text": "Drawing the maps…", "showarrow": False, "x": 0.5,
                                                    "y": 0.5, "xref": "paper", "yref": "paper",
                                                    "font": {"size": 14, "color": "#888"}}],
                                   "plot_bgcolor": "white", "paper_bgcolor": "white"}}


def maps_skeleton(slot) -> None:
    """SKELETON in `slot` (an st.empty that the real chart replaces)."""
    # Plotly reads numpy from sys.modules when it is there, even half imported: the landing page imports the core
    # (torch, numpy) in a thread, and a Token Lab opened meanwhile failed with "partially initialized module
    # 'numpy'". An import statement waits for the thread's import to finish.
    import numpy  # noqa: F401
    import plotly.graph_objects as go     # a Figure: a plain dict without traces is refused as empty
    slot.plotly_chart(go.Figure(SKELETON), key="maps_skeleton", **PLOT_ARGS)
