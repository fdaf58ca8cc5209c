"""Issue 10, item 3: charts readable from the back of a room (gspo_viz/views/plots.py, views/style.py).

- One colour scale per kind of map across the compared objectives (on by default), reaching the largest |value| of
  them all; off, each objective's map has its own.
- Tick labels are plain numbers (1e−06, 1e+10, 0.25), never SI prefixes ("100p", "10B").
- Colour-bar ticks stay MIN_TICK_GAP px apart (a label's width apart on a horizontal bar).
- Small groups print their numbers in the cells (the core's, rounded as CELL_ROUNDING says); large ones do not.
- The seed examples' CJK tokens have an English gloss, in the cells, the hovers and the glossary line.
"""
import json
import math
import random
import re
import unicodedata
from pathlib import Path

import plotly.graph_objects as go
import pytest

from gspo_viz import load_scenario, parse_scenario, run_scenario
from gspo_viz.core.advantages import advantage_panel
from gspo_viz.core.curves import clip_curve
from gspo_viz.core.settings import Settings
from gspo_viz.views import plots
from gspo_viz.views.plots import (MIN_TICK_GAP, SMALL_SIZE, advantages_figure, clip_explorer_figure,
                                  comparison_maps, glossary, grad_text, heatmap_height, lines_figure, plain_number,
                                  ratio_text)
from gspo_viz.views.style import GLOSS, gloss, text_px

EX = Path(__file__).resolve().parents[1] / "examples"
THREE = ("grpo", "gspo", "dual_clip")


def results(example, names=THREE):
    scn = load_scenario(EX / f"{example}.json")
    return [run_scenario(scn, n) for n in names]


def heat(fig):
    return [t for t in fig.to_dict()["data"] if t["type"] == "heatmap"]


def plot_height(fig):
    lay = fig.layout
    return lay.height - lay.margin.t - lay.margin.b


# ------------------------------------------------------------------------------------------------ one colour scale
def test_one_colour_scale_reaches_the_largest_value_of_every_objective():
    res = results("default_group")
    top_g = max(float(r.explanation.grad_weight.abs().max()) for r in res)
    own_g = [float(r.explanation.grad_weight.abs().max()) for r in res]
    assert len({round(g, 9) for g in own_g}) == 3           # the objectives' reaches differ: the test can tell
    top_r = max(max(abs(math.log(v)) for r in res for row, n in
                    zip(r.explanation.token_ratio.tolist(), [len(x.tokens) for x in r.scenario.responses])
                    for v in row[:n]), math.log(1.25))
    ratio, grad = comparison_maps(res, 300, shared=True)
    for fig, top in ((ratio, top_r), (grad, top_g)):
        traces = heat(fig)
        assert [t["meta"] for t in traces] == list(THREE)
        assert {t["coloraxis"] for t in traces} == {"coloraxis"}               # one scale …
        axis = fig.layout.coloraxis
        assert (axis.cmin, axis.cmax) == pytest.approx((-top, top), rel=1e-12)   # … to the largest |value|
        assert "coloraxis2" not in fig.to_dict()["layout"]
    # the gradient map's values are the core's, cell by cell (padding is None)
    for t, r in zip(heat(grad), res):
        lengths = [len(x.tokens) for x in r.scenario.responses]
        for i, row in enumerate(r.explanation.grad_weight.tolist()):
            assert t["z"][i][:lengths[i]] == pytest.approx(row[:lengths[i]], rel=1e-12)
            assert all(v is None for v in t["z"][i][lengths[i]:])


def test_each_objective_its_own_scale_when_the_toggle_is_off():
    res = results("default_group")
    _, grad = comparison_maps(res, 300, shared=False)
    traces = heat(grad)
    assert [t["coloraxis"] for t in traces] == ["coloraxis", "coloraxis2", "coloraxis3"]
    lay = grad.to_dict()["layout"]
    for k, r in enumerate(res):
        axis = lay["coloraxis" + ("" if k == 0 else str(k + 1))]
        top = float(r.explanation.grad_weight.abs().max())
        assert (axis["cmin"], axis["cmax"]) == pytest.approx((-top, top), rel=1e-12)
        assert axis["colorbar"]["orientation"] == "h"          # a bar under each map


def test_an_all_zero_map_keeps_a_readable_scale():
    data = {"responses": [{"p_old": [0.5, 0.4], "p_new": [0.5, 0.4], "reward": 1},
                          {"p_old": [0.5], "p_new": [0.5], "reward": 1}]}           # equal rewards: A = 0
    res = run_scenario(parse_scenario(data), "grpo")
    _, grad = comparison_maps([res], 300)
    assert (grad.layout.coloraxis.cmin, grad.layout.coloraxis.cmax) == (-1.0, 1.0)


