"""The landing page (app.py): what the tool is, three ways in, and routing to every page."""
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]


def test_landing_page_says_what_the_tool_is_and_offers_three_ways_in():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception
    assert at.title[0].value == "gspo-viz"
    text = " ".join(m.value for m in at.markdown)
    for words in ("Group Relative Policy Optimization", "Group Sequence Policy Optimization", "Dual-Clip PPO",
                  "Giving a talk", "Learning on your own", "Checking a formula by hand"):
        assert words in text
    links = {p.proto.page: p.proto.label for p in at.get("page_link")}
    assert links == {"token_lab": "Token Lab", "clip_explorer": "Clip Explorer", "formula_checker": "Formula Checker",
                     "length_aggregation": "Length & Aggregation", "train": "Train a toy policy live",
                     "lessons": "Lessons"}
    assert "(?mode=talk&talk=grpo_gspo_dual_clip)" in text     # the ready talk, one click away
    assert "python -m gspo_viz explain" in at.code[0].value
    # the view is in the link from the first run; the default scenario is a shipped example: a short link by name
    assert set(at.query_params) == {"example", "v"} and at.query_params["example"] == "default_group"


def test_the_shared_scenario_sidebar_shows_only_on_pages_that_use_it(navigation_mode):
    """The Lessons and the Train page use groups of their own: a Preset picker or an import there would change
    nothing on the page, so their sidebar has none (it held both before)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.run()
    labels = lambda: {w.label for kind in (at.sidebar.selectbox, at.sidebar.file_uploader) for w in kind}  # noqa: E731
    assert "Preset" in labels()                               # home: the shared scenario
    for page, uses in (("pages/1_token_lab.py", True), ("pages/6_lessons.py", False), ("pages/5_train.py", False),
                       ("pages/4_formula_checker.py", True)):
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
        assert ("Preset" in labels()) is uses, page
        assert ("Load a talk (JSON)" in labels()) is uses, page
