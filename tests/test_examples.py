"""The worked examples of shared/seeds: published numbers that are right are reproduced, wrong ones corrected.

Each test quotes the article's step and derives the right value beside it.
"""
import json
import math
from pathlib import Path

import pytest
import torch

from gspo_viz import aggregation_weights, load_scenario, run_scenario
from gspo_viz.scenarios import parse_scenario

EX = Path(__file__).resolve().parents[1] / "examples"


def run(name, objective=None, **settings):
    data = json.loads((EX / f"{name}.json").read_text())
    data["settings"].update(settings)
    return run_scenario(parse_scenario(data, objective))


def test_every_example_has_notes_and_loads():
    files = sorted(EX.glob("*.json"))
    assert len(files) >= 6
    for f in files:
        scn = load_scenario(f)
        assert scn.title and len(scn.notes) > 100, f"{f.name} needs a title and notes saying what to notice"


# ---- seeds/003: "recommend a movie", five tokens -------------------------------------------------------------
def test_movie_ratios_as_published():
    ex = run("movie_five_tokens").explanation
    # article: 40/30 ≈ 1.33, 25/20 = 1.25, 18/15 = 1.20, 70/80 = 0.875, 60/40 = 1.50
    assert ex.token_ratio[0].tolist() == pytest.approx([4 / 3, 1.25, 1.2, 0.875, 1.5])


def test_movie_0875_is_inside_the_clip_range():
    ex = run("movie_five_tokens").explanation
    # article: "w4 = 0.875 → 截断到 0.8 (因为 0.875 < 0.8)". Wrong: 0.8 <= 0.875 <= 1.2, so no clip.
    assert ex.clip_name(0, 3) == "none"
    assert float(ex.grad_weight[0, 3]) == pytest.approx(0.875 * 1.0 / 5)  # (1/|y|)·r·A, A = 1


def test_movie_clipped_tokens_get_zero_gradient_not_1_2_a():
    ex = run("movie_five_tokens").explanation
    # article: t=1: 1.2 × 5.25 ≈ 6.3, t=2: 1.2 × 5.83, t=5: 1.2 × 8 = 9.6. With A > 0 and r > 1 + ε the objective
    # is the constant 1.2·A: its gradient is 0. Token 3 sits exactly on the bound (r = 1.2) and is not clipped.
    assert [ex.clip_name(0, t) for t in range(5)] == ["upper", "upper", "none", "none", "upper"]
    assert ex.grad_weight[0].tolist() == pytest.approx([0, 0, 1.2 / 5, 0.875 / 5, 0])
    # J = (1/5)(1.2 + 1.2 + 1.2 + 0.875 + 1.2)·A
    assert ex.J == pytest.approx((1.2 * 4 + 0.875) / 5)


def test_clip_is_not_min_times_max():
    ex = run("movie_five_tokens").explanation
    # article: clip(w) written as min(w, 1+ε)·max(w, 1−ε); for w = 4/3 that is 1.2 × 4/3 = 1.6. The clipped term of
    # token 1 is clip(4/3, 0.8, 1.2)·A = 1.2. Remove token 1's contribution from J to see it.
    others = (1.2 + 1.2 + 0.875 + 1.2) / 5
    assert (ex.J - others) * 5 == pytest.approx(1.2)
    assert (ex.J - others) * 5 != pytest.approx(1.2 * 4 / 3)


def test_grpo_outcome_reward_gives_every_token_the_same_advantage():
    # article: G_t = γ^(L−t)·R = 5.25, 5.83, 6.48, 7.2, 8 (discounted return). GRPO with an outcome reward gives
    # every token of response i the same A_i (DeepSeekMath §4.1.2), so grad_weight / r is constant in a response.
    res = run("movie_five_tokens", eps_low=0.9, eps_high=9.0)  # a wide range: nothing clipped
    ex = res.explanation
    per_token_advantage = (ex.grad_weight[0] * 5 / ex.token_ratio[0]).tolist()
    assert per_token_advantage == pytest.approx([1.0] * 5)
    discounted = [8 * 0.9 ** (4 - t) for t in range(5)]
    assert discounted == pytest.approx([5.2488, 5.832, 6.48, 7.2, 8.0])  # the article's numbers, reproduced ...
    assert per_token_advantage != pytest.approx([d / 8 for d in discounted])  # ... and not what GRPO uses


# ---- seeds/003: three responses, lengths 7/5/3 ----------------------------------------------------------------
def test_three_responses_sequence_ratios_as_published():
    ex = run("three_responses_gspo").explanation
    # article: 2^(1/7) ≈ 1.104, 1.5^(1/5) ≈ 1.084, 0.8^(1/3) ≈ 0.928
    assert ex.seq_ratio.tolist() == pytest.approx([2 ** (1 / 7), 1.5 ** (1 / 5), 0.8 ** (1 / 3)], rel=1e-9)
    assert [round(x, 3) for x in ex.seq_ratio.tolist()] == [1.104, 1.084, 0.928]


def test_three_responses_advantage_is_the_group_z_score_not_0166():
    res = run("three_responses_gspo")
    # article: A = (1.104 + 1.084)/2 − 0.928 = 0.166 (a "good minus bad" mean of ratios). GSPO eq. 6 uses
    # A_i = (r_i − mean)/std: mean(9, 8, 5) = 22/3, sample std = sqrt(((5/3)² + (2/3)² + (7/3)²)/2) = sqrt(13/3)
    std = math.sqrt(13 / 3)
    assert res.reward_std == pytest.approx(std)
    assert res.advantages.tolist() == pytest.approx([(5 / 3) / (std + 1e-6), (2 / 3) / (std + 1e-6),
                                                     (-7 / 3) / (std + 1e-6)])
    assert not any(a == pytest.approx(0.166, abs=1e-3) for a in res.advantages.tolist())


