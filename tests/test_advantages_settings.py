"""Advantages (both std conventions, Dr.GRPO, RLOO), overlong shaping, and the validated settings."""
import math

import pytest
import torch

from gspo_viz import Settings, SettingsError, group_advantages, overlong_penalty

R = torch.tensor([9.0, 8.0, 5.0], dtype=torch.float64)


def test_group_z_score_sample_std():
    # mean 22/3; deviations 5/3, 2/3, −7/3; sample variance (25 + 4 + 49)/9/2 = 13/3
    a, s = group_advantages(R)
    sd = math.sqrt(13 / 3)
    assert float(s.mean) == pytest.approx(22 / 3) and float(s.std) == pytest.approx(sd)
    assert a.tolist() == pytest.approx([5 / 3 / (sd + 1e-6), 2 / 3 / (sd + 1e-6), -7 / 3 / (sd + 1e-6)])


def test_group_z_score_population_std():
    a, s = group_advantages(R, std="population")  # variance 78/27 = 26/9, std √26/3
    assert float(s.std) == pytest.approx(math.sqrt(26) / 3)
    assert a.tolist()[0] == pytest.approx(5 / 3 / (math.sqrt(26) / 3 + 1e-6))


def test_trl_and_verl_conventions():
    # TRL: (r − mean) / (std + 1e-4), std unbiased; verl: (r − mean) / (std + 1e-6), std unbiased (torch.std).
    r = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0], dtype=torch.float64)
    sd = math.sqrt(sum((x - 0.6) ** 2 for x in r.tolist()) / 4)
    for eps in (1e-4, 1e-6):
        a, _ = group_advantages(r, adv_eps=eps)
        assert a.tolist() == pytest.approx([(x - 0.6) / (sd + eps) for x in r.tolist()])


def test_mean_and_rloo():
    assert group_advantages(R, mode="mean")[0].tolist() == pytest.approx([5 / 3, 2 / 3, -7 / 3])
    # RLOO: 9 − (8 + 5)/2 = 2.5; 8 − (9 + 5)/2 = 1; 5 − (9 + 8)/2 = −3.5
    assert group_advantages(R, mode="rloo")[0].tolist() == pytest.approx([2.5, 1.0, -3.5])


def test_equal_rewards_give_exact_zero_and_no_signal():
    a, s = group_advantages(torch.tensor([0.1, 0.1, 0.1], dtype=torch.float64))  # 0.1·3/3 ≠ 0.1 in floating point
    assert a.tolist() == [0.0, 0.0, 0.0] and bool(s.no_signal)
    batched, s2 = group_advantages(torch.tensor([[1.0, 1.0], [1.0, 0.0]]))
    assert s2.no_signal.tolist() == [True, False] and batched[0].tolist() == [0, 0]


def test_group_of_one_is_refused():
    with pytest.raises(ValueError, match="at least 2 responses"):
        group_advantages(torch.tensor([1.0]))


def test_overlong_penalty():
    # DAPO eq. 13 with L_max = 20, L_cache = 4: free up to 16, then (16 − |y|)/4, then −1 past 20
    got = overlong_penalty(torch.tensor([10, 16, 18, 20, 21]), 20, 4).tolist()
    assert got == pytest.approx([0, 0, -0.5, -1.0, -1.0])


def test_defaults_per_objective():
    assert Settings(objective="dapo").resolved().eps_high == 0.28
    g = Settings(objective="gspo").resolved()
    assert (g.eps_low, g.eps_high) == (3e-4, 4e-4)
    assert Settings(objective="cispo").resolved().eps_low is None
    assert Settings(objective="dr_grpo").resolved().advantage == "mean"
    assert Settings(objective="dual_clip").resolved().dual_clip_c == 3.0
    assert Settings(objective="grpo", eps_high=0.3).resolved().eps_high == 0.3  # given knobs win


@pytest.mark.parametrize("kwargs,field,words", [
    ({"dual_clip_c": 1.0}, "dual_clip_c", "must be > 1"),
    ({"eps_low": 1.0}, "eps_low", "[0, 1)"),
    ({"eps_high": -0.1}, "eps_high", "[0, 10]"),
    ({"objective": "ppo"}, "objective", "valid: grpo, dual_clip"),
    ({"kl": "k4"}, "kl", "valid: k1, k2, k3"),
    ({"std": "biased"}, "std", "valid: sample, population"),
    ({"beta": float("nan")}, "beta", "finite"),
])
def test_settings_errors_teach(kwargs, field, words):
    with pytest.raises(SettingsError) as e:
        Settings(**kwargs)
    assert e.value.field == field and words in str(e.value)


def test_unknown_setting_lists_valid_ones():
    with pytest.raises(SettingsError) as e:
        Settings.from_dict({"epsilon": 0.2})
    assert e.value.field == "epsilon" and "eps_high" in str(e.value)
