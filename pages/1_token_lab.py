"""Token Lab: edit a group's probabilities and rewards and compare objectives side by side on the same numbers.

Layout only: every number comes from gspo_viz (run_scenario, plots, narrate, advantages). The comparison comes
first: one figure of token-ratio maps and one of gradient-weight maps, a map per objective, on one colour scale per
kind (a toggle gives each objective its own). In talk mode (a projector) the page shows only the views, charts first
and sized to fit a 1280 × 720 screen under the scene bar; no editor, no settings."""
import streamlit as st

from gspo_viz.ui.state import control, replace_tables, require_app, set_scenario, within
from gspo_viz.ui.talk import in_talk
from gspo_viz.ui.widgets import maps_skeleton

require_app()               # first, before the core's imports: a page run alone goes on through app.py at once

ss = st.session_state
ss.tables_invalid = False   # set by edit_group when the tables hold an invalid entry
TALK = in_talk()

if not TALK:
    st.title("Token Lab")
    st.caption("One group of answers, several objectives, the same numbers. Hover a cell for its formula with the "
               "numbers filled in.")
# The places of what comes next, in page order: the controls, then the comparison (made now, filled below). On a
# session's first run the ratio maps' place shows an empty chart while the core loads (torch takes seconds on a
# fresh server), so the browser fetches its chart library meanwhile instead of after.
head, top_note, toggles, errors, ratio_slot, grad_slot = (st.container(), st.container(), st.container(),
                                                          st.container(), st.empty(), st.empty())
if not ss.get("lab_drawn"):
    maps_skeleton(ratio_slot)

# the core and its views load after the page's first messages are out
from gspo_viz import OBJECTIVES  # noqa: E402
from gspo_viz.views.plots import (CELL_ROUNDING, DESIGN_WIDTH, TALK_MAPS_HEIGHT, TALK_WIDTH,  # noqa: E402
                                  advantages_table, glossary, heatmap_caption, heatmap_height, heatmap_plan)
from gspo_viz.scenarios.sample import sample_group  # noqa: E402
from gspo_viz.views.style import TABLE_FORMAT, fmt  # noqa: E402
# a shared scenario's text: no remote images, no raw HTML
from gspo_viz.views.text import plain_text, safe_markdown  # noqa: E402
from gspo_viz.ui.cache import (advantages_view, cached_scenario, comparison_view, scenario_error,  # noqa: E402
                               scenario_key)
from gspo_viz.ui.widgets import (OBJECTIVE_NAMES, PLOT_ARGS, clip_legend, library_mapping,  # noqa: E402
                                objective_header, settings_controls)

with head:
    objectives = control("cmp", lambda v, k: st.multiselect(
        "Objectives to compare (up to 4)", OBJECTIVE_NAMES, default=v, key=k, max_selections=4,
        format_func=lambda n: OBJECTIVES[n].title), ["grpo", "gspo", "dual_clip"])
    settings_controls()
    library_mapping(objectives)

# ----------------------------------------------------------------------------------------------- the group
def structural_edit(edit, objectives: list[str]) -> None:
    """Apply a structural edit (add/remove a response or a token) to the tables, or refuse it with a message and
    keep the tables as they are: when it breaks a limit of the scenario files, or turns tables that every objective
    here could run into ones it cannot (e.g. one response left with group advantages)."""
    from gspo_viz.views.tables import EditRefused, tables_to_scenario
    try:
        candidate = tables_to_scenario(*edit(), ss.scenario)
        if not ss.tables_invalid:
            e = scenario_error(candidate, objectives)
            if e is not None:
                raise EditRefused(f"Not applied: the group would be invalid ({e.message})")
    except EditRefused as e:
        st.error(f"{e}. The tables are as they were.", icon=":material/block:")
        return
    replace_tables(candidate)
    if ss.scenario is not candidate:   # tables that were invalid stay so: check them on every run
        ss.invalid_base = ss.version
    st.rerun()


