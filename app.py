"""gspo-viz app entry: routes to the pages and is itself the landing page (layout only; numbers come from gspo_viz)."""
from pathlib import Path

import pandas as pd
import streamlit as st

from gspo_viz import OBJECTIVES, load_scenario, run_scenario
from gspo_viz.report import token_rows

EXAMPLES = Path(__file__).parent / "examples"


def landing():
    st.title("gspo-viz")
    st.markdown(
        "An interactive, formula-faithful look at the objectives used to train LLMs with reinforcement learning: "
        "importance ratios per token and per sequence, clipping decisions, gradient weights, advantages and losses.\n\n"
        "- **GRPO** scores each of G answers against its group (advantage = reward minus the group mean, over the "
        "std) and clips every token's ratio π_θ/π_old to [1−ε, 1+ε].\n"
        "- **GSPO** clips one length-normalised ratio per answer, s_i = (π_θ(y_i)/π_old(y_i))^(1/|y_i|), so all "
        "tokens of an answer share one weight.\n"
        "- **Dual-Clip PPO** adds a floor c·A for answers with negative advantage, so one token whose ratio shot "
        "up cannot dominate the update."
    )
    st.subheader("A worked example, computed live")
    files = sorted(EXAMPLES.glob("*.json"))
    col1, col2 = st.columns([2, 1])
    path = col1.selectbox("Example", files, format_func=lambda p: load_scenario(p).title)
    scn = load_scenario(path)
    names = list(OBJECTIVES)
    objective = col2.selectbox("Objective", names, index=names.index(scn.settings.objective),
                               format_func=lambda n: OBJECTIVES[n].title)
    res = run_scenario(scn, objective)
    st.markdown(scn.notes)
    table = pd.DataFrame(token_rows(res))
    if res.explanation.seq_ratio is None:
        table = table.drop(columns=["seq ratio"])
    st.dataframe(table, hide_index=True, width="stretch")
    st.metric("loss = −J", f"{res.explanation.loss:.6g}")
    st.markdown("**Conventions**\n" + "\n".join(f"- {c}" for c in res.conventions))


st.navigation([st.Page(landing, title="Home", icon=":material/home:", default=True)]).run()
