"""The app in a real browser: `streamlit run app.py` on a free localhost port, driven by Playwright with the system
Chromium. Opens a page's link first (a fresh server), every page, edits one value, reopens the copied URL in a new
browser context, and saves a screenshot of each page to artifacts/screenshots/."""
import json
import time
import urllib.parse
from pathlib import Path

import pytest

from gspo_viz import parse_scenario, run_scenario
from gspo_viz.views.style import fmt

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
SHOTS = ROOT / "artifacts" / "screenshots"
PAGES = {"token_lab": "Token Lab", "clip_explorer": "Clip Explorer", "length_aggregation": "Length & Aggregation",
         "formula_checker": "Formula Checker", "": "gspo-viz"}

playwright = pytest.importorskip("playwright.sync_api", reason="pip install -r requirements-test.txt (playwright)")
if not Path(CHROMIUM).exists():
    pytest.skip("no Chromium at /usr/bin/chromium: install it with `apt-get install -y chromium` to run the "
                "browser tests", allow_module_level=True)


def open_page(context, url):
    page = context.new_page()
    page.set_viewport_size({"width": 1500, "height": 3000})
    page.goto(url)
    page.wait_for_selector("h1", timeout=30_000)
    page.wait_for_load_state("networkidle")
    return page


def metric_values(page):
    return [m.inner_text() for m in page.locator('[data-testid="stMetricValue"]').all()]


def wait_for_metric(page, expected, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if expected in metric_values(page):
            return
        time.sleep(0.1)
    raise AssertionError(f"metric {expected!r} never appeared; shown: {metric_values(page)}")


def test_pages_edit_and_copied_link(server, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context()
    # 1. A page's link on a fresh server must still go through app.py (sidebar, shared scenario, link state).
    page = open_page(context, f"{server}/token_lab")
    page.get_by_text("Scenario", exact=True).wait_for(timeout=20_000)
    assert page.locator("h1").first.inner_text() == "Token Lab"

    # 2. Every page renders without an exception; a screenshot of each.
    for path, title in PAGES.items():
        p = open_page(context, f"{server}/{path}")
        assert p.locator("h1").first.inner_text() == title
        assert p.locator('[data-testid="stException"]').count() == 0, path
        p.wait_for_timeout(500)
        p.screenshot(path=str(SHOTS / f"{path or 'home'}.png"), full_page=True)
        p.close()

    # 3. Edit one value (Dual-Clip c = 5) and see Dual-Clip's loss become the core's value for c = 5.
    scenario = json.loads((ROOT / "examples/default_group.json").read_text())
    before = fmt(run_scenario(parse_scenario(scenario), "dual_clip").explanation.loss)
    scenario["settings"]["dual_clip_c"] = 5.0
    after = fmt(run_scenario(parse_scenario(scenario), "dual_clip").explanation.loss)
    assert before != after
    wait_for_metric(page, before)
    # an unchanged shipped example is linked by name (example=NAME); any edit puts the scenario itself in (s=)
    page.wait_for_function("() => window.location.search.includes('example=default_group')")
    search_before = page.evaluate("() => window.location.search")
    box = page.get_by_role("spinbutton", name="Dual-Clip c")
    box.fill("5")
    box.press("Enter")
    wait_for_metric(page, after)
    # the link is rewritten at the end of the run, after the metric appears: wait for it, or we copy the old link
    page.wait_for_function("(old) => window.location.search !== old", arg=search_before)
    copied = page.url
    page.screenshot(path=str(SHOTS / "token_lab_edited.png"), full_page=True)

    # 4. The copied URL in a fresh browser context reopens the same view.
    other = browser.new_context()
    again = open_page(other, copied)
    wait_for_metric(again, after)
    assert again.get_by_role("spinbutton", name="Dual-Clip c").input_value() == "5.00"
    assert metric_values(again) == metric_values(page)
    other.close()
    context.close()


def test_typing_1e308_in_the_browser_reaches_the_parser(server, browser):
    """Streamlit's number cell editor (glide-data-grid's, behind st.column_config.NumberColumn) drops the 'e' while
    one types: "1e308" arrived as 1308. The reward column is a text column now: what is typed reaches the parser."""
    page = browser.new_page(viewport={"width": 1500, "height": 1600})
    page.goto(f"{server}/token_lab?" + urllib.parse.urlencode({"v": json.dumps({"edit": True})}))
    grid = page.locator('[data-testid="stDataFrame"]').first      # the responses table
    grid.wait_for(timeout=60_000)
    page.get_by_role("button", name="Add response").wait_for(timeout=60_000)
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 20, box["y"] + 35 + 17)            # response 1, first column
    page.wait_for_timeout(300)
    page.keyboard.press("ArrowRight")                               # → its reward
    page.wait_for_timeout(300)
    page.keyboard.type("1e308", delay=50)
    page.wait_for_timeout(300)
    page.keyboard.press("Enter")
    message = page.get_by_text("responses table, response 1, column reward: 1e+308")  # not 1308
    message.wait_for(timeout=60_000)
    assert "The charts keep showing the last valid group" in message.inner_text()
    page.close()


def test_a_batch_uploaded_in_the_browser_pages_through_its_groups(server, browser, tmp_path):
    """A JSONL batch with two groups, uploaded in the sidebar: the first group is shown (its GRPO loss is the
    core's), and ▶ shows the next one."""
    from gspo_viz.scenarios.batches import read_batch, to_jsonl
    groups = {"q1": [{"logp_old": [-1.0, -2.0], "logp_new": [-0.9, -2.1], "reward": 1.0},
                     {"logp_old": [-1.0], "logp_new": [-1.2], "reward": 0.0}],
              "q2": [{"logp_old": [-0.5], "logp_new": [-0.1], "reward": 1.0},
                     {"logp_old": [-0.7, -0.1], "logp_new": [-0.6, -0.3], "reward": 0.0},
                     {"logp_old": [-0.2], "logp_new": [-0.3], "reward": 1.0}]}
    f = tmp_path / "run.jsonl"
    f.write_text(to_jsonl(groups))
    batch = read_batch(f.read_bytes(), "run.jsonl")
    losses = [fmt(run_scenario(parse_scenario(batch.scenario(g)), "grpo").explanation.loss) for g in groups]
    assert losses[0] != losses[1]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{server}/token_lab")
    page.locator('[data-testid="stSidebar"] input[type="file"]').first.set_input_files(str(f))
    page.get_by_text("Imported run.jsonl: 2 groups").wait_for(timeout=30_000)
    wait_for_metric(page, losses[0])
    page.get_by_role("button", name="▶").click()
    wait_for_metric(page, losses[1])
    page.close()
