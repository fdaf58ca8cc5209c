"""Rollout correction (core/rollout.py): w = π_old/π_rollout per token, or its product per response, truncated at C
(TIS) or set to 0 outside [lower, C] (IcePop), multiplies each token's policy term. Numbers by hand; verl's own
weights and losses are in tests/test_verl_parity.py."""
import math

import pytest

from gspo_viz import parse_scenario, run_scenario
from gspo_viz.scenarios import ScenarioError
from gspo_viz.views.narrate import facts, sentence
from gspo_viz.views.report import steps_json

# GRPO, A = ±(1 − 0.5)/(0.70711 + 1e-6) = ±0.70711, ε = 0.2 (no token clipped: every ratio within [0.8, 1.2])
RESPONSES = [{"logp_old": [-1.0, -2.0, -0.5], "logp_new": [-0.9, -2.1, -0.4],
              "logp_rollout": [-1.8, -2.0, -0.45], "reward": 1.0},
             {"logp_old": [-0.7, -1.5], "logp_new": [-0.8, -1.4], "logp_rollout": [-0.6, -1.6], "reward": 0.0}]
A = 0.5 / (math.sqrt(0.5) + 1e-6)


def run(objective="grpo", **settings):
    return run_scenario(parse_scenario({"responses": RESPONSES, "settings": {"objective": objective, **settings}}))


def test_token_level_weights_truncated_at_c():
    """w = π_old/π_rollout: response 1: e^0.8 = 2.2255 → truncated to 2, e^0 = 1, e^−0.05 = 0.95123;
    response 2: e^−0.1 = 0.90484, e^0.1 = 1.10517. GRPO's weight: (1/G)(1/|y_i|)·w·r·A."""
    ex = run(rollout_is="token").explanation
    w = [[2.0, 1.0, math.exp(-0.05)], [math.exp(-0.1), math.exp(0.1)]]
    r = [[math.exp(0.1), math.exp(-0.1), math.exp(0.1)], [math.exp(-0.1), math.exp(0.1)]]
    for i, (L, a) in enumerate(((3, A), (2, -A))):
        for t in range(L):
            assert float(ex.grad_weight[i, t]) == pytest.approx(w[i][t] * r[i][t] * a / (2 * L), rel=1e-9)
    assert ex.rollout.truncated.tolist()[0] == [True, False, False]
    assert ex.metrics["rollout_truncated_fraction"] == pytest.approx(1 / 5)
    assert ex.metrics["rollout_logp_gap"] == pytest.approx((0.8 + 0 + 0.05 + 0.1 + 0.1) / 5)
    off = run().explanation                              # without the correction the first token's weight halves
    assert float(ex.grad_weight[0, 0]) == pytest.approx(2 * float(off.grad_weight[0, 0]))


def test_sequence_level_icepop_masks_a_whole_response():
    """Per response, Π_t π_old/π_rollout: response 1: e^(0.8 + 0 − 0.05) = e^0.75 = 2.117 > 2: set to 0
    (IcePop with [0.5, 2]), so its tokens get policy gradient 0; response 2: e^0 = 1: kept."""
    res = run(rollout_is="sequence", rollout_is_threshold_lower=0.5)
    ex = res.explanation
    assert ex.grad_weight[0].tolist() == [0.0, 0.0, 0.0]
    assert float(ex.grad_weight[1, 0]) == pytest.approx(math.exp(-0.1) * -A / 4)
    said = [f for f in facts(res) if f.kind == "rollout"][0]
    assert said.zero and set(said.items) == {(0, 0), (0, 1), (0, 2)} and (said.count, said.of) == (3, 5)
    assert "3 of 5 tokens' weights fell outside [0.5, 2] and were set to 0" in sentence(res)
    s = steps_json(res, 0, 1)
    assert s["grad_weight"] == s["autograd"] == 0.0
    names = [x["name"] for x in s["steps"]]
    k = names.index("rollout IS weight (sequence)")
    assert names[k + 1] == "kept inside [lower, C] (IcePop)" and s["steps"][k + 1]["value"] == 0.0
    assert s["steps"][k]["value"] == pytest.approx(math.exp(0.75))


