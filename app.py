"""gspo-viz app entry: routes to the pages (st.navigation) and is itself the landing page. Layout only."""
import importlib
import os
import threading
import time

import streamlit as st

from gspo_viz.toy.foreground import FOREGROUND
from gspo_viz.ui.state import boot, show_flash, sync_url
from gspo_viz.ui.widgets import scenario_sidebar
from gspo_viz.views.text import safe_markdown

PAGES = {
    "token_lab": "pages/1_token_lab.py",
    "clip_explorer": "pages/2_clip_explorer.py",
    "length": "pages/3_length_aggregation.py",
    "formula": "pages/4_formula_checker.py",
    "train": "pages/5_train.py",
}


def landing():
    st.title("gspo-viz")
    st.markdown(
        "A formula-faithful look at the objectives that train LLMs with reinforcement learning: importance ratios "
        "per token and per sequence, clipping decisions, gradient weights, advantages and losses, all computed by "
        "one tested core.\n\n"
        "- **GRPO** (Group Relative Policy Optimization) scores each of G answers against its group, "
        "A = (R − mean)/std, and clips every token's ratio π_θ/π_old to [1 − ε, 1 + ε].\n"
        "- **GSPO** (Group Sequence Policy Optimization) clips one length-normalised ratio per answer, "
        "s_i = (π_θ(y_i)/π_old(y_i))^(1/|y_i|), so all tokens of an answer share one weight.\n"
        "- **Dual-Clip PPO** adds a floor c·A for answers with a negative advantage, so a bad token whose ratio "
        "shot up cannot dominate the update.\n\n"
        "DAPO, Dr.GRPO, GSPO-token, CISPO, GMPO and SAPO are here too.")
    st.subheader("Three ways in")
    a, b, c = st.columns(3)
    with a:
        st.markdown("**Giving a talk**")
        st.caption("Load a preset from the sidebar, compare GRPO, GSPO and Dual-Clip side by side, and copy the "
                   "link: it reopens exactly this view.")
        st.page_link(PAGES["token_lab"], label="Token Lab", icon=":material/grid_on:")
        st.page_link(PAGES["clip_explorer"], label="Clip Explorer", icon=":material/show_chart:")
        st.page_link(PAGES["train"], label="Train a toy policy live", icon=":material/model_training:")
    with b:
        st.markdown("**Working through an example**")
        st.caption("The articles' worked examples, every step with its numbers, and where a popular explanation "
                   "gets a step wrong.")
        st.page_link(PAGES["formula"], label="Formula Checker", icon=":material/calculate:")
        st.page_link(PAGES["length"], label="Length & Aggregation", icon=":material/straighten:")
    with c:
        st.markdown("**Checking a formula by hand**")
        st.caption("Every intermediate number with the conventions stated (std over G − 1, aggregation, clip "
                   "bounds), matching verl and TRL. Also on the command line:")
        st.code("python -m gspo_viz explain examples/movie_five_tokens.json", language="bash", wrap_lines=True)
    st.caption(f"Current scenario: {safe_markdown(st.session_state.scenario.get('title') or '(untitled)')} "
               f"({len(st.session_state.scenario.get('responses', []))} responses). Change it in the sidebar.")
    # The landing page needs no torch; load the core now, in the background, so the first page opens fast.
    threading.Thread(target=importlib.import_module, args=("gspo_viz.ui.cache",), daemon=True).start()


started = time.perf_counter()
with FOREGROUND.page_run():   # training slots wait while a page runs (gspo_viz/toy/foreground.py)
    st.set_page_config(page_title="gspo-viz", page_icon=":material/insights:", layout="wide")
    page = st.navigation([
        st.Page(landing, title="Home", icon=":material/home:", default=True),
        st.Page(PAGES["token_lab"], title="Token Lab", icon=":material/grid_on:"),
        st.Page(PAGES["clip_explorer"], title="Clip Explorer", icon=":material/show_chart:"),
        st.Page(PAGES["length"], title="Length & Aggregation", icon=":material/straighten:"),
        st.Page(PAGES["formula"], title="Formula Checker", icon=":material/calculate:"),
        st.Page(PAGES["train"], title="Train", icon=":material/model_training:"),
    ])
    boot()
    show_flash()
    scenario_sidebar()
    st.session_state.in_app_run = True  # pages check this (require_app) to know they run inside app.py
    try:
        page.run()
    finally:
        st.session_state.in_app_run = False
    sync_url()
    st.session_state.last_run_ms = 1e3 * (time.perf_counter() - started)  # read by benchmarks/bench_pages.py
    if os.environ.get("GSPO_VIZ_RUN_LOG"):  # opt-in, for benchmarks/bench_classroom.py: one line per run
        with open(os.environ["GSPO_VIZ_RUN_LOG"], "a", encoding="utf-8") as log:
            log.write(f"{page.url_path or 'home'}\t{st.session_state.last_run_ms:.3f}\n")
