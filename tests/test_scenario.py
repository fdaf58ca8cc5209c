"""Scenario-level rules: overlong filtering and punishment, advantage overrides, per-token advantages, round trips."""
import math

import pytest

from gspo_viz import ScenarioError, parse_scenario, run_scenario
from gspo_viz.scenarios import scenario_to_dict


def resp(n, reward, **extra):
    return {"p_old": [0.5] * n, "p_new": [0.6] * n, "reward": reward, **extra}


def test_overlong_filter_masks_truncated_responses():
    data = {"responses": [resp(2, 1.0), resp(3, 0.0, truncated=True), resp(2, 0.0)],
            "settings": {"objective": "dapo", "overlong": {"filter": True}}}
    res = run_scenario(parse_scenario(data))
    ex = res.explanation
    assert res.masked == [1]
    assert (ex.grad_weight[1] == 0).all() and ex.metrics["tokens"] == 4
    # the truncated response still counts in the group's advantage (computed before filtering) ...
    assert res.advantages.tolist()[1] < 0
    # ... but not in DAPO's token count: J = Σ over the 4 remaining tokens / 4
    A = res.advantages.tolist()
    r = 0.6 / 0.5  # 1.2 ≤ 1.28, unclipped
    assert ex.J == pytest.approx((2 * r * A[0] + 2 * r * A[2]) / 4)
    unfiltered = run_scenario(parse_scenario({**data, "settings": {"objective": "dapo"}}))
    assert unfiltered.masked == [] and unfiltered.explanation.metrics["tokens"] == 7


def test_soft_overlong_punishment_shapes_rewards():
    # L_max = 4, L_cache = 2: lengths 2 → 0, 3 → (2 − 3)/2 = −0.5, 5 → −1
    data = {"responses": [resp(2, 1.0), resp(3, 1.0), resp(5, 1.0)],
            "settings": {"overlong": {"l_max": 4, "l_cache": 2}}}
    res = run_scenario(parse_scenario(data))
    assert res.shaped_rewards == pytest.approx([1.0, 0.5, 0.0])
    assert not res.no_signal  # equal raw rewards, but the punishment separates them
    assert res.advantages.tolist() == pytest.approx([0.5 / (0.5 + 1e-6), 0.0, -0.5 / (0.5 + 1e-6)])


def test_a_responses_own_advantage_wins():
    data = {"responses": [resp(1, 1.0), resp(1, 0.0, advantage=-3.0)]}
    res = run_scenario(parse_scenario(data))
    assert res.advantages.tolist() == pytest.approx([0.5 / (math.sqrt(0.5) + 1e-6), -3.0])
    assert any("wins" in c for c in res.conventions)


def test_all_given_advantages_need_no_rewards_and_allow_g1():
    res = run_scenario(parse_scenario({"responses": [{"p_old": [0.5], "p_new": [0.5], "advantage": 2.0}]}))
    assert res.advantages.tolist() == [2.0] and res.rewards is None


def test_per_token_advantages():
    data = {"responses": [resp(2, 0, advantage=[1.0, -1.0]), resp(1, 0, advantage=0.5)],
            "settings": {"objective": "gspo_token"}}
    res = run_scenario(parse_scenario(data))
    assert res.advantages.tolist() == [[1.0, -1.0], [0.5, 0.0]]  # padded with 0
    with pytest.raises(ScenarioError, match=r"responses\[0\].advantage: gspo uses one advantage per response"):
        run_scenario(parse_scenario(data, "gspo"))
    with pytest.raises(ScenarioError, match="3 per-token values for 2 tokens"):
        parse_scenario({"responses": [resp(2, 0, advantage=[1.0, 1.0, 1.0])]})


@pytest.mark.parametrize("mode,std,expected", [
    ("group", "population", [0.5 / (0.5 + 1e-6), -0.5 / (0.5 + 1e-6)]),  # population std of (1, 0) is 0.5
    ("rloo", "sample", [1.0, -1.0]),                                      # 1 − 0 and 0 − 1
    ("mean", "sample", [0.5, -0.5]),
])
def test_advantage_conventions_from_settings(mode, std, expected):
    res = run_scenario(parse_scenario({"responses": [resp(1, 1.0), resp(1, 0.0)],
                                       "settings": {"advantage": mode, "std": std}}))
    assert res.advantages.tolist() == pytest.approx(expected)


def test_kl_with_reference_probabilities():
    data = {"responses": [{"p_old": [0.5], "p_new": [0.5], "p_ref": [0.25], "advantage": 0.0}],
            "settings": {"beta": 0.1, "kl": "k1"}}
    ex = run_scenario(parse_scenario(data)).explanation
    assert ex.J == pytest.approx(-0.1 * math.log(2)) and ex.metrics["kl"] == pytest.approx(math.log(2))


def test_dr_grpo_max_tokens_must_cover_the_longest_response():
    data = {"responses": [resp(3, 1.0), resp(1, 0.0)], "settings": {"objective": "dr_grpo", "max_tokens": 2}}
    with pytest.raises(ScenarioError, match="settings.max_tokens: L_max = 2 is shorter than the longest response"):
        run_scenario(parse_scenario(data))
    ok = run_scenario(parse_scenario({**data, "settings": {"objective": "dr_grpo", "max_tokens": 8}}))
    assert ok.explanation.J == pytest.approx((3 * 1.2 * 0.5 + 1.2 * -0.5) / (2 * 8))  # A = R − mean = ±0.5


def test_round_trip_keeps_every_number():
    data = {"title": "t", "notes": "n", "responses": [resp(2, 1.0, tokens=["a", "b"], truncated=True),
                                                      resp(1, 0.0, advantage=[0.3])],
            "settings": {"objective": "sapo", "tau_pos": 2.0, "overlong": {"filter": True}}}
    a = parse_scenario(data)
    b = parse_scenario(scenario_to_dict(a))
    assert b == a
    assert run_scenario(b).explanation.J == run_scenario(a).explanation.J
