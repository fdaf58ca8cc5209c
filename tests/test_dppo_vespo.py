"""DPPO-TV (arXiv 2602.04879, verl's dppo_tv) and VESPO (arXiv 2602.10693, TRL's vespo) by hand: each number below
is derived beside it from the papers' formulas; the closed-form gradient weights also match autograd (explain path)."""
import json
import math

import pytest

from gspo_viz import parse_scenario, run_scenario
from gspo_viz.core.objectives import OBJECTIVES
from gspo_viz.views.narrate import sentence
from gspo_viz.views.report import steps_json


def run(responses, objective, **settings):
    return run_scenario(parse_scenario({"responses": responses, "settings": {"objective": objective, **settings}}))


# ------------------------------------------------------------------------------------------------ DPPO-TV
DPPO_GROUP = [{"p_old": [0.5, 0.1, 0.9, 0.01, 0.001], "p_new": [0.75, 0.12, 0.5, 0.1, 0.05], "advantage": 1.0},
              {"p_old": [0.6], "p_new": [0.3], "advantage": -1.0}]


def test_dppo_trust_region_is_on_the_probability_not_the_ratio():
    """Defaults ε_low = ε_high = 0.2, C = 20, token-mean over 6 tokens (factor 1/6). Response 1, A = +1:
    t1: π − π_old = 0.75 − 0.5 = 0.25 > 0.2: outside, gradient 0 (upper);
    t2: 0.12 − 0.1 = 0.02: inside; r = 1.2, weight min(1.2, 20) = 1.2: gradient 1.2/6 = 0.2;
    t3: 0.5 − 0.9 = −0.4: A > 0 bounds only the rise: inside; r = 5/9: gradient (5/9)/6 = 0.0925926;
    t4: 0.1 − 0.01 = 0.09: inside although r = 10 (GRPO would clip it): gradient 10/6 = 1.6666667;
    t5: 0.049: inside, r = 50 truncated at C = 20: gradient 20/6 = 3.3333333.
    Response 2, A = −1: 0.3 − 0.6 = −0.3 < −0.2: outside, gradient 0 (lower)."""
    res = run(DPPO_GROUP, "dppo_tv")
    ex = res.explanation
    g = ex.grad_weight
    assert [float(x) for x in g[0, :5]] == pytest.approx([0.0, 1.2 / 6, (5 / 9) / 6, 10 / 6, 20 / 6])
    assert float(g[1, 0]) == 0.0
    assert ex.closed_grad.flatten().tolist() == pytest.approx(ex.grad_weight.flatten().tolist(), abs=1e-12)
    assert ex.clip[0].tolist()[:5] == [1, 0, 0, 0, 0] and int(ex.clip[1, 0]) == 2          # upper, lower
    grpo = run(DPPO_GROUP, "grpo").explanation                 # the ratio clip stops t4 and t5, DPPO does not
    assert float(grpo.grad_weight[0, 3]) == 0.0 and float(grpo.grad_weight[0, 4]) == 0.0
    text = sentence(res)
    assert "rose by more than ε_high = 0.2 in probability (π − π_old) with A > 0" in text
    assert "fell by more than ε_low = 0.2 in probability (π − π_old) with A < 0" in text


def test_dppo_steps_end_in_autograds_weight():
    res = run(DPPO_GROUP, "dppo_tv")
    for t, inside in ((0, False), (3, True), (4, True)):
        s = steps_json(res, 0, t)
        assert s["grad_weight"] == pytest.approx(s["autograd"], abs=1e-12)
        names = [x["name"] for x in s["steps"]]
        assert "probability difference" in names and "trust region (by the sign of A)" in names
    s = steps_json(res, 0, 4)
    assert any(x["name"] == "truncated ratio (stop-gradient)" and x["value"] == pytest.approx(20.0) for x in s["steps"])


def test_dppo_cap_is_a_setting_and_is_checked():
    res = run(DPPO_GROUP, "dppo_tv", dppo_cap=4.0)             # t4's r = 10 and t5's 50 now weigh 4
    assert float(res.explanation.grad_weight[0, 3]) == pytest.approx(4 / 6)
    with pytest.raises(Exception, match="dppo_cap: must be >= 1"):
        run(DPPO_GROUP, "dppo_tv", dppo_cap=0.5)


# ------------------------------------------------------------------------------------------------ VESPO
def phi(W, k, lam):
    """The VESPO paper's φ(W) = W^k·exp(λ(1 − W))."""
    return W ** k * math.exp(lam * (1 - W))