# ------------------------------------------------------------------------------------------------ tick labels
SI = re.compile(r"\d[munpfazyµkMGTPEB]\b|\d[munpfazyµkMGTPEB]$")


@pytest.mark.parametrize("v,text", [(1e-6, "1e−06"), (1e10, "1e+10"), (0.25, "0.25"), (1.0, "1"), (1024, "1024"),
                                    (-0.015, "−0.015"), (1e-10, "1e−10"), (123456, "1.235e+05")])
def test_tick_labels_are_plain_numbers(v, text):
    assert plain_number(v) == text and not SI.search(text)


def test_cell_numbers_are_rounded_as_the_caption_says():
    assert ratio_text(1.333333) == "1.333" and ratio_text(0.87499) == "0.875" and ratio_text(12.3456) == "12.35"
    assert grad_text(-0.0123456) == "−0.0123" and grad_text(0.24) == "0.24" and grad_text(2.5e-7) == "2.5e−07"
    assert "4 significant digits" in plots.CELL_ROUNDING and "to 3" in plots.CELL_ROUNDING


def test_every_axis_of_the_line_figures_prints_plain_numbers():
    figs = [lines_figure([1, 10, 1000], {"a": [1e-10, 1e-3, 1e10]}, "t", "L", "w", log_y=True, log_x=True),
            lines_figure([1, 2], {"a": [1e-6, 2e-6]}, "t", "x", "y"),
            advantages_figure(advantage_panel([1.0, 0.0, 0.5])),
            clip_explorer_figure({n: clip_curve(n, (0.1, 8.0, 200, 1.0), 1.0, Settings()) for n in ("grpo",)},
                                 "grad", 1.0, "r")]
    for fig in figs:
        lay = fig.to_dict()["layout"]
        for axis in ("xaxis", "yaxis"):
            # Plotly's default "B" prints 100p and 10B; "none" writes a linear length axis's 20,000 in full
            assert lay[axis]["exponentformat"] in ("e", "none"), axis
    assert figs[0].layout.yaxis.type == "log" and figs[0].layout.xaxis.type == "log"


def test_colour_bar_labels_are_plain_numbers_even_for_tiny_weights():
    data = {"responses": [{"p_old": [0.5, 0.4], "p_new": [0.5000001, 0.4], "reward": 1},
                          {"p_old": [0.5], "p_new": [0.5], "reward": 0}],
            "settings": {"beta": 0.0}}
    res = run_scenario(parse_scenario(data), "grpo")
    ratio, grad = comparison_maps([res], 300)
    for fig in (ratio, grad):
        text = fig.layout.coloraxis.colorbar.ticktext
        assert text and not any(SI.search(t) for t in text), text


# ------------------------------------------------------------------------------------------------ colour-bar ticks
def _gaps(vals, length, top):
    px = sorted(v * length / (2 * top) for v in vals)
    return [b - a for a, b in zip(px, px[1:])]


def test_colour_bar_ticks_never_closer_than_the_minimum_gap():
    rng = random.Random(1)
    for _ in range(2000):
        length = rng.uniform(40, 700)             # a map's cells are at least 96 px high (heatmap_height)
        top_g = 10 ** rng.uniform(-9, 3)
        top_r = math.log(1.25) + 10 ** rng.uniform(-3, 1.5)
        g = plots._grad_ticks(top_g, length, lambda a, b: MIN_TICK_GAP)
        r = [math.log(v) for v in plots._ratio_ticks(top_r, length, lambda a, b: MIN_TICK_GAP)]
        for vals, top in ((g, top_g), (r, top_r)):
            assert len(vals) >= 3 and 0.0 in vals and min(vals) < 0 < max(vals)   # 0 (r = 1) and one each side
            assert all(abs(v) <= top * (1 + 1e-9) for v in vals)                  # on the bar
            assert min(_gaps(vals, length, top)) >= MIN_TICK_GAP - 1e-6, (length, top, vals)


def test_horizontal_colour_bars_keep_their_labels_apart():
    def gap(a, b):
        return (text_px(plain_number(a), SMALL_SIZE) + text_px(plain_number(b), SMALL_SIZE)) / 2 + 8
    for top in (0.0123, 0.24, 0.5, 3.7e-5):
        for length in (120, 200, 320):
            vals = plots._grad_ticks(top, length, gap)
            assert len(vals) >= 3
            px = sorted(v * length / (2 * top) for v in vals)
            for (a, pa), (b, pb) in zip(zip(sorted(vals), px), zip(sorted(vals)[1:], px[1:])):
                assert pb - pa >= gap(a, b) - 1e-6, (top, length, vals)


@pytest.mark.parametrize("example,names", [("default_group", THREE), ("movie_five_tokens", THREE),
                                           ("dual_clip_negative_advantage", ("grpo", "dual_clip", "cispo", "sapo"))])
