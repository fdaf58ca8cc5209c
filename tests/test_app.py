"""The Streamlit landing page (app.py) loads and shows the core's numbers."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from gspo_viz import load_scenario, run_scenario

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def app():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception
    return at


def test_landing_page_says_what_the_tool_is(app):
    assert app.title[0].value == "gspo-viz"
    text = " ".join(m.value for m in app.markdown)
    for word in ("GRPO", "GSPO", "Dual-Clip"):
        assert word in text


def test_switching_objective_shows_the_core_numbers(app):
    examples = sorted((ROOT / "examples").glob("*.json"))
    movie = next(p for p in examples if p.stem == "movie_five_tokens")
    app.selectbox[0].select(movie).run()
    app.selectbox[1].select("dapo").run()
    assert not app.exception
    expected = run_scenario(load_scenario(movie), "dapo").explanation.loss
    assert app.metric[0].value == f"{expected:.6g}"
    table = app.dataframe[0].value
    assert list(table["clip"]) == ["upper", "upper", "none", "none", "upper"]  # 1.333, 1.25, 1.5 > 1.28
