"""Our objectives against verl 0.9.1's own policy losses (trainer/ppo/core_algos.py), per loss_agg_mode.

The answer key, tests/reference/verl_0.9.1.json, is verl's output on random groups (with and without rollout
correction: verl's own compute_rollout_correction_weights, token and sequence level, truncated and masked, passed to
the loss as rollout_is_weights; and TRL 1.16's for VESPO, which verl lacks), written by
tests/reference/make_verl_reference.py in a separate virtualenv (verl is never a dependency of the app). Each case
is run here through the scenario path the app and the command line use, and must give verl's loss (where verl's
loss value is the objective: not CISPO's surrogate −sg(clip r)·A·log π) and, for every token, the gradient weight
∂J/∂log π = −∂loss/∂log π that autograd took through verl's function, to 1e-6 relative.
"""
import json
from pathlib import Path

import pytest

from gspo_viz import parse_scenario, run_scenario
from gspo_viz.core.aggregation import TOKEN_MODES
from gspo_viz.core.objectives import OBJECTIVES

REFERENCE = json.loads((Path(__file__).parent / "reference" / "verl_0.9.1.json").read_text())
CASES = REFERENCE["cases"]


def ours(case: dict):
    data = {"responses": case["responses"], "settings": {"objective": case["objective"],
                                                         "loss_agg_mode": case["loss_agg_mode"],
                                                         **(case.get("rollout") or {})}}
    return run_scenario(parse_scenario(data)).explanation


@pytest.mark.parametrize("k", range(len(CASES)), ids=[f"{c['objective']}-{c['loss_agg_mode']}-{k}"
                                                       for k, c in enumerate(CASES)])
def test_loss_and_every_gradient_weight_match_verl(k):
    case = CASES[k]
    ex = ours(case)
    if case["value_compares"]:
        assert ex.loss == pytest.approx(case["verl_loss"], rel=1e-6, abs=1e-12)
    # abs 1e-9: verl's geo_mean takes exp(mean log(w + 1e-10)) of the rollout weights, so a response IcePop set to
    # 0 keeps a weight of 1e-10 there (a gradient ~1e-11 where ours is exactly 0); the weights here are 1e-3 to 1
    for i, row in enumerate(case["verl_grad"]):
        for t, g in enumerate(row):
            assert float(ex.grad_weight[i, t]) == pytest.approx(-g, rel=1e-6, abs=1e-9), (i, t)


@pytest.mark.parametrize("k", range(len(REFERENCE["trl_cases"])))
def test_vespo_matches_trl(k):
    """VESPO (verl 0.9.1 has none) against TRL 1.16's own: its get_gamma_weights φ(W), loss −φ·A·log π over the
    tokens; the loss and every gradient weight, to 1e-6 relative."""
    case = REFERENCE["trl_cases"][k]
    data = {"responses": case["responses"], "settings": {"objective": "vespo", **case["settings"]}}
    ex = run_scenario(parse_scenario(data)).explanation
    assert ex.loss == pytest.approx(case["trl_loss"], rel=1e-6, abs=1e-12)
    for i, row in enumerate(case["trl_grad"]):
        for t, g in enumerate(row):
            assert float(ex.grad_weight[i, t]) == pytest.approx(-g, rel=1e-6, abs=1e-12), (i, t)


def test_the_key_covers_every_objective_and_every_token_mode():
    """Every objective of the registry is checked against verl (VESPO, which verl lacks, against TRL), and the
    token-level ones under every token mode."""
    assert REFERENCE["verl"] == "0.9.1" and REFERENCE["trl"] == "1.16.0"
    seen = {(c["objective"], c["loss_agg_mode"]) for c in CASES}
    assert {o for o, _ in seen} | {c["objective"] for c in REFERENCE["trl_cases"]} == set(OBJECTIVES)
    for name in ("grpo", "dual_clip", "dapo", "dr_grpo", "gspo", "gspo_token", "cispo", "dppo_tv"):
        assert {m for o, m in seen if o == name} == set(TOKEN_MODES), name
    # the cases reach both sides of the clip: some tokens clipped, some not, for the PPO-clipped objectives
    # rollout correction: token and sequence level, truncated (TIS) and masked (IcePop), for every objective verl
    # runs with rollout_is_weights (GSPO and GMPO: sequence level only, one term per response)
    rc = {(c["objective"], c["rollout"]["rollout_is"], c["rollout"]["rollout_is_threshold_lower"] is None)
          for c in CASES if c.get("rollout")}
    for name in {c["objective"] for c in CASES}:
        levels = ("sequence",) if name in ("gspo", "gmpo") else ("token", "sequence")
        assert {(name, level, tis) for level in levels for tis in (True, False)} <= rc, name
    for name in ("grpo", "dapo", "gspo", "dppo_tv"):
        zero = [g == 0.0 for c in CASES if c["objective"] == name for row in c["verl_grad"] for g in row]
        assert any(zero) and not all(zero), name