def test_three_responses_all_clipped_under_gspo_band_none_under_02():
    ex = run("three_responses_gspo").explanation
    # ε 3e-4/4e-4: s = 1.104, 1.084 above 1.0004 with A > 0; s = 0.928 below 0.9997 with A < 0
    assert [ex.clip_name(i, 0) for i in range(3)] == ["upper", "upper", "lower"]
    assert (ex.grad_weight == 0).all()
    wide = run("three_responses_gspo", eps_low=0.2, eps_high=0.2)
    A, s = wide.advantages.tolist(), wide.explanation.seq_ratio.tolist()
    for i, n in enumerate([7, 5, 3]):
        assert wide.explanation.grad_weight[i, :n].tolist() == pytest.approx([s[i] * A[i] / (3 * n)] * n)


# ---- seeds/004: Dual-Clip, DAPO, Dr.GRPO ---------------------------------------------------------------------
def test_dual_clip_example():
    res = run("dual_clip_negative_advantage")
    ex = res.explanation
    A = res.advantages.tolist()[1]
    assert A == pytest.approx(-0.5 / (math.sqrt(0.5) + 1e-6))
    assert ex.clip_name(1, 3) == "dual" and float(ex.grad_weight[1, 3]) == 0
    plain = run("dual_clip_negative_advantage", objective="grpo").explanation
    assert plain.clip_name(1, 3) == "none"
    assert float(plain.grad_weight[1, 3]) == pytest.approx(8 * A / (2 * 4))  # (1/G)(1/|y|)·r·A, r = 0.4/0.05 = 8
    # the only difference in J is that token's term: c·A instead of r·A, divided by G·|y| = 8
    assert ex.J - plain.J == pytest.approx((3 * A - 8 * A) / 8)


def test_dapo_clip_higher_example():
    # DAPO §3.1: with ε = 0.2, p_old = 0.01 cannot rise past 0.01 × 1.2 = 0.012 (p_old = 0.9: 1.08, never binding)
    assert 0.01 * 1.2 == pytest.approx(0.012) and 0.9 * 1.2 > 1
    dapo = run("dapo_clip_higher").explanation
    grpo = run("dapo_clip_higher", objective="grpo").explanation
    assert dapo.clip_name(0, 0) == "none" and float(dapo.grad_weight[0, 0]) > 0  # 1.25 < 1.28
    assert grpo.clip_name(0, 0) == "upper" and float(grpo.grad_weight[0, 0]) == 0  # 1.25 > 1.2
    assert grpo.clip_name(0, 1) == "none"  # the frequent "," (r = 0.95/0.9) keeps learning


def test_dapo_token_level_loss_weights_from_the_article():
    # seeds/004: two responses of 200 and 10 tokens. GRPO weights a token (1/200)(1/2) or (1/10)(1/2); DAPO 1/210.
    mask = torch.zeros(2, 200, dtype=torch.float64)
    mask[0, :200] = 1
    mask[1, :10] = 1
    grpo_w = aggregation_weights(mask, "seq-mean-token-mean")
    dapo_w = aggregation_weights(mask, "token-mean")
    assert float(grpo_w[0, 0]) == pytest.approx(1 / 200 / 2) and float(grpo_w[1, 0]) == pytest.approx(1 / 10 / 2)
    assert float(dapo_w[0, 0]) == pytest.approx(1 / 210) and float(dapo_w[1, 0]) == pytest.approx(1 / 210)
    # Dr.GRPO (seeds/004): the same divisor G·MAX_TOKENS for every token
    dr_w = aggregation_weights(mask, "seq-mean-token-sum-norm", l_max=256)
    assert float(dr_w[0, 0]) == float(dr_w[1, 0]) == pytest.approx(1 / (2 * 256))


def test_dr_grpo_uses_mean_centred_advantages():
    res = run("dapo_clip_higher", objective="dr_grpo")
    assert res.advantages.tolist() == pytest.approx([0.5, -0.5])  # R − mean, no std (Dr.GRPO §3.1)


# ---- equal rewards and GSPO's s = 1 -------------------------------------------------------------------------------
def test_equal_rewards_no_signal_and_dynamic_sampling():
    res = run("equal_rewards_no_signal")
    assert res.no_signal and not res.dropped
    assert res.advantages.tolist() == [0.0] * 4 and res.explanation.loss == 0
    assert (res.explanation.grad_weight == 0).all()
    dropped = run("equal_rewards_no_signal", dynamic_sampling=True)
    assert dropped.dropped and dropped.masked == [0, 1, 2, 3]
    assert dropped.explanation.metrics["dropped_by_dynamic_sampling"] is True


def test_gspo_token_ratios_1105_1_0905_give_s_1():
    res = run("gspo_equal_token_weights")
    ex = res.explanation
    assert ex.token_ratio[0].tolist() == pytest.approx([math.exp(0.1), 1.0, math.exp(-0.1)])
    assert [round(x, 3) for x in ex.token_ratio[0].tolist()] == [1.105, 1.0, 0.905]
    assert float(ex.seq_ratio[0]) == pytest.approx(1.0, abs=1e-15)
    A = res.advantages.tolist()[0]
    assert ex.grad_weight[0].tolist() == pytest.approx([0.5 * A / 3] * 3)  # (1/G)·s·A/|y|, the same for each token
    grpo = run("gspo_equal_token_weights", objective="grpo").explanation
    assert grpo.grad_weight[0].tolist() == pytest.approx([0.5 * A * r / 3 for r in ex.token_ratio[0].tolist()])