def test_steps_end_in_autograd_with_the_weight_in_the_factor():
    res = run(rollout_is="token")
    for i, t in ((0, 0), (0, 2), (1, 1)):
        s = steps_json(res, i, t)
        assert s["grad_weight"] == pytest.approx(s["autograd"], rel=1e-12)
        factor = next(x for x in s["steps"] if x["name"] == "aggregation factor")
        assert "w^{rc}" in factor["formula"]
    assert "1 of 5 tokens' weights π_old/π_rollout were above C = 2 and count with weight 2" in sentence(res)


def test_what_rollout_correction_refuses_says_why():
    with pytest.raises(ScenarioError, match="term is one per response: use sequence"):
        run("gspo", rollout_is="token")
    assert run("gspo", rollout_is="sequence").explanation.rollout is not None
    no_rollout = [dict(r) for r in RESPONSES]
    del no_rollout[1]["logp_rollout"]
    with pytest.raises(ScenarioError, match=r"responses\[1\]: rollout_is is set: every response needs p_rollout"):
        run_scenario(parse_scenario({"responses": no_rollout, "settings": {"rollout_is": "token"}}))
    with pytest.raises(ScenarioError, match="rollout_is_threshold_lower: must be <= rollout_is_threshold"):
        run(rollout_is="token", rollout_is_threshold_lower=3.0)
    with pytest.raises(ScenarioError, match="rollout_is: unknown level 'batch'"):
        run(rollout_is="batch")


def test_the_mismatch_presets_numbers_are_the_cores():
    """examples/rollout_mismatch.json's notes quote these: " 12" (response 1) w = 0.02/0.005 = 4 → 2, its weight
    0.0595 → 0.119; " 12" (response 3) w = 0.05/0.3 = 0.167, 0.0794 → 0.0132; the others' w in [0.94, 1.05]; the mean
    |log π_old − log π_rollout| 0.265; with a lower bound 0.5 both " 12" tokens get 0."""
    import json
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "examples" / "rollout_mismatch.json"
    data = json.loads(path.read_text())
    res = run_scenario(parse_scenario(data))
    ex = res.explanation
    off = run_scenario(parse_scenario(dict(data, settings={"objective": "grpo"}))).explanation
    assert float(ex.rollout.raw[0, 3]) == pytest.approx(4.0) and float(ex.rollout.weight[0, 3]) == 2.0
    assert (round(float(off.grad_weight[0, 3]), 4), round(float(ex.grad_weight[0, 3]), 3)) == (0.0595, 0.119)
    assert float(ex.rollout.weight[2, 2]) == pytest.approx(1 / 6)
    assert (round(float(off.grad_weight[2, 2]), 4), round(float(ex.grad_weight[2, 2]), 4)) == (0.0794, 0.0132)
    others = [float(ex.rollout.raw[i, t]) for i, L in enumerate((4, 4, 3, 2)) for t in range(L)
              if (i, t) not in ((0, 3), (2, 2))]
    assert round(min(others), 2) == 0.94 and round(max(others), 2) == 1.04 and max(others) <= 1.05
    assert round(ex.metrics["rollout_logp_gap"], 3) == 0.265
    masked = run_scenario(parse_scenario(dict(data, settings=dict(data["settings"], rollout_is_threshold_lower=0.5))))
    assert float(masked.explanation.grad_weight[0, 3]) == 0.0 == float(masked.explanation.grad_weight[2, 2])
    notes = data["notes"]
    for quoted in ("w = 4, truncated to 2", "0.0595 → 0.119", "w = 0.167", "0.0794 to 0.0132", "0.265"):
        assert quoted in notes