@pytest.mark.parametrize("rows_height", [96, 200, 480])
def test_the_figures_colour_bars_keep_their_ticks_apart(example, names, rows_height):
    res = results(example, names)
    height = plots.MAP_CHROME + rows_height
    for shared in (True, False):
        for fig in comparison_maps(res, height, shared=shared):
            lay = fig.to_dict()["layout"]
            bars = [(k, v) for k, v in lay.items() if k.startswith("coloraxis")]
            assert len(bars) == (1 if shared else len(names))
            width = plots.DESIGN_WIDTH - lay["margin"]["l"] - lay["margin"]["r"]
            for _, axis in bars:
                bar, top = axis["colorbar"], axis["cmax"]
                if shared:          # vertical, as tall as the cells
                    gaps, need = _gaps(bar["tickvals"], plot_height(fig) * bar["len"], top), MIN_TICK_GAP
                else:               # horizontal, as wide as its map: half of two neighbours' labels and 8 px
                    gaps = _gaps(bar["tickvals"], width * bar["len"], top)   # tickvals are in increasing order
                    w = [text_px(t, SMALL_SIZE) for t in bar["ticktext"]]
                    need = [(a + b) / 2 + 8 for a, b in zip(w, w[1:])]
                    gaps = [g - n + MIN_TICK_GAP for g, n in zip(gaps, need)]   # compared with MIN_TICK_GAP below
                    need = MIN_TICK_GAP
                assert len(bar["tickvals"]) >= 3 and min(gaps) >= need - 1e-6, (example, shared, bar["ticktext"], gaps)


# ------------------------------------------------------------------------------------------------ numbers in cells
def test_small_groups_print_the_core_numbers_in_their_cells():
    res = results("movie_five_tokens")
    ratio, grad = comparison_maps(res, heatmap_height(1))
    assert ratio.layout.meta["cells"] == "numbers" and grad.layout.meta["cells"] == "numbers"
    for fig, values in ((ratio, lambda r: [ratio_text(v) for v in r.explanation.token_ratio[0].tolist()]),
                        (grad, lambda r: [grad_text(v) for v in r.explanation.grad_weight[0].tolist()])):
        texts = [t for t in fig.to_dict()["data"] if t["type"] == "scatter"]
        for k, r in enumerate(res):
            axis = "x" if k == 0 else f"x{k + 1}"
            mine = [t["text"] for t in texts if t["xaxis"] == axis]
            plain = [[s.split(" ")[-1] for s in text] for text in mine]   # "▲ 1.333" when the mark is inline
            assert values(r) in plain, (axis, mine)
    assert grad_text(0.24) in [s for t in grad.to_dict()["data"] if t["type"] == "scatter" for s in t["text"]]


def test_large_groups_show_marks_not_numbers():
    res = results("default_group")                          # 8 responses × up to 28 tokens, three maps at 820 px
    ratio, grad = comparison_maps(res, heatmap_height(8))
    assert ratio.layout.meta["cells"] == "marks" and grad.layout.meta["cells"] == "marks"
    marks = [t for t in ratio.to_dict()["data"] if t["type"] == "scatter"]
    assert all(t["mode"] == "markers" for t in marks)             # shapes only: no numbers, no text drawn
    for k, r in enumerate(res):                                   # a mark on each clipped token, of its decision
        ex = r.explanation
        clipped = {(tok + 1, i): s for i, row in enumerate(ex.clip.tolist()) for tok, c in enumerate(row)
                   if (s := plots.CLIP_SYMBOLS[plots.CLIP_NAMES[c]])}
        mine = [t for t in marks if t["xaxis"] == ("x" if k == 0 else f"x{k + 1}")]
        drawn = {xy: s for t in mine for xy, s in zip(zip(t["x"], t["y"]), t["text"])}
        assert drawn == clipped and sum(len(t["x"]) for t in mine) == len(clipped)
        for t in mine:                                            # one trace per decision, in its shape
            assert len(set(t["text"])) == 1 and t["marker"]["symbol"] == plots.MARK_SHAPES[t["text"][0]]


def test_cell_numbers_fit_their_cells():
    """Each printed number is narrower than its cell (estimated in px at the font size the figure uses)."""
    for names in (THREE[:1], THREE, ("grpo", "gspo", "dual_clip", "cispo")):
        res = results("movie_five_tokens", names)
        for width in (plots.DESIGN_WIDTH, plots.TALK_WIDTH):
            fig = comparison_maps(res, heatmap_height(1), width=width)[0]
            lay = fig.to_dict()["layout"]
            plot_w = width - lay["margin"]["l"] - lay["margin"]["r"]
            for t in fig.to_dict()["data"]:
                if t["type"] != "scatter" or t["mode"] != "text":     # the clip marks alone are shapes
                    continue
                axis = lay["xaxis" + t["xaxis"][1:]]
                cell = plot_w * (axis["domain"][1] - axis["domain"][0]) / (axis["range"][1] - axis["range"][0])
                size = t["textfont"]["size"]
                assert size >= 11
                for s in t["text"]:
                    assert text_px(s, size) <= cell, (names, width, s, cell)


