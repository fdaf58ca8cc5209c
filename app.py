"""gspo-viz app entry: routes to the pages (st.navigation) and is itself the landing page. Layout only."""
import importlib
import os
import threading
import time

import streamlit as st

from gspo_viz.toy.foreground import FOREGROUND
from gspo_viz.ui.state import PAGE_FILES, boot, show_flash, sync_url
from gspo_viz.scenarios.talks import SCENE_PAGES
from gspo_viz.ui.talk import in_talk, talk_bar, talk_sidebar
from gspo_viz.ui.widgets import scenario_sidebar
from gspo_viz.views.text import safe_markdown

PAGES = PAGE_FILES


def landing():
    st.title("gspo-viz")
    st.markdown("A formula-faithful look at the objectives that train LLMs with reinforcement learning: importance "
                "ratios per token and per sequence, clipping decisions, gradient weights, advantages and losses, all "
                "computed by one tested core.")
    st.subheader("Three ways in")
    a, b, c = st.columns(3)
    with a:
        st.markdown("**Giving a talk**")
        st.caption("Present the ready talk, ten scenes stepped with the arrow keys or a clicker, or show any view in "
                   "talk mode (no controls, large type, charts first) from the sidebar's Talk section, where you can "
                   "also build your own talk from views and save it.")
        st.markdown("[:material/slideshow: GRPO → GSPO → Dual-Clip in ten scenes](?mode=talk&talk=grpo_gspo_dual_clip)")
        st.page_link(PAGES["token_lab"], label="Token Lab", icon=":material/grid_on:")
        st.page_link(PAGES["clip_explorer"], label="Clip Explorer", icon=":material/show_chart:")
        st.page_link(PAGES["train"], label="Train a toy policy live", icon=":material/model_training:")
    with b:
        st.markdown("**Learning on your own**")
        st.caption("Nine short lessons: predict first, then see the computed answer and why; the articles' worked "
                   "examples, every step with its numbers, and where a popular explanation gets a step wrong.")
        st.page_link(PAGES["lessons"], label="Lessons", icon=":material/school:")
        st.page_link(PAGES["formula"], label="Formula Checker", icon=":material/calculate:")
        st.page_link(PAGES["length"], label="Length & Aggregation", icon=":material/straighten:")
    with c:
        st.markdown("**Checking a formula by hand**")
        st.caption("Every intermediate number with the conventions stated (std over G − 1, aggregation, clip "
                   "bounds) and where verl and TRL choose differently. Also on the command line:")
        st.code("python -m gspo_viz explain examples/movie_five_tokens.json", language="bash", wrap_lines=True)
    st.subheader("The objectives")
    st.markdown(
        "- **GRPO** (Group Relative Policy Optimization) scores each of G answers against its group, "
        "A = (R − mean)/std, and clips every token's ratio π_θ/π_old to [1 − ε, 1 + ε].\n"
        "- **GSPO** (Group Sequence Policy Optimization) clips one length-normalised ratio per answer, "
        "s_i = (π_θ(y_i)/π_old(y_i))^(1/|y_i|), so all tokens of an answer share one weight.\n"
        "- **Dual-Clip PPO** adds a floor c·A for answers with a negative advantage, so a bad token whose ratio "
        "shot up cannot dominate the update.\n\n"
        "DAPO, Dr.GRPO, GSPO-token, CISPO, GMPO and SAPO are here too.")
    st.caption(f"Current scenario: {safe_markdown(st.session_state.scenario.get('title') or '(untitled)')} "
               f"({len(st.session_state.scenario.get('responses', []))} responses). Change it in the sidebar.")
    # The landing page needs no torch; load the core now, in the background, so the first page opens fast.
    threading.Thread(target=importlib.import_module, args=("gspo_viz.ui.cache",), daemon=True).start()


started = time.perf_counter()
with FOREGROUND.page_run():   # training slots wait while a page runs (gspo_viz/toy/foreground.py)
    st.set_page_config(page_title="gspo-viz", page_icon=":material/insights:", layout="wide")
    boot()                    # the link's scenario, controls and talk, once per session
    routes = {key: st.Page(PAGES[key], title=title, icon=icon) for key, title, icon in [
        ("token_lab", "Token Lab", ":material/grid_on:"), ("clip_explorer", "Clip Explorer", ":material/show_chart:"),
        ("length", "Length & Aggregation", ":material/straighten:"),
        ("formula", "Formula Checker", ":material/calculate:"), ("train", "Train", ":material/model_training:"),
        ("lessons", "Lessons", ":material/school:")]}
    page = st.navigation([st.Page(landing, title="Home", icon=":material/home:", default=True), *routes.values()],
                         position="hidden" if in_talk() else "sidebar")
    page_key = next((key for key, p in routes.items() if p.url_path == page.url_path), None)
    if in_talk():
        talk_bar(PAGES, page_key)   # first: it sends the viewer to the scene's page, before any message shows
    show_flash()
    if not in_talk() and (page_key is None or page_key in SCENE_PAGES):   # the pages that show the shared scenario
        scenario_sidebar()
        with st.sidebar:
            talk_sidebar(page_key)
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
