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


# ------------------------------------------------------------------------------------------------------------ issue 9
def test_rewards_and_advantages_are_bounded_at_1e15():
    ok = run_scenario(parse_scenario({"responses": [resp(1, 1e15), resp(1, -1e15)]}))
    assert ok.advantages.tolist() == pytest.approx([1 / math.sqrt(2), -1 / math.sqrt(2)], rel=1e-6)
    for bad in ({"responses": [resp(1, 1e308), resp(1, 0.0)]}, {"responses": [resp(1, 0.0, advantage=[-2e15])]}):
        with pytest.raises(ScenarioError, match=r"beyond ±1e15, the limit for rewards and advantages"):
            parse_scenario(bad)


@pytest.mark.parametrize("data, where, what", [
    # each within the parser's bounds, but together beyond float64: refused, never a NaN or inf in the result
    ({"responses": [{"logp_old": [-1.0, -700.0], "logp_new": [-1.0, 0.0], "advantage": -1e15}],
      "settings": {"objective": "gspo_token"}}, "responses[0] token 1", "token ratio × advantage is -inf"),
    ({"responses": [{"logp_old": [-1.0], "logp_new": [-701.0], "logp_ref": [-1.0], "advantage": 1.0}],
      "settings": {"beta": 1e300}}, "responses[0] token 0", "β × KL is inf"),
    ({"responses": [{"logp_old": [-1.0], "logp_new": [-1.0], "advantage": -1e15}],
      "settings": {"objective": "dual_clip", "dual_clip_c": 1e300}}, "responses[0] token 0", "c × advantage is -inf"),
])
def test_the_safety_net_names_what_overflowed(data, where, what):
    with pytest.raises(ScenarioError) as e:
        run_scenario(parse_scenario(data))
    assert e.value.where == where and e.value.message.startswith(f"{what}: the scenario's numbers are too large")


def test_rewards_whose_std_underflows_need_adv_eps():
    data = {"responses": [resp(1, 5e-324), resp(1, 0.0)], "settings": {"adv_eps": 0.0}}
    with pytest.raises(ScenarioError, match="std underflows to 0, and with adv_eps = 0 the z-score divides by 0"):
        run_scenario(parse_scenario(data))   # before: advantages inf and NaN
    ok = run_scenario(parse_scenario({**data, "settings": {"adv_eps": 1e-6}}))
    assert all(math.isfinite(a) for a in ok.advantages.tolist())


def test_nesting_is_refused_at_its_field():
    deep = [[[[[[[[[[[[[[[[[["x"]]]]]]]]]]]]]]]]]]
    with pytest.raises(ScenarioError, match=r"^responses\[0\]\.tokens(\[0\])+: is nested more than 16 levels deep"):
        parse_scenario({"responses": [resp(1, 1.0, tokens=deep), resp(1, 0.0)]})


@pytest.mark.parametrize("settings, message", [
    ({"objective": "x" * 5000}, "settings.objective: unknown objective \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…\""),
    ({"kl": list(range(1000))}, "settings.kl: unknown value a list of 1000 items"),
    ({"dual_clip_c": -10 ** 300}, "settings.dual_clip_c: -1000000000000000000…00000000 (301 digits) is too large "
                                  "for a setting"),
    ({"max_tokens": 10 ** 400}, "settings.max_tokens: the number 10000000000000000000…00000000 (401 digits) is too "
                                "large"),
    ({"beta": 10 ** 100}, "settings.beta: 10000000000000000000…00000000 (101 digits) is too large for a setting"),
    ({"overlong": {"filter": True, "y" * 500: 1}}, "settings.overlong: unknown key \"yyyyyyyyyyyyyyyyyyyyyy"),
    ({"z" * 500: 1}, "settings.zzzzzzzzzzzzzzzzzzzzzzzzzzzz…zzzzzzzzzz: unknown setting"),
])
def test_settings_messages_quote_values_short(settings, message):
    with pytest.raises(ScenarioError) as e:
        parse_scenario({"responses": [resp(1, 1.0), resp(1, 0.0)], "settings": settings})
    assert str(e.value).startswith(message) and len(str(e.value)) < 250, str(e.value)
