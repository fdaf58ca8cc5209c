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
                  "Giving a talk", "Working through an example", "Checking a formula by hand"):
        assert words in text
    links = {p.proto.page: p.proto.label for p in at.get("page_link")}
    assert links == {"token_lab": "Token Lab", "clip_explorer": "Clip Explorer", "formula_checker": "Formula Checker",
                     "length_aggregation": "Length & Aggregation", "train": "Train a toy policy live"}
    assert "python -m gspo_viz explain" in at.code[0].value
    assert set(at.query_params) == {"s", "v"}  # the view is in the link from the first run
