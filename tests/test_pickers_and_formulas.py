"""Issue item 5: the preset pickers show what is loaded (gspo_viz/ui/widgets.preset_picker); the Formula Checker
typesets scientific notation as powers of ten and a mean's bar as \\overline (gspo_viz/views/steps.typeset); the
Clip Explorer's curves reach a marked response off the zoom on the sequence bands (core/curves.reach_axis); the
toolbar shows no Deploy button (.streamlit/config.toml)."""
import json
import math
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from gspo_viz import OBJECTIVES, ScenarioError, parse_scenario, run_scenario
from gspo_viz.core.curves import Band, ratio_grid, reach_axis
from gspo_viz.scenarios.urlstate import encode_scenario
from gspo_viz.ui.widgets import CURRENT
from gspo_viz.views.steps import autograd_step, plain_powers, seed_mistakes, token_steps, typeset

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SCI = re.compile(r"\de[+-]?\d")                   # what f"{x:.6g}" writes for 1e-06 or 2e+12


def example(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.json").read_text())


def outside_text(latex: str) -> str:
    """The formula without its \\text{…} parts (words may hold any characters)."""
    return re.sub(r"\\text\{[^{}]*\}", "", latex)


# ----------------------------------------------------------------------------------------------- typeset (unit)
def test_typeset_writes_scientific_notation_as_a_power_of_ten():
    assert typeset(r"\frac{0.5}{0.707107 + 1e-06}") == r"\frac{0.5}{0.707107 + 1 \times 10^{-6}}"
    assert typeset(r"(-1.5e-05) \cdot 2e+12") == r"(-1.5 \times 10^{-5}) \cdot 2 \times 10^{12}"
    # where × could bind to a neighbour the number gets parentheses: ln(1e-5), not (ln 1)·1e-5
    assert typeset(r"\ln 1e-05 = (-11.5129)") == r"\ln (1 \times 10^{-5}) = (-11.5129)"
    assert typeset(r"x / 2e+12") == r"x / (2 \times 10^{12})"
    # names, commands, powers already written and words are left alone
    for same in (r"\theta_2e5", r"e^{\Delta}", r"10^{-6}", r"\text{eps 1e-06}", r"0.9^{14}", r"x2e5"):
        assert typeset(same) == same


def test_plain_powers_in_prose():
    assert plain_powers("A = (R − mean) / (std + 1e-06); 2.5e+12 tokens") == \
        "A = (R − mean) / (std + 1×10⁻⁶); 2.5×10¹² tokens"


def test_typeset_writes_a_mean_bar_as_overline():
    # KaTeX's \bar is a thin accent that Chromium at 100 % zoom dropped inside \frac and in exponents
    assert typeset(r"\frac{R_i - \bar R}{\sigma}") == r"\frac{R_i - \overline{R}}{\sigma}"
    assert typeset(r"\bar{R} = 0.375") == r"\overline{R} = 0.375"
    assert typeset(r"s_i = e^{\bar\Delta_i}") == r"s_i = e^{\overline{\Delta}_i}"


# ----------------------------------------------------------------------------------------------- steps
def test_advantage_step_shows_the_adv_eps_as_a_power_of_ten():
    res = run_scenario(parse_scenario(example("default_group")), "grpo")
    steps = {s.label: s for s in token_steps(res, 1, 2)}          # response 2 (reward 1), t = 3
    # rewards 0,1,1,1,0,0,0,0: mean 3/8 = 0.375; Σ(R − 0.375)² = 3·0.625² + 5·0.375² = 1.875; σ = √(1.875/7)
    sigma = math.sqrt(1.875 / 7)
    assert f"{sigma:.6g}" == "0.517549"
    adv = steps["advantage (group z-score)"].latex
    assert r"\frac{1 - 0.375}{0.517549 + 1 \times 10^{-6}}" in adv and r"R_i - \overline{R}" in adv
    assert steps["group mean of the rewards"].latex.startswith(r"\overline{R} = (0 + 1 + 1 + 1 + 0 + 0 + 0 + 0) / 8")
    assert steps["advantage (group z-score)"].value == pytest.approx((1 - 0.375) / (sigma + 1e-6))


def test_tiny_probabilities_are_typeset_inside_the_logarithm():
    scn = parse_scenario({"responses": [{"p_old": [1e-5], "p_new": [2e-5], "reward": 1.0},
                                        {"p_old": [0.5], "p_new": [0.5], "reward": 0.0}]})
    first = token_steps(run_scenario(scn, "grpo"), 0, 0)[0].latex
    # ln(1e-5) = −11.512925, ln(2e-5) = −10.819778
    assert first == (r"\log\pi_{old} = \ln (1 \times 10^{-5}) = (-11.5129),\quad "
                     r"\log\pi_\theta = \ln (2 \times 10^{-5}) = (-10.8198)")


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_no_formula_of_any_example_writes_e_notation_or_bar(name):
    for path in sorted(EXAMPLES.glob("*.json")):
        try:
            res = run_scenario(parse_scenario(json.loads(path.read_text())), name)
        except ScenarioError:                    # e.g. an objective that needs what this example does not give
            continue
        for i, r in enumerate(res.scenario.responses):
            for t in range(len(r.tokens)):
                shown = [s.latex for s in token_steps(res, i, t)] + [autograd_step(res, i, t).latex]
                shown += [f for m in seed_mistakes(res, i, t) for f in (m.wrong_formula, m.right_formula)]
                for latex in shown:
                    assert not SCI.search(outside_text(latex)), (path.name, i, t, latex)
                    assert r"\bar" not in latex, (path.name, i, t, latex)


def test_mistake_formulas_end_in_their_values():
    res = run_scenario(parse_scenario(example("movie_five_tokens")), "grpo")
    product = {m.title: m for m in seed_mistakes(res, 0, 0)}["clip is not a product of min and max"]
    # r = 0.4/0.3 = 4/3: min(4/3, 1.2)·max(4/3, 0.8) = 1.2·4/3 = 1.6; the right clip is 1.2
    assert product.wrong_formula == r"\min(1.33333, 1.2) \cdot \max(1.33333, 0.8) = 1.6"
    assert product.right_formula == r"\min(\max(1.33333, 0.8), 1.2) = 1.2"


# ----------------------------------------------------------------------------------------------- the pages
pytestmark = pytest.mark.usefixtures("navigation_mode")   # tests/conftest.py: AppTest in st.navigation mode


def open_app(page=None, scenario=None, controls=None):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    if scenario is not None:
        at.query_params["s"] = encode_scenario(scenario)
    if controls is not None:
        at.query_params["v"] = json.dumps(controls, separators=(",", ":"), sort_keys=True)
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def shown(selectbox) -> str:
    """What a selectbox shows: its formatted option at its index."""
    return selectbox.options[selectbox.index]


def button(at, label, sidebar=False):
    return next(b for b in (at.sidebar.button if sidebar else at.button) if b.label == label)


def test_sidebar_preset_shows_the_loaded_preset():
    at = open_app()
    preset = at.sidebar.selectbox[0]
    assert preset.value == EXAMPLES / "default_group.json"          # the default scenario is that preset
    path = EXAMPLES / "dual_clip_negative_advantage.json"
    at.sidebar.selectbox[0].select(path).run()
    button(at, "Load preset", sidebar=True).click().run()
    assert at.session_state["scenario"] == example("dual_clip_negative_advantage")
    # before: the picker was keyed by the scenario's version and fell back to its first entry, the default group
    assert at.sidebar.selectbox[0].value == path
    assert shown(at.sidebar.selectbox[0]) == "Dual-Clip: a bad answer whose token ratio shot past c"


def test_sidebar_preset_says_when_the_scenario_is_not_a_preset():
    data = example("default_group")
    data["settings"] = {"objective": "grpo", "eps_low": 0.1, "eps_high": 0.1}   # a preset changed in a link
    at = open_app(scenario=data)
    assert at.sidebar.selectbox[0].value == CURRENT
    assert shown(at.sidebar.selectbox[0]) == f"Current, edited: {data['title']}"
    assert button(at, "Load preset", sidebar=True).disabled                     # nothing picked to load yet
    data = {"title": "My own group", "responses": example("movie_five_tokens")["responses"]}
    at = open_app(scenario=data)
    assert shown(at.sidebar.selectbox[0]) == "Current, not a preset: My own group"
    # picking a preset and loading it brings the picker back to the preset's name
    at.sidebar.selectbox[0].select(EXAMPLES / "movie_five_tokens.json").run()
    button(at, "Load preset", sidebar=True).click().run()
    assert at.sidebar.selectbox[0].value == EXAMPLES / "movie_five_tokens.json"


def test_formula_checker_worked_example_picker_shows_the_loaded_one():
    at = open_app("pages/4_formula_checker.py")
    pick = next(s for s in at.selectbox if s.label == "Worked example")
    # the default group is a preset but not a worked example: the picker names it and says so
    assert pick.value == CURRENT and shown(pick) == ("Current, not a worked example: Default: a sampled group of 8 "
                                                     "answers (drift 0.6, seed 6)")
    path = EXAMPLES / "movie_five_tokens.json"
    pick.select(path).run()
    button(at, "Load it").click().run()
    pick = next(s for s in at.selectbox if s.label == "Worked example")
    assert pick.value == path and at.sidebar.selectbox[0].value == path


def test_formula_checker_page_typesets_powers_of_ten_and_bars():
    at = open_app("pages/4_formula_checker.py")
    latex = [x.value for x in at.latex]
    # the default group, GRPO, response 1 (reward 0), t = 1: A = (0 − 0.375)/(σ + 10⁻⁶)
    assert any(r"\frac{0 - 0.375}{0.517549 + 1 \times 10^{-6}}" in x for x in latex)
    assert any(r"R_i - \overline{R}" in x for x in latex)
    assert not any(SCI.search(outside_text(x)) or r"\bar" in x for x in latex)
    conventions = next(c.value for c in at.caption if c.value.startswith("Conventions:"))
    assert "(std + ε_std), ε_std = adv_eps = 1×10⁻⁶" in conventions and not SCI.search(conventions)
    assert any(r"\sigma + \epsilon_{std}" in x for x in latex)   # the std's ε, not the clip ε
    # responses and tokens from 1 in the selectors and in autograd's line, as on every page
    response = next(s for s in at.selectbox if s.label == "Response")
    token = next(s for s in at.selectbox if s.label == "Token")
    assert response.options[0] == "response 1" and token.options[0].startswith("t = 1:")
    at.selectbox(key="ctl_fc_response_0").select(1).run()
    at.selectbox(key="ctl_fc_token_0").select(2).run()
    assert any(r"y_{2,3}" in x.value for x in at.latex)


# ----------------------------------------------------------------------------------------------- Clip Explorer
def test_reach_axis_spans_the_bands_and_the_mark():
    # GSPO's band [0.9997, 1.0004] and s = 1.6758: span 0.6761, 10 % of it on each side
    axis = reach_axis([Band(0.9997, 1.0004)], (1.6758,))
    assert axis.low == pytest.approx(0.9997 - 0.06761) and axis.high == pytest.approx(1.6758 + 0.06761)
    grid = ratio_grid(*axis.grid)
    assert grid[0] == pytest.approx(axis.low) and grid[-1] == pytest.approx(axis.high)
    # a mark near 0: the padding would go negative, so the grid starts at half the mark
    low = reach_axis([Band(0.9997, 1.0004)], (0.001,))
    assert low.low == pytest.approx(0.0005) and ratio_grid(*low.grid)[0] <= 0.001


def test_clip_explorer_curves_reach_the_marked_response_off_the_zoom():
    at = open_app("pages/2_clip_explorer.py", example("dual_clip_negative_advantage"), {"ce_token": 7})
    # response 2, t = 4: ratios 1, 1, 0.69/0.7, 0.4/0.05 = 8, so s = (0.69/0.7 · 8)^(1/4) = 1.67575; A = −0.7071
    s = (0.69 / 0.7 * 8) ** 0.25
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    token_down = specs[2:4]
    assert all(max(max(tr["x"]) for tr in spec["data"]) >= 8.0 for spec in token_down)   # r = 8 past the slider's 4
    wide = specs[8:10]                    # after 4 token-level and 4 zoomed sequence-level plots
    assert len(specs) == 10
    for spec in wide:
        xs = [x for tr in spec["data"] for x in tr["x"]]
        assert min(xs) < 0.9997 and max(xs) > s
        marker = [sh for sh in spec["layout"]["shapes"] if sh["type"] == "line"]
        assert marker and marker[0]["x0"] == pytest.approx(s)
    words = " ".join(m.value for m in at.markdown)
    # A < 0 and s above 1 + ε_high: GSPO's min picks s·A, which is not clipped, so the gradient flows
    assert "**The marked response on a wider axis**" in words and "is not 0 under any of them" in words


# ----------------------------------------------------------------------------------------------- Length page
def test_length_page_band_numbers_are_at_the_chosen_length():
    at = open_app("pages/3_length_aggregation.py")
    at.slider(key="ctl_la_L2_0").set_value(512).run()
    words = " ".join(m.value for m in at.markdown)
    # sampled every 4 from 1, the lengths stopped at 509 and the text gave the band there; GRPO's ε = 0.2:
    # 0.8^512 = e^(512·ln 0.8) ≈ 2.2e-50 and 1.2^512 = e^(512·ln 1.2) ≈ 3.5e40
    assert "At L = 512: with every token inside GRPO's [0.8, 1.2]" in words and "At L = 509" not in words
    assert f"anywhere in [{0.8 ** 512:.3g}, {1.2 ** 512:.3g}]" in words
    band = json.loads(at.get("plotly_chart")[1].proto.spec)
    assert all(tr["x"][-1] == 512 for tr in band["data"])


def test_length_page_overlong_ramp_has_its_exact_corners():
    at = open_app("pages/3_length_aggregation.py")
    spec = json.loads(at.get("plotly_chart")[3].proto.spec)     # DAPO's L_max = 20480, L_cache = 4096
    x, y = spec["data"][0]["x"], spec["data"][0]["y"]
    # the ramp ((L_max − L_cache) − |y|)/L_cache: 0 at |y| = 16384 and (16384 − 20480)/4096 = −1 at 20480; the
    # samples every 20480 // 200 = 102 tokens hit neither, so the corners were cut
    assert y[x.index(16384)] == 0 and y[x.index(20480)] == -1
    assert y[x.index(16384) + 1] < 0 and y[x.index(20480) - 1] > -1


# ----------------------------------------------------------------------------------------------- toolbar
def test_toolbar_has_no_deploy_button():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["toolbarMode"] == "viewer"
    # and Streamlit reads it from the app's folder (the option exists in this version)
    out = subprocess.run([sys.executable, "-m", "streamlit", "config", "show"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60).stdout
    assert re.search(r'^toolbarMode = "viewer"$', out, re.M)