# ------------------------------------------------------------------------------------------------ CJK glosses
def cjk(token):
    return any(unicodedata.east_asian_width(c) in "WF" for c in token)


def test_every_cjk_token_of_the_examples_has_an_english_gloss():
    seen = 0
    for path in sorted(EX.glob("*.json")):
        data = json.loads(path.read_text())
        for r in data["responses"]:
            for tok in r.get("tokens", []):
                if cjk(tok):
                    seen += 1
                    assert gloss(tok) is not None and not cjk(gloss(tok)), (path.name, tok)
    assert seen >= 20 and gloss("hello") is None


def test_glosses_reach_the_hover_the_cells_and_the_glossary_line():
    res = results("three_responses_gspo", ("grpo", "gspo"))
    words = glossary(res)
    tokens = [t for r in res[0].scenario.responses for t in r.tokens]
    assert [t for t, _ in words] == list(dict.fromkeys(t for t in tokens if cjk(t)))   # each once, in order
    assert all(g == GLOSS[t] for t, g in words)
    ratio, _ = comparison_maps(res, 300, width=plots.TALK_WIDTH)
    first = heat(ratio)[0]
    hover = first["customdata"][0][0]
    tok = res[0].scenario.responses[0].tokens[0]
    assert hover.startswith(f"<b>{tok}</b> “{GLOSS[tok]}”")
    one = comparison_maps(results("movie_five_tokens", ("grpo",)), heatmap_height(1), width=plots.TALK_WIDTH)[0]
    cells = [s for t in one.to_dict()["data"] if t["type"] == "scatter" for s in t["text"]]
    assert "肖申克" in cells and "Shawshank" in cells and "very good" in cells   # room for the whole gloss


def test_every_map_figure_passes_plotly_validation():
    for shared in (True, False):
        for fig in comparison_maps(results("movie_five_tokens"), 300, shared=shared):
            go.Figure(fig.to_dict())


@pytest.mark.parametrize("names", [("grpo",), ("grpo", "gspo"), THREE, ("grpo", "gspo", "dual_clip", "cispo")])
def test_glosses_in_cells_are_whole_or_absent(names):
    res = results("movie_five_tokens", names)
    glosses = set(GLOSS.values())
    for width in (plots.DESIGN_WIDTH, plots.TALK_WIDTH):
        fig = comparison_maps(res, heatmap_height(1), width=width)[0]
        cells = [s for t in fig.to_dict()["data"] if t["type"] == "scatter" and t["mode"] == "text" for s in t["text"]]
        shown = [s for s in cells if s.rstrip("…") and any(g.startswith(s.rstrip("…")) for g in glosses)
                 and not any(s == tok for tok in GLOSS)]
        assert all(s in glosses for s in shown), (names, width, shown)     # never "Shaws…"


def test_narrow_cells_have_no_white_gaps():
    """A 1 px gap between cells a few px wide turned a 200-token map white (seed004_token_level_loss_200_vs_10)."""
    wide = heat(comparison_maps(results("movie_five_tokens"), 300)[0])
    narrow = heat(comparison_maps(results("seed004_token_level_loss_200_vs_10"), 300)[0])
    assert [t["xgap"] for t in wide] == [1, 1, 1] and [t["xgap"] for t in narrow] == [0, 0, 0]


def test_log_axes_label_decades_only_when_they_span_several():
    """The Length page's log axes printed "0.1 5 2 0.01 5 2 1e-3": with more than a decade and a half of values, a
    label per power of ten (dtick 1); within one decade Plotly's own ticks stay (the axis needs them)."""
    from gspo_viz.views.plots import lines_figure, log_ticks
    assert log_ticks([1e-4, 0.5]) == {"type": "log", "dtick": 1}
    assert log_ticks([0.2, 0.9]) == {"type": "log"}
    assert log_ticks([0, None, float("nan")]) == {"type": "log"}
    fig = lines_figure([1, 10, 100, 1000], {"a": [1e-1, 1e-2, 1e-3, 1e-4]}, "t", "x", "y", log_y=True, log_x=True)
    assert fig.layout.yaxis.dtick == 1 and fig.layout.xaxis.dtick == 1 and fig.layout.yaxis.type == "log"
    assert fig.layout.yaxis.exponentformat == "e"
    flat = lines_figure([1, 2], {"a": [0.3, 0.6]}, "t", "x", "y", log_y=True)
    assert flat.layout.yaxis.dtick is None and flat.layout.xaxis.type in (None, "linear", "-")
    assert flat.layout.xaxis.exponentformat == "none" and flat.layout.xaxis.separatethousands   # 20,000 not 2e+4
