"""Talk mode in a real browser at a projector's 1280×720: the shipped talk's link shows the comparison charts in the
first screen, and the arrow keys and a clicker's Page Down step through the scenes. Uses tests/test_browser.py's
server fixture (a fresh `streamlit run app.py`); skipped without Chromium."""
from pathlib import Path

import pytest

from gspo_viz.scenarios.talks import shipped_talk
from tests.test_browser import CHROMIUM, SHOTS  # the server fixture is tests/conftest.py's

playwright = pytest.importorskip("playwright.sync_api")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]
TITLE = "[data-testid='stMarkdownContainer'] h3"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PATHS = {"token_lab": "token_lab", "clip_explorer": "clip_explorer", "length": "length_aggregation",
         "formula": "formula_checker"}     # a scene's page and its address (app.py's st.Page url_path)


def scene_title(page):
    return page.locator(f".st-key-talk_title {TITLE}").inner_text(timeout=30_000)


def test_a_talk_link_fits_a_projector_and_the_keys_step_through_it(server):
    from playwright.sync_api import sync_playwright
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(f"{server}/?mode=talk&talk=grpo_gspo_dual_clip", wait_until="domcontentloaded")
        page.wait_for_selector(".js-plotly-plot .heatmaplayer", timeout=90_000)
        page.wait_for_timeout(1000)
        assert scene_title(page).startswith("GRPO: each token's ratio")
        assert page.locator("[data-testid='stSidebar']").is_hidden()
        charts = page.locator(".js-plotly-plot")
        assert charts.count() >= 2
        for k in range(2):                         # the ratio and the gradient-weight maps: whole, in the first screen
            box = charts.nth(k).bounding_box()
            assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 720, (k, box)
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
        browser.close()


def test_a_talk_fills_a_1920x1080_screen(server):
    """On a 1920×1080 projector the page is scaled up (the talk style sheet's zoom) and the two maps still fit."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        page.goto(f"{server}/?mode=talk&talk=grpo_gspo_dual_clip", wait_until="domcontentloaded")
        page.wait_for_selector(".js-plotly-plot .heatmaplayer", timeout=90_000)
        page.wait_for_timeout(1000)
        charts = page.locator(".js-plotly-plot")
        bottom = 0
        for k in range(2):
            box = charts.nth(k).bounding_box()
            assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 1080, (k, box)
            bottom = max(bottom, box["y"] + box["height"])
        assert bottom > 0.6 * 1080         # the charts use the screen, not a 1280 × 720 corner of it
        page.screenshot(path=str(SHOTS / "talk_scene1_1920x1080.png"))
        browser.close()
