"""Formula Checker: one token's computation, every step as a formula with its numbers, and the articles' wrong steps
beside the right ones. Layout only: the steps come from gspo_viz.views.steps."""
import streamlit as st

from gspo_viz import OBJECTIVES, ScenarioError, parse_scenario, run_scenario
from gspo_viz.views.steps import autograd_step, plain_powers, seed_mistakes, token_steps
from gspo_viz.ui.state import DEFAULT_EXAMPLE, control, example_files, require_app, within
from gspo_viz.ui.talk import in_talk
from gspo_viz.ui.widgets import OBJECTIVE_NAMES, objective_header, preset_picker
from gspo_viz.views.style import fmt, gloss
from gspo_viz.views.text import plain_text, safe_markdown  # a shared scenario's text: no remote images, no raw HTML

require_app()

ss = st.session_state
TALK = in_talk()   # a talk's scene: the token and its steps, no title, no pickers, no notes
if not TALK:
    st.title("Formula Checker")
    st.caption("Pick an objective, a response and a token: every step from probabilities to the gradient weight, "
               "with the numbers substituted so you can redo it with a calculator. The last line is autograd's "
               "answer.")
    with st.container(border=True):
        st.markdown("**Worked examples** from the source articles (shared/seeds), with notes on what they get "
                    "right and wrong:")
        w1, w2 = st.columns([4, 1])
        preset_picker("Worked example", [p for p in example_files() if p.name != DEFAULT_EXAMPLE], "fc_example",
                      "Load it", ":material/school:", what="worked example", where=w1, button_where=w2,
                      label_visibility="collapsed")

scenario = parse_scenario(ss.scenario)
default_obj = scenario.settings.objective
c1, c2, c3 = (None, None, None) if TALK else st.columns(3)   # talk: control() draws no widget
name = control("fc_objective", lambda v, k: c1.selectbox("Objective", OBJECTIVE_NAMES, index=OBJECTIVE_NAMES.index(v),
                                                         key=k, format_func=lambda n: OBJECTIVES[n].title),
               default_obj)
i = control("fc_response", lambda v, k: c2.selectbox("Response", list(range(len(scenario.responses))),
                                                     index=min(v, len(scenario.responses) - 1), key=k,
                                                     format_func=lambda j: f"response {j + 1}"), 0)
i = within(i, len(scenario.responses))   # a talk scene's value: no widget has checked it
tokens = scenario.responses[i].tokens
t = control("fc_token", lambda v, k: c3.selectbox("Token", list(range(len(tokens))), index=min(v, len(tokens) - 1),
                                                  key=k, format_func=lambda j: f"t = {j + 1}: “{tokens[j]}”"), 0)

t = within(t, len(tokens))
if TALK:    # the pickers are hidden: say which token the steps are for
    english = gloss(tokens[t])
    st.markdown(f"**Response {i + 1}, token t = {t + 1}: “{plain_text(tokens[t])}”**"
                + (f" ({plain_text(english)})" if english else ""))
elif scenario.notes:
    with st.expander(safe_markdown(f"Notes: {scenario.title}"), expanded=True):
        st.markdown(safe_markdown(scenario.notes))

try:
    res = run_scenario(scenario, name)
except ScenarioError as e:
    st.error(f"{OBJECTIVES[name].title} cannot run on this scenario: {e}", icon=":material/error:")
else:
    objective_header(name)
    steps = token_steps(res, i, t) + [autograd_step(res, i, t)]
    if TALK:   # the punchline first: on a projector the last steps lie below the screen
        st.markdown(f"**{steps[-2].label}: {fmt(steps[-2].value)}** · {steps[-1].label}: {fmt(steps[-1].value)}")
    for k, step in enumerate(steps, start=1):
        # the formula under its label, across the page (long ones fit); a talk has no sidebar: side by side
        left, right = st.columns([1, 4]) if TALK else (st, st)
        left.markdown(f"**{k}.** {step.label}")
        right.latex(step.latex)
    st.caption("Conventions: " + plain_powers("; ".join(res.conventions)))

    mistakes = seed_mistakes(res, i, t)
    if mistakes:
        st.subheader("Where a popular explanation goes wrong")
        for m in mistakes:
            with st.container(border=True):
                st.markdown(f"**{m.title}** · {m.source}")
                wrong, right = st.columns(2)
                wrong.markdown(":red[**as written**]")
                wrong.latex(m.wrong_formula)
                right.markdown(":green[**right**]")
                right.latex(m.right_formula)
                st.caption(m.why)
