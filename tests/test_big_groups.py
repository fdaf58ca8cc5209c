"""Issue 9: sizes, memory and silent edits.

- The caches (gspo_viz/ui/cache.py) are one process-wide LRU bounded by estimated bytes.
- Groups the limits allow (up to 256 responses, 4,096 tokens each, 65,536 in all) are drawn in bins and pages
  (gspo_viz/views/plots.py) with a caption; small groups stay one cell per token.
- The "every number" table renders at most MAX_TABLE_ROWS rows; the CSV has all.
- Structural edits of the Token Lab's tables that would break a limit are refused with a message; invalid tables
  leave the charts on the last valid group, with a message; numbers are typed as text, so "1e308" reaches the parser
  (the browser check of that is in tests/test_browser.py, on the shared app server).
"""
import json
import math
import random
import threading
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import pytest
import torch

from gspo_viz import OBJECTIVES, ScenarioError, load_scenario, parse_scenario, run_scenario
from gspo_viz.core.objectives.base import CLIP_NAMES
from gspo_viz.scenarios.files import MAX_TOKENS_PER_RESPONSE, MAX_TOTAL_TOKENS
from gspo_viz.scenarios.urlstate import encode_scenario
from gspo_viz.ui import cache
from gspo_viz.ui.cache import ByteLRU, estimate_bytes
from gspo_viz.views.plots import (CELL_BUDGET, MAX_COLUMNS, heatmap_caption, heatmap_plan, heatmaps, grad_heatmap,
                                  ratio_heatmap)
from gspo_viz.views.report import token_rows
from gspo_viz.views.steps import hover_texts
from gspo_viz.views.style import CLIP_SYMBOLS
from gspo_viz.views.tables import (MAX_TABLE_ROWS, EditRefused, add_response, add_token, number_cell, remove_response,
                                   remove_token, rows_shown, scenario_to_tables, tables_to_scenario, token_frame)

from test_pages import ctl, open_page   # tests/test_pages.py: the app, then the page (AppTest)

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples"
LAB = "pages/1_token_lab.py"


def group(G, T, seed=0, drift=0.5, lengths=None):
    """G responses of T tokens (or of `lengths`), seeded: p_old = σ(N(1, 1.5²)), log p_new drifted by N(0, drift²)."""
    rng = random.Random(seed)
    responses = []
    for i in range(G):
        n = T if lengths is None else lengths[i]
        p_old = [round(max(1e-6, 1 / (1 + math.exp(-rng.gauss(1.0, 1.5)))), 6) for _ in range(n)]
        p_new = [round(min(1.0, max(1e-6, p * math.exp(drift * rng.gauss(0.0, 1.0)))), 6) for p in p_old]
        responses.append({"p_old": p_old, "p_new": p_new, "reward": float(i % 2)})
    return {"title": f"{G} x {T}", "responses": responses, "settings": {}}


# ------------------------------------------------------------------------------------------------ the byte-bounded LRU
def test_lru_evicts_the_least_recently_used_and_stays_within_its_budget():
    lru = ByteLRU(100, max_entry_fraction=0.5)
    for k in "abcd":
        assert lru.put(k, k.upper(), 20)
    assert lru.bytes == 80 and len(lru) == 4
    assert lru.get("a") == "A"                    # a is now the most recently used; b the least
    assert lru.put("e", "E", 50)                  # 130 > 100: b goes (110 > 100), then c (90)
    assert "b" not in lru and "c" not in lru and [k for k in "ade" if k in lru] == ["a", "d", "e"]
    assert lru.bytes == 90
    for k in range(50):                           # whatever is inserted, the total never exceeds the budget
        lru.put(("x", k), k, 7 + 13 * (k % 4))
        assert lru.bytes <= lru.budget
        assert lru.bytes == sum(cost for _, cost in lru._entries.values())
    assert lru.get_or_compute(("x", 49), lambda: pytest.fail("a hit must not recompute")) == 49