def edit_group(objectives: list[str]) -> None:
    """The editable tables, the add/remove buttons and the sampler (built only while editing is on)."""
    # the tables (and pandas) load when editing is on: a first visit that does not edit does not wait for them
    from gspo_viz.views.tables import (add_response, add_token, remove_response, remove_token, scenario_to_tables,
                                       tables_to_scenario, where_in_tables)
    log_space = control("log", lambda v, k: st.toggle("Edit log-probabilities instead of probabilities", value=v,
                                                      key=k), False)
    mode = "log" if log_space else "p"
    resp_key, tok_key = f"resp_ed_{ss.version}_{mode}", f"tok_ed_{ss.version}_{mode}"
    if tok_key not in ss and not ss.pop("keep_base", False):  # a fresh editor starts from the current scenario
        ss.editor_base = ss.scenario
    base_r, base_t = scenario_to_tables(ss.editor_base, log_space)
    # numbers as text (views/tables.py says why): what is typed, "1e308" included, reaches the parser
    text = st.column_config.TextColumn
    left, right = st.columns([2, 5])
    edited_r = left.data_editor(
        base_r, key=resp_key, hide_index=True, disabled=["response"], num_rows="fixed",
        column_config={"reward": text("reward", help="a number, e.g. 1, 0.5 or 2e-3"),
                       "advantage": text("advantage", help="optional: wins over the computed one"),
                       "truncated": st.column_config.CheckboxColumn("truncated")})
    value_cols = ["logp_old", "logp_new"] if log_space else ["p_old", "p_new"]
    edited_t = right.data_editor(
        base_t, key=tok_key, hide_index=True, disabled=["response", "t"], num_rows="fixed", height=300,
        column_config={c: text(c, help="a number, e.g. 0.25 or 1e-5" if c.startswith("p") else
                               "a number <= 0, e.g. -1.386 or -2e-3") for c in value_cols})
    # Check the tables when they were edited, or when they came from a structural edit of tables that were
    # already invalid (ss.invalid_base marks that editor): the charts keep the last valid group, with a message.
    base_invalid = ss.get("invalid_base") == ss.version
    ss.tables_invalid = False
    if base_invalid or not (edited_r.equals(base_r) and edited_t.equals(base_t)):
        candidate = tables_to_scenario(edited_r, edited_t, ss.scenario)
        if candidate != ss.scenario:
            e = scenario_error(candidate, objectives)
            if e is not None:
                ss.tables_invalid = True
                where = where_in_tables(e.where, edited_t)
                st.error(f"{f'**{where}**: ' if where else ''}{e.message}. The charts keep showing the last valid "
                         "group; your entries are kept.", icon=":material/error:")
            else:
                set_scenario(candidate, replace_tables=False)

    b1, b2, b3, b4, b5 = st.columns([1.2, 1.2, 1, 1.1, 1.1])
    responses = list(edited_r["response"])
    target = b1.selectbox("Response", responses, key=f"target_{ss.version}", label_visibility="collapsed",
                          format_func=lambda i: f"response {i}")
    edits = [(b2.button("Add response", icon=":material/add:"), lambda: add_response(edited_r, edited_t)),
             (b3.button("Remove it", icon=":material/remove:", disabled=len(responses) <= 1),
              lambda: remove_response(edited_r, edited_t, target)),
             (b4.button("Add token", icon=":material/add:"), lambda: (edited_r, add_token(edited_t, target))),
             (b5.button("Remove token", icon=":material/remove:"), lambda: (edited_r, remove_token(edited_t, target)))]
    for clicked, edit in edits:
        if clicked:
            structural_edit(edit, objectives)

    st.markdown("**Sample a group**: random old probabilities, a new policy drifted by the chosen amount (seeded).")
    s1, s2, s3, s4 = st.columns(4)
    G = s1.number_input("G (answers)", 2, 32, 8, key="sample_G")
    drift = s2.number_input("drift", 0.0, 3.0, 0.3, step=0.05, key="sample_drift")
    seed = s3.number_input("seed", 0, 10_000, 0, key="sample_seed")
    if s4.button("Sample a group", icon=":material/casino:"):
        set_scenario(sample_group(int(G), 8, 32, float(drift), int(seed)))
        st.rerun()

