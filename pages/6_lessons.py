"""Lessons: nine short lessons for self-study. Each shows a small group, asks for a prediction, then reveals the core's
answer beside it and why, from the numbers; the learner changes the numbers and the answer follows.

Layout only: gspo_viz.lessons builds each lesson's scenario, question, answer and sentences from run_scenario results.
The lesson shown, what was completed and each lesson's numbers are controls, so they live in the link."""
import pandas as pd
import streamlit as st

from gspo_viz import ScenarioError
from gspo_viz.lessons import LESSONS, completed, fingerprint, grade, group_rows, run_case
from gspo_viz.ui.cache import objective_result, scenario_key
from gspo_viz.ui.state import control, require_app, set_scenario
from gspo_viz.ui.widgets import PLOT_ARGS
from gspo_viz.views.style import TABLE_FORMAT
from gspo_viz.views.text import plain_text, safe_markdown

require_app()

ss = st.session_state
widget_keys: dict = {}     # control key → its widget's key this run (a button moves a control through it)


def remember(make):
    """make(value, key) that also notes the widget key of its control."""
    def wrapped(value, key, control_key):
        widget_keys[control_key] = key
        return make(value, key)
    return wrapped


def move(control_key: str, value, widget_key) -> None:
    """Button callback: set a control's value, and its widget's own value (deleting the widget's state instead left
    the browser's copy of the old value, which the next click on anything sent back: Next, then a prediction,
    returned to the lesson before)."""
    ss.ctl[control_key] = value
    if widget_key is not None:
        ss[widget_key] = value


def ctl(control_key: str, make, default):
    return control(control_key, lambda v, k: remember(make)(v, k, control_key), default)


def run(data: dict, name: str):
    return objective_result(scenario_key(data), name)[0]


def on_reveal(lesson_key: str, numbers: str, prediction_key: str) -> None:
    ss.setdefault("ls_reveals", {})[lesson_key] = {"for": numbers, "prediction": ss.get(prediction_key)}
    try:
        done = completed(ss.ctl.get("ls_done", []))
    except ValueError:
        done = []
    ss.ctl["ls_done"] = completed(done + [lesson_key])


def bullets(items) -> str:
    """Markdown bullets; an item (point, [details]) gets its details as a nested list."""
    out = []
    for item in items:
        head, details = (item, []) if isinstance(item, str) else item
        out += [f"- {safe_markdown(head)}"] + [f"    - {safe_markdown(d)}" for d in details]
    return "\n".join(out)


# ----------------------------------------------------------------------------------------------- which lesson
st.title("Lessons")
st.caption("Nine short lessons, in order: read the numbers, predict, press **Reveal** to see the computed answer "
           "beside yours and why; then change the numbers and predict again. Your place and the lessons you completed "
           "are kept in the link. The lessons use their own small groups, not the sidebar's scenario.")

done = control("ls_done", lambda v, k: completed(v), [])
n = len(LESSONS)


pick, back, forward = st.columns([4, 1, 1], vertical_alignment="bottom")
with pick:
    index = ctl("ls_lesson", lambda v, k: st.selectbox("Lesson", range(n), index=v, key=k,
                                                       format_func=lambda j: f"{j + 1}. {LESSONS[j].title}"), 0)
lesson = LESSONS[index]
back.button("Previous", icon=":material/arrow_back:", disabled=index == 0, width="stretch", key="ls_prev_top",
            on_click=move, args=("ls_lesson", index - 1, widget_keys.get("ls_lesson")))
forward.button("Next", icon=":material/arrow_forward:", disabled=index == n - 1, width="stretch", key="ls_next_top",
               on_click=move, args=("ls_lesson", index + 1, widget_keys.get("ls_lesson")))
finished = ", ".join(f"✓ {k + 1}" for k, one in enumerate(LESSONS) if one.key in done) or "none yet"
st.progress(len(done) / n, text=f"Lesson {index + 1} of {n} · completed {len(done)} of {n}: {finished}")

