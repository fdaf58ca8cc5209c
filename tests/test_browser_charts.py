"""Issue 10, item 3, in a real browser: the Token Lab comparing four objectives at a projector's 1280×720 and at
1400×1000 cuts no title, row label or objective name of its maps (each text's box lies inside its chart and the
window, and reads in full, with no "…"), and prints one colour bar per map kind. Uses tests/test_browser.py's
server fixture (a fresh `streamlit run app.py`); skipped without Chromium."""
import json
import urllib.parse

import pytest

from tests.test_browser import SHOTS  # the server and browser fixtures are tests/conftest.py's

playwright = pytest.importorskip("playwright.sync_api")
FOUR = ["grpo", "gspo", "dual_clip", "cispo"]

# every text of each map figure: its kind, its text, its box, the chart's box (page coordinates)
TEXTS = """() => [...document.querySelectorAll('.js-plotly-plot')].filter(g => g.querySelector('.heatmaplayer'))
    .map(g => { const svg = g.querySelector('svg.main-svg').getBoundingClientRect();
        const box = b => ({l: b.left, r: b.right, t: b.top, b: b.bottom});
        const items = [];
        for (const [kind, sel] of [['title', '.gtitle'], ['row', '.yaxislayer-above .ytick text'],
                                   ['name', '.annotation-text'], ['bar', '.colorbar .cbaxis text, .colorbar text']])
            g.querySelectorAll(sel).forEach(t => items.push({kind, text: t.textContent, box: box(t.getBoundingClientRect())}));
        return {svg: box(svg), title: g.layout.title.text, rows: g.layout.yaxis.ticktext, items,
                bars: Object.keys(g.layout).filter(k => k.startsWith('coloraxis')).length}; })"""


@pytest.mark.parametrize("width,height", [(1280, 720), (1400, 1000)])
def test_four_objectives_cut_no_label(server, browser, width, height):
    SHOTS.mkdir(parents=True, exist_ok=True)
    query = urllib.parse.urlencode({"example": "default_group", "v": json.dumps({"cmp": FOUR})})
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(f"{server}/token_lab?{query}", wait_until="domcontentloaded")
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .heatmaplayer').length >= 2",
                           timeout=90_000)
    page.wait_for_timeout(800)                       # fonts and automargins settle
    figures = page.evaluate(TEXTS)
    page.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / f"token_lab_four_{width}x{height}.png"))
    page.close()
    assert len(figures) == 2                              # the ratio maps and the gradient maps
    for fig in figures:
        svg, items = fig["svg"], fig["items"]
        assert svg["r"] <= width + 0.5                    # the chart fits the window
        kinds = {i["kind"] for i in items}
        assert {"title", "row", "name", "bar"} <= kinds, kinds
        names = [i["text"] for i in items if i["kind"] == "name"]
        assert [n for n in names if n in ("GRPO", "GSPO", "Dual-Clip PPO", "CISPO")] == \
            ["GRPO", "GSPO", "Dual-Clip PPO", "CISPO"]
        rows = [i["text"] for i in items if i["kind"] == "row"]
        assert rows == fig["rows"] and len(rows) == 8 and rows[0].startswith("resp 1 · A ")   # every label in full
        title = "".join(i["text"] for i in items if i["kind"] == "title")
        assert title.replace(" ", "") == fig["title"].replace("<br>", "").replace(" ", "")   # the whole title
        for i in items:
            assert "…" not in i["text"], i
            b = i["box"]
            assert b["r"] > b["l"], i                     # drawn
            inside = b["l"] >= svg["l"] - 0.5 and b["r"] <= svg["r"] + 0.5 and b["t"] >= svg["t"] - 0.5
            assert inside and b["r"] <= width + 0.5, (i, svg)
        assert fig["bars"] == 1                           # one colour scale for all four objectives
