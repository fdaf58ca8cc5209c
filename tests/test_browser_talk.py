"""Talk mode in a real browser at a projector's 1280×720: the shipped talk's link shows the comparison charts in the
first screen, and the arrow keys and a clicker's Page Down step through the scenes. Uses tests/test_browser.py's
server fixture (a fresh `streamlit run app.py`); skipped without Chromium."""
from pathlib import Path

import pytest

from gspo_viz.scenarios.talks import shipped_talk
from tests.test_browser import SHOTS  # the server and browser fixtures are tests/conftest.py's

playwright = pytest.importorskip("playwright.sync_api")
TITLE = "[data-testid='stMarkdownContainer'] h3"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PATHS = {"token_lab": "token_lab", "clip_explorer": "clip_explorer", "length": "length_aggregation",
         "formula": "formula_checker"}     # a scene's page and its address (app.py's st.Page url_path)


def scene_title(page):
    return page.locator(f".st-key-talk_title {TITLE}").inner_text(timeout=30_000)


def open_talk(browser, server, width, height):
    """A page at width × height on the shipped talk's link, its first scene's maps drawn."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(f"{server}/?mode=talk&talk=grpo_gspo_dual_clip", wait_until="domcontentloaded")
    page.wait_for_selector(".js-plotly-plot .heatmaplayer", timeout=90_000)
    page.wait_for_timeout(1000)
    return page


def maps_bottom(page, height) -> float:
    """The lower edge of the ratio and the gradient-weight maps, after checking both lie whole in the first screen."""
    charts = page.locator(".js-plotly-plot")
    assert charts.count() >= 2
    bottom = 0
    for k in range(2):
        box = charts.nth(k).bounding_box()
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height, (k, box)
        bottom = max(bottom, box["y"] + box["height"])
    return bottom


def test_a_talk_link_fits_a_projector_and_the_keys_step_through_it(server, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = open_talk(browser, server, 1280, 720)
    assert scene_title(page).startswith("GRPO: each token's ratio")
    assert page.locator("[data-testid='stSidebar']").is_hidden()
    maps_bottom(page, 720)
    page.screenshot(path=str(SHOTS / "talk_scene1_1280x720.png"))

    page.keyboard.press("ArrowRight")
    page.wait_for_url("**/formula_checker?*scene=2*", timeout=60_000)
    page.wait_for_function("() => document.querySelector('.st-key-talk_title h3')?.innerText"
                           ".startsWith('A clipped token')", timeout=60_000)
    page.keyboard.press("PageDown")            # what a presentation clicker sends
    page.wait_for_url("**/clip_explorer?*scene=3*", timeout=60_000)
    page.keyboard.press("ArrowLeft")
    page.wait_for_url("**/formula_checker?*scene=2*", timeout=60_000)
    assert "mode=talk" in page.url and "talk=grpo_gspo_dual_clip" in page.url
    talk = shipped_talk("grpo_gspo_dual_clip", EXAMPLES / "talks", EXAMPLES)
    for k in range(2, len(talk.scenes)):      # the rest of the ten scenes, by the arrow key alone
        page.keyboard.press("ArrowRight")
        page.wait_for_url(f"**/{PATHS[talk.scenes[k].page]}?*scene={k + 1}*", timeout=60_000)
        page.wait_for_function("t => document.querySelector('.st-key-talk_title h3')?.innerText === t",
                               arg=talk.scenes[k].title, timeout=60_000)
    page.wait_for_selector(".js-plotly-plot .heatmaplayer", timeout=60_000)
    page.screenshot(path=str(SHOTS / "talk_scene10_1280x720.png"))
    page.close()


def test_a_talk_fills_a_1920x1080_screen(server, browser):
    """On a 1920×1080 projector the page is scaled up (the talk style sheet's zoom) and the two maps still fit."""
    page = open_talk(browser, server, 1920, 1080)
    assert maps_bottom(page, 1080) > 0.6 * 1080         # the charts use the screen, not a 1280 × 720 corner of it
    page.screenshot(path=str(SHOTS / "talk_scene1_1920x1080.png"))
    page.close()