st.header(f"{index + 1}. {lesson.title}" + (" ✓" if lesson.key in done else ""))
st.markdown(safe_markdown(lesson.goal))

# ----------------------------------------------------------------------------------------------- the numbers
def knob_widget(knob, value, key):
    if not knob.valid(value):        # state.control falls back to the default with a message naming the control
        raise ValueError(f"{knob.label}: {value!r} is not one of its values")
    if knob.kind == "slider":
        kind = int if isinstance(knob.step, int) else float
        return st.slider(knob.label, kind(knob.low), kind(knob.high), kind(value), kind(knob.step), key=key)
    if knob.kind == "choice" and not knob.labels:
        return st.select_slider(knob.label, knob.options, value=value, key=key)
    if knob.kind == "choice" and len(knob.options) <= 2:
        return st.radio(knob.label, knob.options, index=knob.options.index(value), key=key, horizontal=True,
                        format_func=knob.label_of)
    if knob.kind == "choice":
        return st.selectbox(knob.label, knob.options, index=knob.options.index(value), key=key,
                            format_func=knob.label_of)
    if knob.kind == "many":
        return st.multiselect(knob.label, knob.options, default=value, key=key, format_func=knob.label_of,
                              placeholder="none")
    return st.number_input(knob.label, int(knob.low), int(knob.high), int(value), 1, key=key)


numbers_area = st.container()      # filled once the knobs below have given the numbers
knobs_area, predict_area = st.columns(2, gap="medium")
with knobs_area:
    with st.container(border=True, height="stretch"):
        st.markdown("**Change the numbers**")
        raw = {}
        for knob in lesson.knobs:
            ck = f"ls_{lesson.key}_{knob.key}"
            raw[knob.key] = ctl(ck, lambda v, k, knob=knob: knob_widget(knob, v, k), knob.default)
            if knob.kind == "seed":
                st.button("Try another group", icon=":material/casino:", key=f"{ck}_next", on_click=move,
                          args=(ck, int(raw[knob.key]) + 1 if int(raw[knob.key]) < knob.high else int(knob.low),
                                widget_keys.get(ck)))
        record = ss.get("ls_reveals", {}).get(lesson.key)
        follow = record is not None and ctl("ls_follow", lambda v, k: st.toggle(
            "Keep the answer shown while I change the numbers", value=v, key=k,
            help="Off: changing the numbers hides the answer until you predict for them and reveal again."), False)
params = lesson.clean(raw)
try:
    case = run_case(lesson, params, run)
except ScenarioError as e:
    st.error(f"This lesson's group could not be run: {e}", icon=":material/error:")
    st.stop()
numbers = fingerprint(case.params)

with numbers_area:
    st.markdown(bullets(lesson.context(case)))
    frame = pd.DataFrame(group_rows(case))
    st.dataframe(frame, hide_index=True, width="stretch", height=min(38 + 35 * len(frame), 320),
                 column_config={c: st.column_config.NumberColumn(format=TABLE_FORMAT, width="small")
                                for c in frame.columns if frame[c].dtype.kind == "f"}
                 | {"response": st.column_config.NumberColumn("resp", width="small"),
                    "t": st.column_config.NumberColumn(width="small")})
    st.caption("r = p_new/p_old, the token's ratio; A, the advantage the objective uses.")