# ----------------------------------------------------------------------------------------------- side by side
def compare(objectives: list[str]) -> None:
    """The objectives' maps side by side (two figures, in the places made at the top), then each objective's
    numbers and sentence, the advantages panel and every number."""
    key = scenario_key(ss.scenario)
    scenario = cached_scenario(key)
    if ss.get("tables_invalid"):
        top_note.warning("The tables above hold an entry that is not valid: the charts show the last valid group.",
                         icon=":material/history:")
    plan = heatmap_plan([len(r.tokens) for r in scenario.responses])
    left, right = (None, None) if TALK else toggles.columns([2, 3], vertical_alignment="bottom")   # talk: no widgets
    shared = control("same_scale", lambda v, k: left.toggle(
        "One colour scale for all objectives", value=v, key=k,
        help="On: a colour means the same number in every objective's map (the scale reaches the largest value of "
             "them all). Off: each objective's map has its own scale."), True)
    page = 0
    if plan.pages > 1:
        page = control("rows", lambda v, k: right.selectbox(
            "Responses in the heatmaps", range(plan.pages), key=k, format_func=plan.page_label,
            index=min(v, plan.pages - 1) if isinstance(v, int) and v >= 0 else 0), 0)
        page = within(page, plan.pages)        # a talk scene's value: no widget has checked it
    height = TALK_MAPS_HEIGHT if TALK else heatmap_height(len(plan.page_rows(page)))
    view = comparison_view(key, objectives, height, page, bool(shared), TALK_WIDTH if TALK else DESIGN_WIDTH)
    for name, e in view.errors.items():
        errors.error(f"{OBJECTIVES[name].title} cannot run on this group: {e}", icon=":material/error:")
    results = view.results
    if not results:
        ratio_slot.empty()
        return
    ratio_slot.plotly_chart(view.ratio_figure, key="ratio_maps", **PLOT_ARGS)
    grad_slot.plotly_chart(view.grad_figure, key="grad_maps", **PLOT_ARGS)
    ss.lab_drawn = True
    notes = [heatmap_caption(plan, page)]
    if (view.grad_figure.layout.meta or {}).get("cells") == "numbers":
        notes.append(f"The cells print {CELL_ROUNDING} (the hover has 6, the table below 4 decimals).")
    if not shared and len(results) > 1:
        notes.append("Each objective's map has its own colour scale: compare colours within one map only.")
    words = glossary(list(results.values()))
    if words:
        notes.append("The tokens in English: " + " · ".join(f"{plain_text(t)} “{g}”" for t, g in words) + ".")
    notes = [n for n in notes if n]
    if notes:
        st.caption(" ".join(notes))
    clip_legend(list(results))

    stacked = len(results) > 2      # two metrics side by side would be cut in a quarter of a 1280 px page
    for col, (name, res) in zip(st.columns(len(results)), results.items()):
        with col:
            objective_header(name)
            ex = res.explanation
            m1, m2 = (st.container(), st.container()) if stacked else st.columns(2)
            m1.metric("loss = −J", fmt(ex.loss), help=f"full precision: {ex.loss!r}" + (
                "" if OBJECTIVES[name].has_surrogate else ". A surrogate −Σ w·sg[weight]·A·log π: only its gradient "
                                                          "is the objective's; not comparable with other losses"))
            label = "sequences clipped" if "seq_clip_fraction" in ex.metrics else "tokens clipped"
            m2.metric(label, f"{100 * ex.metrics.get('seq_clip_fraction', ex.metrics['clip_fraction']):.1f}%")
            st.markdown(safe_markdown(view.sentences[name]))   # the sentence quotes tokens: no remote images

    # ----------------------------------------------------------------------------------------------- advantages
    st.subheader("Advantages: rewards → mean, std → A")
    first = next(iter(results.values()))
    if first.rewards is not None:
        panel, figure = advantages_view(key, first.explanation.objective)
        left, right = st.columns([3, 2])
        left.plotly_chart(figure, key="advantages", **PLOT_ARGS)
        right.markdown(f"mean R̄ = **{fmt(panel['mean'])}**, std over G − 1 = **{fmt(panel['std_sample'])}**, "
                       f"over G = **{fmt(panel['std_population'])}**, ε_std = {first.explanation.settings.adv_eps:g} (added to the std; not the clip ε).")
        if first.no_signal:
            right.warning("All rewards are equal: every advantage is 0, so this group carries no learning signal. "
                          "DAPO's dynamic sampling would drop it and sample another.", icon=":material/block:")
        table = advantages_table(panel)
        if isinstance(table, str):      # a small group: a plain table (no data-grid to load in the browser)
            st.markdown(table)
        else:
            st.dataframe(table, column_config={c: st.column_config.NumberColumn(format=TABLE_FORMAT)
                                               for c in table}, width="stretch")
    else:
        st.caption("The advantages are given per response in the scenario, so there are no rewards to compare here.")

    # ----------------------------------------------------------------------------------------------- every number
    st.subheader("Every number")
    if control("all_numbers", lambda v, k: st.toggle("Show every number, per token and objective (4 decimals; the "
                                                     "download has full precision)", value=v, key=k), False):
        from gspo_viz.views.tables import MAX_TABLE_ROWS, rows_shown, token_frame
        frame = token_frame(results)
        response = None
        if len(frame) > MAX_TABLE_ROWS:
            response = st.selectbox("Response to show", range(1, len(scenario.responses) + 1),
                                    key="all_numbers_response", format_func=lambda i: f"response {i}")
        shown, note = rows_shown(frame, response)
        st.dataframe(shown, hide_index=True, width="stretch",
                     column_config={c: st.column_config.NumberColumn(format=TABLE_FORMAT)
                                    for c in shown.columns if shown[c].dtype.kind == "f"})
        if note:
            st.caption(note)
        st.download_button("Download as CSV",   # made when clicked: a large group's CSV is tens of MB
                           lambda: frame.to_csv(index=False, float_format="%.17g").encode("utf-8"),
                           file_name="token_lab.csv", mime="text/csv", icon=":material/download:")
        for name, res in results.items():
            st.caption(f"{OBJECTIVES[name].title}: " + "; ".join(res.conventions))


# a talk shows the view only: no editor, no notes (the scene bar says what to look at)
with head:
    if not TALK and control("edit", lambda v, k: st.toggle("Edit the group: probabilities, rewards, responses and "
                                                           "tokens", value=v, key=k), False):
        with st.container(border=True):
            edit_group(objectives)
    if not TALK and ss.scenario.get("notes"):
        with st.expander(safe_markdown(ss.scenario.get("title") or "Notes"), expanded=False):
            st.markdown(safe_markdown(ss.scenario["notes"]))
if objectives:
    compare(objectives)
else:
    ratio_slot.empty()
    st.info("Choose at least one objective to compare.")
