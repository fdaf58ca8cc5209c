"""The Clip Explorer and the Length & Aggregation page: the exact GSPO length threshold, captions computed from the
controls (ε sliders, the sign of A), and the marked token inside the curves' range."""
import json
import math
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from gspo_viz.core.curves import (drift_clip, drift_curves, first_length_within, ratio_axis, ratio_grid,
                                  shortest_unclipped_length)
from gspo_viz.core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
EXPLORER, LENGTH = "pages/2_clip_explorer.py", "pages/3_length_aggregation.py"


# ---------------------------------------------------------------------------------------------- the exact threshold
def test_threshold_hand_values():
    assert shortest_unclipped_length(0.5, 3e-4, 4e-4) == 1251       # 0.5 / ln(1.0004) = 1250.25 → 1251
    assert shortest_unclipped_length(-0.5, 3e-4, 4e-4) == 1667      # 0.5 / −ln(0.9997) = 1666.42 → 1667
    assert shortest_unclipped_length(1.0, 3e-4, 4e-4) == 2501       # grows with |δ|: 2500.5 → 2501
    assert shortest_unclipped_length(0.0, 3e-4, 4e-4) == 1
    assert shortest_unclipped_length(0.1, 0.2, 0.2) == 1            # e^0.1 = 1.105 is inside [0.8, 1.2] already
    assert shortest_unclipped_length(0.5, 0.2, 0.0) is None         # ε_high = 0: any s > 1 is outside
    assert shortest_unclipped_length(-0.5, None, 0.2) == 1          # no lower bound


def test_threshold_on_the_bound_is_not_clipped():
    # δ / ln(1 + ε) = 3 exactly: at L = 3, s = e^(ln 2) = 2 = 1 + ε_high, on the bound, not clipped (strict clip)
    delta = 3 * math.log(2)
    assert delta / math.log1p(1.0) == 3.0 and math.exp(delta / 3) == 2.0 and math.exp(delta / 2) > 2.0
    assert shortest_unclipped_length(delta, 0.2, 1.0) == 3
    # the same on the lower side: s = e^(ln 0.5) = 0.5 = 1 − ε_low at L = 2
    assert shortest_unclipped_length(2 * math.log(0.5), 0.5, 1.0) == 2


def test_threshold_corrects_the_floating_point_ceiling():
    # in exact arithmetic δ / ln 2 = 895; in floating point the quotient lands just above, and the bare ceiling
    # would say 896, while s = e^(δ/895) is within 1 + ε_high = 2
    delta = 895 * math.log(2)
    assert math.ceil(delta / math.log1p(1.0)) == 896
    assert math.exp(delta / 895) <= 2.0
    assert shortest_unclipped_length(delta, 0.2, 1.0) == 895


@pytest.mark.parametrize("delta,eps_low,eps_high", [(0.5, 3e-4, 4e-4), (-0.5, 3e-4, 4e-4), (2.3, 1e-3, 2e-3),
                                                    (-1.7, 2e-4, 1e-4), (895 * math.log(2), 0.2, 1.0)])
def test_threshold_agrees_with_the_objective_clip(delta, eps_low, eps_high):
    """At L − 1 the gspo objective clips the response whose A pushes the way the token drifted; at L it does not."""
    L = shortest_unclipped_length(delta, eps_low, eps_high)
    sign = 1.0 if delta > 0 else -1.0
    cfg = Settings(eps_low=eps_low, eps_high=eps_high)
    assert drift_clip([L - 1, L], delta, sign, "gspo", cfg) == ["upper" if delta > 0 else "lower", "none"]
    assert drift_clip([1, L - 1, L], delta, -sign, "gspo", cfg) == ["none"] * 3   # the other sign: never clipped


def test_the_grid_read_value_differs_from_the_exact_one():
    lengths = list(range(32, 4097, 32))                 # sampled every 32 tokens, as a plot would be
    s, _ = drift_curves(lengths, 0.5)
    assert first_length_within(lengths, s, 3e-4, 4e-4) == 1280
    assert shortest_unclipped_length(0.5, 3e-4, 4e-4) == 1251


def test_ratio_axis_reaches_the_marked_ratio():
    axis = ratio_axis(4.0, (8.0,))
    grid = ratio_grid(*axis.grid)
    assert axis.extended and grid[-1] >= 8.0 and grid[-1] == pytest.approx(axis.high)
    plain = ratio_axis(4.0, (1.5,))
    assert not plain.extended and ratio_grid(*plain.grid)[-1] == pytest.approx(4.0)
    assert ratio_grid(*ratio_axis(4.0, (0.002,)).grid)[0] <= 0.002


# ---------------------------------------------------------------------------------------------- the pages
pytestmark = pytest.mark.usefixtures("navigation_mode")   # tests/conftest.py: AppTest in st.navigation mode


def open_page(page):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def ctl(key):
    return f"ctl_{key}_0"


def texts(at):
    return " ".join(m.value for m in at.markdown)


def captions(at):
    return " ".join(c.value for c in at.caption)