# ----------------------------------------------------------------------------------------------- predict, reveal
question = lesson.question(case)
shown_here = record is not None and record["for"] == numbers
prediction_key = f"ls_pred_{lesson.key}"
with predict_area:
    with st.container(border=True, height="stretch"):
        st.markdown("**Your prediction**")
        st.caption(safe_markdown(lesson.look))
        locked = shown_here and not follow
        if question.kind == "number":
            prediction = st.number_input(safe_markdown(question.prompt), question.low, question.high, value=None,
                                         step=question.step, key=prediction_key, disabled=locked,
                                         placeholder=f"a number, {question.unit}",
                                         help=f"within ±{question.tolerance:g} of the answer counts as right")
        elif question.kind == "many":
            labels = {c.value: c.label for c in question.choices}
            prediction = st.multiselect(safe_markdown(question.prompt), list(labels), key=prediction_key,
                                        format_func=labels.get, disabled=locked, placeholder="none of them")
        else:
            labels = {c.value: c.label for c in question.choices}
            prediction = st.radio(safe_markdown(question.prompt), list(labels), index=None, key=prediction_key,
                                  format_func=lambda v: plain_text(labels[v]), disabled=locked)
        missing = prediction is None
        st.button("Reveal", type="primary", icon=":material/visibility:", key="ls_reveal", disabled=missing or locked,
                  on_click=on_reveal, args=(lesson.key, numbers, prediction_key))
        if missing and not locked:
            st.caption("Make your prediction first.")
        verdict_area = st.empty()    # right or not, where the learner pressed Reveal

if record is not None and (shown_here or follow):
    reveal = lesson.reveal(case)
    said = record["prediction"] if shown_here and not follow else prediction
    right_now = grade(question, said, reveal.answer)
    if shown_here:
        record["right"] = grade(question, record["prediction"], reveal.answer)
    verdict_area.markdown(":green[**Right.**] The answer and why are below." if right_now else
                          ":red[**Not right.**] The computed answer and why are below.")
    st.subheader("The answer, computed")
    mine, computed = st.columns(2)
    with mine:
        verdict = st.success if right_now else st.error
        diff = question.differences(said, reveal.answer)
        verdict(f"**Your prediction**: {plain_text(question.label(said))}. "
                + ("Right." if right_now else "Not right" + (f": {plain_text(diff)}." if diff else ".")),
                icon=":material/check:" if right_now else ":material/close:")
    computed.info(f"**Computed**: {safe_markdown(reveal.answer_text)}.", icon=":material/calculate:")
    st.markdown("**Why, from the numbers**")
    st.markdown(bullets(reveal.explanation))
    for heading, steps in reveal.steps:
        with st.expander(safe_markdown(heading)):
            for k, step in enumerate(steps, start=1):
                a, b = st.columns([1, 3])
                a.markdown(f"**{k}.** {step.label}")
                b.latex(step.latex)
    for start in range(0, len(reveal.figures), reveal.per_row):
        row = reveal.figures[start:start + reveal.per_row]
        for k, (col, fig) in enumerate(zip(st.columns(reveal.per_row), row)):
            col.plotly_chart(fig, key=f"ls_fig_{lesson.key}_{start + k}", **PLOT_ARGS)
    if reveal.figure_note:
        st.caption(reveal.figure_note)
    st.container(border=True).markdown(f":material/lightbulb: **Takeaway**: {safe_markdown(lesson.takeaway)}")
elif record is not None:
    was = {True: " Your prediction then was right for those numbers.",
           False: " Your prediction then was not right for those numbers."}.get(record.get("right"), "")
    st.info(f"The numbers changed since you revealed this lesson.{was} Predict for these numbers and press Reveal "
            "(or turn on “Keep the answer shown” to watch the answer follow the numbers).", icon=":material/refresh:")

# ----------------------------------------------------------------------------------------------- onwards
st.divider()
b1, b2, b3 = st.columns([1, 1, 2])
b1.button("Previous lesson", icon=":material/arrow_back:", disabled=index == 0, key="ls_prev_bottom",
          on_click=move, args=("ls_lesson", index - 1, widget_keys.get("ls_lesson")))
b2.button("Next lesson", icon=":material/arrow_forward:", disabled=index == n - 1, key="ls_next_bottom",
          on_click=move, args=("ls_lesson", index + 1, widget_keys.get("ls_lesson")))
if b3.button("Open this group in the Token Lab", icon=":material/open_in_new:", key="ls_open"):
    set_scenario(case.data)
    ss.ctl["cmp"] = list(lesson.objectives)[:4]
    st.switch_page("pages/1_token_lab.py")