def test_lru_computes_but_does_not_keep_an_entry_too_large_for_it():
    lru = ByteLRU(100, max_entry_fraction=0.25)
    lru.put("small", 1, 10)
    assert lru.get_or_compute("big", lambda: "value", cost=lambda v: 26) == "value"
    assert "big" not in lru and "small" in lru and lru.bytes == 10     # and nothing was evicted for it
    lru.put("small", 2, 30)                                            # too large now: the old value goes too
    assert "small" not in lru and lru.bytes == 0


def test_lru_errors_are_not_cached():
    lru = ByteLRU(100)
    with pytest.raises(ScenarioError):
        lru.get_or_compute("k", lambda: (_ for _ in ()).throw(ScenarioError("x", "bad")))
    assert "k" not in lru and lru.get_or_compute("k", lambda: 5, cost=lambda v: 1) == 5


def test_lru_holds_its_bound_under_concurrent_sessions():
    lru = ByteLRU(1000, max_entry_fraction=0.2)
    seen = []

    def session(s):
        for k in range(300):
            lru.get_or_compute((s, k % 40), lambda: k, cost=lambda v: 10 + (v * 7) % 150)
            seen.append(lru.bytes)
    threads = [threading.Thread(target=session, args=(s,)) for s in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(seen) <= 1000
    assert lru.bytes == sum(cost for _, cost in lru._entries.values()) <= 1000


def test_estimate_bytes_counts_buffers_and_shared_objects_once():
    t = torch.zeros(1000, dtype=torch.float64)
    assert 8000 <= estimate_bytes(t) <= 8000 + 1000
    assert estimate_bytes([t, t[:10]]) < estimate_bytes([t, t.clone()])   # a view shares its base's buffer
    row = [float(k) for k in range(1000)]
    assert estimate_bytes({"a": row, "b": row}) < 1.5 * estimate_bytes(row)
    assert estimate_bytes("x" * 10_000) >= 10_000


def test_the_views_cache_stays_within_its_budget_on_large_groups(monkeypatch):
    lru = ByteLRU(16 * 2**20)                      # the module's LRU, with a small budget for the test
    monkeypatch.setattr(cache, "CACHE", lru)
    data = group(16, 1024)
    digests = []
    for k in range(8):                             # eight edits of a 16 × 1024 group, one objective
        data["responses"][0]["p_new"][2] = 0.2 + 0.05 * k
        key = cache.scenario_key(data)
        view = cache.objective_view(key, "grpo", 500)
        assert view.result.explanation.mask.shape == (16, 1024)
        assert lru.bytes <= lru.budget
        digests.append(cache._digest(key))
    kept = [any(k[1] == d for k in lru._entries) for d in digests]
    assert kept[-1] and not kept[0] and kept == sorted(kept)   # the oldest edits' entries went first
    assert cache.objective_view(key, "grpo", 500).ratio_figure is view.ratio_figure   # the newest is a hit


# ------------------------------------------------------------------------------------------------ how groups are drawn
def test_small_groups_are_drawn_one_cell_per_token():
    res = run_scenario(load_scenario(EX / "default_group.json"), "grpo")
    plan = heatmap_plan([len(r.tokens) for r in res.scenario.responses])
    assert plan.exact and heatmap_caption(plan) is None
    ratio, grad = heatmaps(res, 300)
    assert ratio.to_dict() == ratio_heatmap(res, 300).to_dict() and grad.to_dict() == grad_heatmap(res, 300).to_dict()
    assert heatmap_plan([62] * 64).exact and heatmap_plan([100] * 40).exact          # 3,968 and 4,000 cells


@pytest.mark.parametrize("G,T,width,rows,pages", [(16, 1024, 16, 16, 1), (256, 256, 4, 32, 8), (2, 4096, 64, 2, 1),
                                                  (256, 16, 1, 32, 8), (100, 50, 1, 32, 4), (16, 4096, 64, 16, 1)])
def test_large_groups_are_planned_in_bins_and_pages(G, T, width, rows, pages):
    plan = heatmap_plan([T] * G)
    assert (plan.width, plan.rows, plan.pages) == (width, rows, pages)
    assert plan.rows * -(-T // plan.width) <= CELL_BUDGET and -(-T // plan.width) <= MAX_COLUMNS
    assert [len(plan.page_rows(p)) for p in range(pages)] == [rows] * (G // rows) + ([G % rows] if G % rows else [])


def test_binned_cells_hold_their_tokens_numbers():
    lengths = [1024, 1000, 17] + [1024] * 13                     # ragged: a partial last cell, a short response
    res = run_scenario(parse_scenario(group(16, 1024, lengths=lengths)), "dual_clip")
    ex = res.explanation
    figures = heatmaps(res, 500)
    for fig in figures:
        go.Figure(fig.to_dict())                                  # valid Plotly
        assert len(fig.to_json()) < 400_000                       # one per-token figure was 5.5 MB
    ratio, grad = (fig.to_dict() for fig in figures)
    rz, gz = ratio["data"][0]["z"], grad["data"][0]["z"]
    assert len(rz) == 16 and all(len(row) == 64 for row in rz)   # 16 tokens per cell
    logr = torch.log(ex.token_ratio)
    marked = [c for c in range(1, len(CLIP_NAMES)) if CLIP_NAMES[c] in OBJECTIVES["dual_clip"].marks]
    marks = {(x, y): s for t in ratio["data"] if t["type"] == "scatter"       # a trace per kind of mark
             for x, y, s in zip(t["x"], t["y"], t["text"])}
    assert marks and set(marks.values()) <= {CLIP_SYMBOLS[CLIP_NAMES[c]] for c in marked}
    cells = [(0, 0), (0, 63), (1, 62), (2, 0), (2, 1), (2, 5), (7, 30)]
    cells += [(i, k) for i in range(16) for k in range(64) if k * 16 < lengths[i]]   # every cell, for the marks
    for i, k in cells:
        a, b = 16 * k, min(16 * (k + 1), lengths[i])
        if a >= lengths[i]:
            assert rz[i][k] is None and gz[i][k] is None and ratio["data"][0]["customdata"][i][k] is None
            continue
        assert rz[i][k] == pytest.approx(float(logr[i, a:b].mean()), rel=1e-12, abs=1e-15)
        assert gz[i][k] == pytest.approx(float(ex.grad_weight[i, a:b].mean()), rel=1e-12, abs=1e-18)
        cd = ratio["data"][0]["customdata"][i][k]
        assert cd[:4] == [i + 1, a + 1, b, b - a]                 # response, first and last token, count
        assert cd[4] == pytest.approx(float(ex.token_ratio[i, a:b].min()), rel=1e-5)
        assert cd[6] == pytest.approx(float(ex.token_ratio[i, a:b].max()), rel=1e-5)
        gd = grad["data"][0]["customdata"][i][k]
        assert gd[7] == pytest.approx(float(ex.grad_weight[i, a:b].sum()), rel=1e-5, abs=1e-12)
        counts = [int((ex.clip[i, a:b] == c).sum()) for c in marked]
        assert cd[7:] == [sum(counts), *counts]                   # clipped in all, then per mark
        key = (16 * k + 8.5, ratio["data"][0]["y"][i])
        assert (key in marks) == (2 * sum(counts) >= b - a)      # a mark where at least half are clipped
    assert "min %{customdata[4]:.6g}" in ratio["data"][0]["hovertemplate"]
    assert "sum %{customdata[7]:.6g}" in grad["data"][0]["hovertemplate"]
    assert "16 tokens per cell" in grad["layout"]["title"]["text"].replace("<br>", " ")   # wrapped to the width


def test_pages_of_short_responses_keep_one_hover_per_token():
    res = run_scenario(parse_scenario(group(256, 16)), "grpo")
    ratio, _ = heatmaps(res, 500, page=1)
    trace, labels = ratio.data[0], ratio.layout.yaxis.ticktext     # rows 0..31, labelled by the y axis
    assert list(trace.y) == list(range(32)) and list(ratio.layout.yaxis.tickvals) == list(range(32))
    assert labels[0].startswith("resp 33 ·") and labels[-1].startswith("resp 64 ·")
    assert [list(row) for row in trace.customdata] == hover_texts(res, range(32, 64))


def test_caption_says_what_a_large_map_shows():
    plan = heatmap_plan([256] * 256)
    text = heatmap_caption(plan, 2)
    assert "4 consecutive tokens" in text and "geometric mean" in text and "mean ∂J/∂log π" in text
    assert "responses 65–96 of 256" in text and "have every token" in text


# ------------------------------------------------------------------------------------------------ tables
def test_structural_edits_refuse_past_the_limits():
    data = {"responses": [{"p_old": [0.5] * MAX_TOKENS_PER_RESPONSE, "p_new": [0.5] * MAX_TOKENS_PER_RESPONSE,
                           "reward": 1}, {"p_old": [0.4], "p_new": [0.5], "reward": 0}]}
    r, t = scenario_to_tables(data)
    with pytest.raises(EditRefused, match="response 1 already has 4,096 tokens"):
        add_token(t, 1)
    with pytest.raises(EditRefused, match="response 2 has only one token"):
        remove_token(t, 2)
    assert len(add_token(t, 2)) == len(t) + 1 and len(remove_token(t, 1)) == len(t) - 1
    full = {"responses": [{"p_old": [0.5] * 2048, "p_new": [0.5] * 2048, "reward": i % 2} for i in range(32)]}
    r, t = scenario_to_tables(full)
    assert len(t) == MAX_TOTAL_TOKENS
    with pytest.raises(EditRefused, match="65,536 tokens, the limit in all"):
        add_token(t, 4)                                        # response 4 has room, the group does not …
    assert len(add_token(remove_token(t, 3), 4)) == MAX_TOTAL_TOKENS   # … once a token is gone, it has
    with pytest.raises(EditRefused, match="would hold 65,539 tokens"):
        add_response(r, t)
    many = {"responses": [{"p_old": [0.5], "p_new": [0.5], "reward": i % 2} for i in range(256)]}
    with pytest.raises(EditRefused, match="already has 256 responses"):
        add_response(*scenario_to_tables(many))
    one = {"responses": [{"p_old": [0.5], "p_new": [0.5], "advantage": 1}]}
    with pytest.raises(EditRefused, match="at least one response"):
        remove_response(*scenario_to_tables(one), 1)


def test_numbers_typed_as_text_reach_the_parser():
    data = json.loads((EX / "dapo_clip_higher.json").read_text())
    r, t = scenario_to_tables(data)
    assert r["reward"].tolist() == ["1.0", "0.0"] and t["p_old"][0] == "0.01"   # text cells, exact numbers
    assert number_cell(" 2.5E-3 ") == 0.0025 and number_cell("") is None and number_cell(None) is None
    assert number_cell("abc") == "abc" and number_cell(0.5) == 0.5
    r.loc[0, "reward"] = "1e308"                      # Streamlit's number editor made this 1308
    with pytest.raises(ScenarioError) as e:
        parse_scenario(tables_to_scenario(r, t, data))
    assert e.value.where == "responses[0].reward" and "1e+308 is beyond" in e.value.message
    r.loc[0, "reward"] = "one"
    with pytest.raises(ScenarioError, match="must be a number"):
        parse_scenario(tables_to_scenario(r, t, data))
    t.loc[0, "p_new"] = "0.5e-1"                      # the number editor made this 0.51, silently
    r.loc[0, "reward"] = "1"
    assert parse_scenario(tables_to_scenario(r, t, data)).responses[0].logp_new[0] == math.log(0.05)


def test_every_number_table_is_the_reports_and_is_capped():
    res = {n: run_scenario(load_scenario(EX / "dual_clip_negative_advantage.json"), n) for n in ("grpo", "gspo")}
    expected = pd.DataFrame([{"objective": n} | row for n, r in res.items() for row in token_rows(r)])
    pd.testing.assert_frame_equal(token_frame(res), expected, check_exact=True)
    big = token_frame({"grpo": run_scenario(parse_scenario(group(8, 1024)), "grpo")})
    assert len(big) == 8192 > MAX_TABLE_ROWS
    shown, note = rows_shown(big, 3)
    assert len(shown) == 1024 and set(shown["response"]) == {3} and "8,192 rows in all" in note
    shown, note = rows_shown(big, 2, cap=100)
    assert len(shown) == 100 and "the first 100 of its 1,024 rows" in note
    assert rows_shown(expected)[1] is None and len(rows_shown(expected)[0]) == len(expected)


# ------------------------------------------------------------------------------------------------ the page (AppTest)
pytestmark_pages = pytest.mark.usefixtures("navigation_mode")


def errors(at):
    return " ".join(e.value for e in at.error)


def click(at, label):
    [b for b in at.button if b.label == label][0].click().run()
    assert not at.exception, at.exception


def editor_rows(at, k):
    """The rows of the k-th data editor (0: responses, 1: tokens) as the page shows them."""
    return len(at.get("dataframe")[k].value)


@pytestmark_pages
def test_add_token_past_the_limit_is_refused_with_a_message():
    data = {"responses": [{"p_old": [0.5] * 4096, "p_new": [0.5] * 4096, "reward": 1},
                          {"p_old": [0.4] * 3, "p_new": [0.5] * 3, "reward": 0}]}
    at = open_page(LAB, {"s": encode_scenario(data)})
    at.toggle(key=ctl("edit")).set_value(True).run()
    assert editor_rows(at, 1) == 4099
    click(at, "Add token")                                   # response 1 is the selected one
    assert "No token added: response 1 already has 4,096 tokens" in errors(at)
    assert "The tables are as they were" in errors(at)
    assert editor_rows(at, 1) == 4099 and at.session_state["scenario"] == data
    at.selectbox(key=f"target_{at.session_state['version']}").select(2).run()
    click(at, "Add token")                                   # response 2 has room
    assert not at.error and len(at.session_state["scenario"]["responses"][1]["p_new"]) == 4


@pytestmark_pages
def test_removing_the_last_token_or_down_to_one_response_is_refused():
    data = {"responses": [{"p_old": [0.5, 0.4], "p_new": [0.6, 0.4], "reward": 1},
                          {"p_old": [0.5, 0.3], "p_new": [0.4, 0.3], "reward": 0}]}
    at = open_page(LAB, {"s": encode_scenario(data)})
    at.toggle(key=ctl("edit")).set_value(True).run()
    at.selectbox(key=f"target_{at.session_state['version']}").select(2).run()
    click(at, "Remove token")
    one = at.session_state["scenario"]
    assert not at.error and one["responses"][1]["p_new"] == [0.4] and editor_rows(at, 1) == 3
    metrics = [m.value for m in at.metric]
    charts = [c.proto.spec for c in at.get("plotly_chart")]
    assert len(charts) == 3                                  # the ratio maps, the gradient maps, the advantages
    at.selectbox(key=f"target_{at.session_state['version']}").select(2).run()
    click(at, "Remove token")                                # its only token: the table would show nothing
    assert "No token removed: response 2 has only one token" in errors(at)
    assert editor_rows(at, 1) == 3 and at.session_state["scenario"] == one
    click(at, "Remove it")                                   # two responses with rewards → one: no group advantage
    assert "Not applied" in errors(at) and "a group advantage needs at least 2 responses" in errors(at)
    assert at.session_state["scenario"] == one and editor_rows(at, 0) == 2
    assert [m.value for m in at.metric] == metrics
    assert [c.proto.spec for c in at.get("plotly_chart")] == charts   # the charts stay as they were


@pytestmark_pages
def test_a_typed_1e308_reaches_the_parser_and_the_charts_keep_the_last_valid_group():
    at = open_page(LAB)
    at.toggle(key=ctl("edit")).set_value(True).run()
    columns = json.loads(at.get("dataframe")[0].proto.columns)
    assert columns["reward"]["type_config"]["type"] == "text" and columns["advantage"]["type_config"]["type"] == "text"
    assert json.loads(at.get("dataframe")[1].proto.columns)["p_new"]["type_config"]["type"] == "text"
    scenario, metrics = at.session_state["scenario"], [m.value for m in at.metric]
    at.session_state[f"resp_ed_{at.session_state['version']}_p"] = {
        "edited_rows": {0: {"reward": "1e308"}}, "added_rows": [], "deleted_rows": []}
    at.run()
    assert "responses table, response 1, column reward" in errors(at) and "1e+308 is beyond" in errors(at)
    assert "the charts show the last valid group" in " ".join(w.value for w in at.warning)
    assert at.session_state["scenario"] == scenario and [m.value for m in at.metric] == metrics
    click(at, "Add response")            # a structural edit of invalid tables is applied, and they stay checked
    assert editor_rows(at, 0) == len(scenario["responses"]) + 1
    assert "1e+308 is beyond" in errors(at) and at.session_state["scenario"] == scenario


@pytestmark_pages
def test_a_large_group_is_drawn_in_bins_and_pages_with_a_caption():
    at = open_page(LAB)
    data = group(256, 256)
    at.session_state["scenario"] = data
    at.run()
    assert not at.exception
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    maps = [s for s in specs if s["data"][0]["type"] == "heatmap"]
    assert len(maps) == 2                                    # the ratio maps and the gradient maps …
    for s in maps:
        heat = [t for t in s["data"] if t["type"] == "heatmap"]
        assert [t["meta"] for t in heat] == ["grpo", "gspo", "dual_clip"]   # … a map per objective in each
        for t in heat:
            assert len(t["z"]) == 32 and len(t["z"][0]) == 64
        assert s["layout"]["yaxis"]["ticktext"][0].startswith("resp 1 ·")
    assert sum(len(c.proto.spec) for c in at.get("plotly_chart")) < 3_000_000   # 144 MB went over the websocket
    caption = " ".join(c.value for c in at.caption)
    assert "Each cell holds 4 consecutive tokens" in caption and "responses 1–32 of 256" in caption
    at.selectbox(key=ctl("rows")).select(2).run()
    labels = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["yaxis"]["ticktext"]
    assert labels[0].startswith("resp 65 ·") and labels[-1].startswith("resp 96 ·") and len(labels) == 32
    at.toggle(key=ctl("all_numbers")).set_value(True).run()
    table = [d for d in at.get("dataframe") if len(d.value) > 50][0]
    assert len(table.value) == 3 * 256 and set(table.value["response"]) == {1}
    assert "196,608 rows in all" in " ".join(c.value for c in at.caption)


def test_idle_entries_expire_and_the_janitor_ends_with_an_empty_cache():
    import threading
    import time

    from gspo_viz.ui.cache import ByteLRU, Janitor
    cache = ByteLRU(1000)
    cache.put("a", 1, 10)
    cache.put("b", 2, 20)
    now = time.monotonic()
    cache.get("b")                                   # b read just now, a not since it was put
    assert cache.expire(idle=100, now=now + 50) == 0 and cache.bytes == 30
    cache._used["a"] -= 200                          # a last read 200 s ago
    assert cache.expire(idle=100, now=time.monotonic()) == 1 and "a" not in cache and cache.bytes == 20
    # the janitor's thread starts with a kept value, empties an idle cache and ends
    janitor = Janitor(cache, idle=0.0, period=0.05)
    before = threading.active_count()
    cache.put("c", 3, 5)
    assert janitor.running
    deadline = time.monotonic() + 10
    while janitor.running and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not janitor.running and len(cache) == 0 and cache.bytes == 0
    assert threading.active_count() <= before