def test_length_page_shows_every_loss_agg_mode_with_the_papers_that_use_it():
    """Section 1 draws a curve per verl mode; with G = 8, others at 32 tokens and L = 512 (the defaults), a token
    weighs 1/(512 + 7·32) = 1/736 under token-mean, 1/8 under seq-mean-token-sum (the whole 512-token answer 64)
    and 1/(8·512) under seq-mean-token-sum-norm with L_max 512."""
    at = open_page(LENGTH)
    shown = " ".join(m.value for m in at.markdown)
    fig = next(c for c in at.get("plotly_chart") if "per loss_agg_mode" in c.proto.spec)
    names = [t["name"] for t in json.loads(fig.proto.spec)["data"]]
    assert [n.split(" ")[0] for n in names] == ["seq-mean-token-mean", "token-mean", "seq-mean-token-sum",
                                                "seq-mean-token-sum-norm", "seq-mean"]
    assert "- **token-mean** (DAPO, CISPO, VESPO, DPPO-TV): (1/Σ_i |y_i|) Σ_i Σ_t. One token: **0.00136**" \
        in shown                                                                                         # 1/736
    assert "- **seq-mean-token-sum** (no paper here; verl offers it): (1/G) Σ_i Σ_t. One token: **0.125**, the " \
           "whole answer: **64**" in shown
    assert "- **seq-mean-token-sum-norm** (Dr.GRPO): (1/(G·L_max)) Σ_i Σ_t. One token: **0.000244**" in shown


def test_length_page_threshold_caption_says_both_signs():
    at = open_page(LENGTH)
    at.slider(key=ctl("la_delta")).set_value(0.5).run()
    shown = texts(at)
    assert "from L = **1251** on" in shown and "L = 1280" not in shown
    assert "at δ = 1 it would be **2501**" in shown                        # N grows with |δ|
    assert "**A > 0** pushes s_i further the way the token drifted: the response is clipped at every L < 1251" \
        in shown
    assert "**A < 0** pushes s_i back towards 1: the response is not clipped at any length" in shown
    at.slider(key=ctl("la_delta")).set_value(-0.5).run()
    shown = texts(at)
    assert "from L = **1667** on" in shown
    assert "**A < 0** pushes s_i further the way the token drifted: the response is clipped at every L < 1667" \
        in shown and "below 1 − ε_low" in shown
    assert "**A > 0** pushes s_i back towards 1: the response is not clipped at any length" in shown
    # the caption follows the sequence-level ε: ⌈0.5 / ln(1.001)⌉ = 501
    at.slider(key=ctl("la_delta")).set_value(0.5).run()
    at.number_input(key=ctl("la_gspo_eps_high")).set_value(1e-3).run()
    assert "from L = **501** on" in texts(at)


def test_clip_explorer_band_caption_follows_the_sliders():
    at = open_page(EXPLORER)
    shown = captions(at)
    assert "DAPO's [0.8, 1.28] (0.48 wide)" in shown and "GRPO's [0.8, 1.2] (0.4 wide)" in shown
    assert "GSPO clips s_i to [0.9997, 1.0004], a band 0.0007 wide" in shown
    at.slider(key=ctl("ce_dapo_eps_high")).set_value(0.35).run()
    at.slider(key=ctl("ce_grpo_eps_low")).set_value(0.1).run()
    at.number_input(key=ctl("ce_gspo_eps_high")).set_value(1e-3).run()
    shown = captions(at)
    assert "DAPO's [0.8, 1.35] (0.55 wide)" in shown and "GRPO's [0.9, 1.2] (0.3 wide)" in shown
    assert "GSPO clips s_i to [0.9997, 1.001], a band 0.0013 wide" in shown
    # and the curves follow: DAPO's A > 0 zero-gradient strip starts just above 1.35
    grad_up = json.loads(at.get("plotly_chart")[1].proto.spec)
    dapo = [s for s in grad_up["layout"]["shapes"] if s.get("fillcolor") == "#CC79A7"]
    assert dapo and 1.35 < dapo[0]["x0"] < 1.37


def test_clip_explorer_marked_token_inside_the_curves():
    at = open_page(EXPLORER)
    at.sidebar.selectbox[0].select(ROOT / "examples/dual_clip_negative_advantage.json").run()
    at.sidebar.button[0].click().run()
    at.selectbox(key=ctl("ce_token")).select(7).run()      # response 2, t = 4, r = 8, A < 0
    assert "r = **8**" in texts(at) and "past the slider's 4" in captions(at)
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    down = specs[2:4]                                       # the A < 0 panels carry the marker
    for spec in down:
        assert max(max(tr["x"]) for tr in spec["data"]) >= 8.0
        marker = [s for s in spec["layout"]["shapes"] if s["type"] == "line"]
        assert marker and marker[0]["x0"] == pytest.approx(8.0)
    # the strip legend names each strip's objective, in the strips' order
    legend = [m.value for m in at.markdown if "Strips along the top" in m.value]
    # one under each pair of plots: token level A > 0, A < 0, sequence level A > 0, A < 0, and the marked response's
    # s = 1.6758 on a wider axis (it lies off the zoom on GSPO's band)
    assert len(legend) == 5 and "1. " in legend[0] and "GRPO" in legend[0] and "CISPO: none" in legend[0]
    assert "the gradient is exactly 0 under **Dual-Clip PPO**" in texts(at)