def test_vespo_weights_by_the_whole_responses_ratio():
    """Response 1 (A = +1, (k, λ) = (2, 3)): Δ = 0.1 and 0.2, W = e^0.3 = 1.3498588,
    φ = W²·e^(3(1 − W)) = e^(0.6 − 1.0495764) = 0.637898.
    Response 2 (A = −1, (k, λ) = (3, 2)): Δ = −0.5, W = e^−0.5 = 0.6065307,
    φ = W³·e^(2(1 − W)) = e^(−1.5 + 0.7869387) = 0.490141.
    Token-mean over 3 tokens: every token of response 1 gets φ₁/3 = 0.212633, response 2's −φ₂/3 = −0.163380.
    J = (1/3)(φ₁·(−0.9 − 1.8) + φ₂·(−1)·(−1.5)) = −0.329038, so the loss is 0.329038."""
    responses = [{"logp_old": [-1.0, -2.0], "logp_new": [-0.9, -1.8], "advantage": 1.0},
                 {"logp_old": [-1.0], "logp_new": [-1.5], "advantage": -1.0}]
    res = run(responses, "vespo")
    ex = res.explanation
    p1, p2 = phi(math.exp(0.3), 2, 3), phi(math.exp(-0.5), 3, 2)
    assert (p1, p2) == pytest.approx((0.637898, 0.490141), abs=1e-6)
    assert ex.loss == pytest.approx(0.329038, abs=1e-6)
    assert ex.grad_weight[0].tolist() == pytest.approx([p1 / 3, p1 / 3])
    assert float(ex.grad_weight[1, 0]) == pytest.approx(-p2 / 3)
    assert ex.loss == pytest.approx(-(p1 * (-0.9 - 1.8) + p2 * 1.5) / 3)
    assert ex.closed_grad.flatten().tolist() == pytest.approx(ex.grad_weight.flatten().tolist(), abs=1e-12)
    assert int(ex.clip.abs().sum()) == 0                        # nothing is clipped
    s = steps_json(res, 0, 1)
    assert s["grad_weight"] == pytest.approx(s["autograd"], abs=1e-12)
    assert any(x["name"] == "φ(W) (stop-gradient)" and x["value"] == pytest.approx(p1) for x in s["steps"])


def test_vespo_phi_is_one_at_w_one_and_peaks_at_k_over_lambda():
    """φ(1) = 1; dφ/dW = φ·(k/W − λ) = 0 at W = k/λ: for A > 0 the largest weight is at W = 2/3, not at 1."""
    on_policy = run([{"logp_old": [-1.0], "logp_new": [-1.0], "advantage": 1.0},
                     {"logp_old": [-1.0], "logp_new": [-1.0], "advantage": -1.0}], "vespo").explanation
    assert on_policy.grad_weight[:, 0].tolist() == pytest.approx([0.5, -0.5])   # φ = 1, token-mean over 2
    ws = [0.3, 0.5, 2 / 3, 0.8, 1.0, 1.5]
    weights = [phi(w, 2, 3) for w in ws]
    assert max(weights) == weights[2] and weights[4] == 1.0


def test_vespo_and_dppo_are_in_the_registry_with_their_papers():
    assert OBJECTIVES["vespo"].paper == "arXiv 2602.10693" and OBJECTIVES["dppo_tv"].paper == "arXiv 2602.04879"
    assert not OBJECTIVES["vespo"].ratio_only and not OBJECTIVES["dppo_tv"].ratio_only


def test_the_presets_numbers_are_the_cores():
    """The two presets' notes quote these numbers (A = ±(1 − 0.5)/(0.7071 + 1e-6) = ±0.707 for the DPPO pair;
    rewards 1, 1, 0 give A = +0.577, +0.577, −1.155 for VESPO)."""
    from pathlib import Path
    root = Path(__file__).resolve().parents[1] / "examples"
    scn = parse_scenario(json.loads((root / "dppo_rare_tokens.json").read_text()))
    dppo, grpo = run_scenario(scn, "dppo_tv").explanation, run_scenario(scn, "grpo").explanation
    assert [round(float(x), 3) for x in dppo.grad_weight[0]] == [0.530, 0.0, 0.097, 0.177]
    assert float(grpo.grad_weight[0, 0]) == 0.0 == float(grpo.grad_weight[0, 3])      # "GRPO gives it 0"
    assert dppo.clip[0].tolist() == [0, 1, 0, 0] and dppo.clip[1].tolist() == [0, 2, 0, 0]
    notes = (root / "dppo_rare_tokens.json").read_text()
    for quoted in ("0.530", "0.177", "π − π_old = 0.25 > 0.2", "−0.25 < −0.2"):
        assert quoted in notes
    scn = parse_scenario(json.loads((root / "vespo_far_answers.json").read_text()))
    res = run_scenario(scn, "vespo")
    g = res.explanation.grad_weight
    assert (round(float(g[0, 0]), 4), round(float(g[1, 0]), 5), round(float(g[2, 0]), 4)) == (0.0468, 0.00055, -0.0717)
    assert [round(phi(math.exp(x), k, lam), 4) for x, k, lam in ((0.1, 2, 3), (1.2, 2, 3), (-0.3, 3, 2))] == \
        [0.8909, 0.0105, 0.6827]
    assert float(run_scenario(scn, "grpo").explanation.grad_weight[1].abs().sum()) == 0.0   # GRPO clips response 2
    assert run_scenario(scn, "gspo").explanation.metrics["seq_clip_fraction"] == 1.0       # GSPO clips all three


def test_a_surrogate_loss_says_it_is_one():
    """CISPO's, DPPO's and VESPO's loss values are −Σ w·sg[weight]·A·log π: the conventions say they do not compare
    with a clipped surrogate's; GRPO's conventions do not."""
    for name, said in (("cispo", True), ("dppo_tv", True), ("vespo", True), ("grpo", False)):
        res = run(DPPO_GROUP, name)
        assert any("its loss value is a surrogate" in c for c in res.conventions) == said, name
