"""Sentences as checked facts, and the steps as the answer key: on random scenarios (β > 0 with each KL estimator,
filtered and dynamically sampled responses, per-token advantages of mixed sign, ratios exactly on a bound), every
claim a sentence makes holds in the numbers, and every token's steps end in autograd's gradient weight."""
import json
import math
import re
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, assume, example, given, settings as hsettings, strategies as st

from gspo_viz.core.aggregation import longest
from gspo_viz.core.loss import policy_weights
from gspo_viz.core.objectives import NAMES, OBJECTIVES
from gspo_viz.core.objectives.base import CLIP_NAMES, NONE
from gspo_viz.scenarios import ScenarioError, parse_scenario, run_scenario
from gspo_viz.views.narrate import facts, sentence
from gspo_viz.views.report import steps_json, to_json
from gspo_viz.views.style import fmt

RUNS = hsettings(max_examples=70, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# log-ratios that land exactly on the bounds of the objectives' defaults, and some that do not
ON_BOUNDS = [0.0, math.log(1.2), math.log(0.8), math.log(1.28), math.log(1.0004), math.log(0.9997), 0.4, -0.4,
             math.log(3.0)]


@st.composite
def scenarios(draw):
    G = draw(st.integers(2, 4))
    objective = draw(st.sampled_from(NAMES))
    deltas = st.one_of(st.sampled_from(ON_BOUNDS), st.floats(-1.5, 1.5))
    advantage_kind = draw(st.sampled_from(["reward", "reward", "given", "per_token"]))
    beta = draw(st.sampled_from([0.0, 0.0, 0.04]))
    rollout = draw(st.sampled_from([None, None, "token", "sequence"]))
    responses = []
    for _ in range(G):
        L = draw(st.integers(1, 5))
        logp_old = [draw(st.floats(-3.0, -0.05)) for _ in range(L)]
        logp_new = [min(0.0, lo + draw(deltas)) for lo in logp_old]
        r = {"logp_old": logp_old, "logp_new": logp_new, "truncated": draw(st.booleans())}
        if advantage_kind == "reward":
            r["reward"] = draw(st.sampled_from([0.0, 1.0, 0.5]))
        elif advantage_kind == "given":
            r["advantage"] = draw(st.sampled_from([0.0, 0.7, -0.7, 1.3]))
        else:
            r["advantage"] = [draw(st.sampled_from([0.5, -0.3, 0.0, 1.0])) for _ in range(L)]
        if beta:
            r["logp_ref"] = [min(0.0, lo + draw(st.floats(-0.5, 0.5))) for lo in logp_old]
        if rollout:
            r["logp_rollout"] = [min(0.0, lo + draw(st.floats(-1.0, 1.0))) for lo in logp_old]
        responses.append(r)
    settings = {"objective": objective, "beta": beta, "kl": draw(st.sampled_from(["k1", "k2", "k3"])),
                "dynamic_sampling": draw(st.booleans())}
    if rollout:
        settings |= {"rollout_is": rollout, "rollout_is_threshold": draw(st.sampled_from([1.5, 2.0]))}
        if draw(st.booleans()):
            settings["rollout_is_threshold_lower"] = draw(st.sampled_from([0.0, 0.5]))
    if draw(st.booleans()):
        settings["overlong"] = {"filter": draw(st.booleans()), "l_max": 4, "l_cache": 2} if draw(st.booleans()) \
            else {"filter": True}
    return {"responses": responses, "settings": settings}


def _result(data):
    try:
        return run_scenario(parse_scenario(data))
    except ScenarioError as e:          # e.g. per-token advantages for a per-sequence objective: refused by name
        assert "per-token advantages" in str(e) or "advantage" in str(e) or "term is one per response" in str(e)
        assume(False)


def check_facts(res):
    ex = res.explanation
    obj = OBJECTIVES[ex.objective]
    text = sentence(res)
    valid = ex.loss_mask > 0
    marked_tokens = {(i, t) for i, t in zip(*torch.nonzero((ex.clip != NONE) & valid, as_tuple=True))}
    marked_tokens = {(int(i), int(t)) for i, t in marked_tokens}
    said_marked = set()
    zero_claims = 0
    for f in facts(res):
        if f.zero:
            zero_claims += len(f.items)
            for i, t in f.items:                      # "gradient 0" only where the policy term's is exactly 0
                assert float(ex.policy_grad[i, t]) == 0.0, (f.kind, i, t, text)
        if f.kind == "marked":
            for i, t in f.items:
                assert int(ex.clip[i, t]) == f.code, (i, t, text)
            said_marked |= set(f.items)
            if f.unit == "response":                   # a response said to be marked whole is marked on every token
                rows = {i for i, _ in f.items}
                assert len(rows) == f.count
                for i in rows:
                    assert all(int(ex.clip[i, t]) == f.code for t in range(valid.shape[1]) if valid[i, t])
            else:
                assert len(f.items) == f.count
            assert f.zero == obj.zeroes_clipped
        if f.kind == "rollout":                       # what rollout correction did, counted from its weights
            rc, cfg = ex.rollout, ex.settings
            which = rc.truncated if cfg.rollout_is_threshold_lower is None else rc.masked
            assert f.count == int((which & valid).sum()) and f.of == int(valid.sum())
            assert (f"{f.count} of {f.of} tokens" in f.text) if f.count else ("no token's weight" in f.text)
        if f.kind == "count":
            assert f"{f.count} of {f.of}" in f.text
            if f.unit == "token":
                assert f.of == int(valid.sum())
                assert f"({100 * f.count / f.of:.0f}%)" in f.text
            else:
                assert f.of == int(valid.any(-1).sum())
        if f.kind == "none_marked":
            assert not marked_tokens
        if f.kind == "shared":                        # every unmarked response's tokens share one weight
            for i in range(valid.shape[0]):
                g = ex.policy_grad[i][valid[i]]
                assert torch.allclose(g, g[:1].expand_as(g), rtol=1e-12, atol=0)
        if f.kind in ("no_signal",):
            assert (res.advantages == 0).all() and (ex.policy_grad == 0).all()
        if f.kind == "dropped":
            assert res.dropped and not valid.any() and (ex.grad_weight == 0).all()
        for what, i, t, value in f.quoted:
            if what == "ratio":
                assert value == float(ex.token_ratio[i, t])
            elif what == "seq_ratio":
                assert value == float(ex.seq_ratio[i])
            elif what == "loss":
                assert value == ex.loss
            elif what == "gate":                      # the gate is what autograd's weight says it is
                assert value == float(ex.gate[i, t])
                w = policy_weights(obj, ex.loss_mask, ex.settings, longest(ex.mask, ex.settings.max_tokens),
                                   None if ex.rollout is None else ex.rollout.weight)   # the run's mode, rollout w
                a = res.advantages[i] if res.advantages.dim() == 1 else res.advantages[i, t]
                expected = float(w[i, t]) * value * float(ex.token_ratio[i, t]) * float(a)
                assert float(ex.policy_grad[i, t]) == pytest.approx(expected, rel=1e-9, abs=1e-15)
            assert fmt(value) in text
    if not res.dropped and not res.no_signal:
        assert said_marked == marked_tokens, text     # every marked token is said, and only those
    if zero_claims and ex.settings.beta and ex.metrics.get("kl") is not None and valid.any():
        assert "KL term" in text                      # "policy gradient 0" never reads as "no gradient at all"
    if not zero_claims:
        assert not re.search(r"gradient (is )?0\b", text) and "no token a gradient" not in text


def check_steps(res):
    doc = to_json(res)
    for i, r in enumerate(res.scenario.responses):
        for t in range(len(r.tokens)):
            s = steps_json(res, i, t)
            assert s["response"] == i + 1 and s["token"] == t + 1
            assert s["grad_weight"] == s["steps"][-1]["value"]
            assert s["grad_weight"] == pytest.approx(s["autograd"], rel=1e-9, abs=1e-9)
            assert s["autograd"] == doc["responses"][i]["tokens"][t]["grad_weight"]


# found by CI: response 1 is filtered as overlong, so GSPO counts one response of two; the sentence said "its one
# response" (as for a group of one) where the group has two, and the count check wanted "1 of 1"
OVERLONG_LEAVES_ONE = {"responses": [{"logp_old": [-1.0], "logp_new": [-1.0], "truncated": True, "reward": 0.0},
                                     {"logp_old": [-1.0], "logp_new": [-0.8176784432060454], "truncated": False,
                                      "reward": 1.0}],
                       "settings": {"objective": "gspo", "beta": 0.0, "kl": "k1", "dynamic_sampling": False,
                                    "overlong": {"filter": True}}}


# found while adding rollout correction: IcePop masked no token, and the sentence still said "0 of 2 tokens' weights
# ... were set to 0, so their policy gradient is 0"
NOTHING_MASKED = {"responses": [{"logp_old": [-1.0], "logp_new": [-1.0], "advantage": 0.0, "logp_rollout": [-1.0]},
                                {"logp_old": [-1.0], "logp_new": [-1.0], "advantage": 0.0, "logp_rollout": [-1.0]}],
                  "settings": {"objective": "grpo", "rollout_is": "token", "rollout_is_threshold": 1.5,
                               "rollout_is_threshold_lower": 0.0}}


@RUNS
@given(scenarios())
@example(OVERLONG_LEAVES_ONE)
@example(NOTHING_MASKED)
def test_every_claim_of_every_sentence_holds(data):
    check_facts(_result(data))


# IcePop set response 2's rollout weight to 0 with β > 0: the steps dropped the KL term along with the policy term
KL_UNDER_ZERO_WEIGHT = {"responses": [{"logp_old": [-1.0], "logp_new": [-1.0], "reward": 0.0, "logp_ref": [-1.5],
                                       "logp_rollout": [-1.0]},
                                      {"logp_old": [-1.0], "logp_new": [-1.0], "reward": 1.0, "logp_ref": [-1.5],
                                       "logp_rollout": [-2.0]}],
                        "settings": {"objective": "grpo", "beta": 0.04, "kl": "k1", "rollout_is": "token",
                                     "rollout_is_threshold_lower": 0.5}}


@RUNS
@given(scenarios())
@example(KL_UNDER_ZERO_WEIGHT)
def test_steps_end_in_autograd_for_every_token(data):
    check_steps(_result(data))


# ------------------------------------------------------------------------------------------ the audited errors
def _movie(**settings):
    data = json.loads((Path(__file__).resolve().parents[1] / "examples" / "movie_five_tokens.json").read_text())
    data["settings"].update(settings)
    return data


def test_sentences_with_a_kl_term_say_what_is_zero():
    # three responses, equal rewards, β = 0.04: the policy term gives nothing, the KL term moves every token
    data = {"responses": [{"p_old": [0.5, 0.4], "p_new": [0.6, 0.3], "p_ref": [0.55, 0.35], "reward": 1},
                          {"p_old": [0.5], "p_new": [0.4], "p_ref": [0.45], "reward": 1}],
            "settings": {"objective": "grpo", "beta": 0.04}}
    res = run_scenario(parse_scenario(data))
    ex = res.explanation
    assert (ex.policy_grad == 0).all() and (ex.grad_weight[ex.mask > 0] != 0).all()
    text = sentence(res)
    assert "no token gets a gradient" not in text and "policy term gives no token a gradient" in text
    assert "KL term" in text
    # a clipped token with β > 0: the steps say its policy gradient is 0, then add the KL's, ending in autograd's
    data = _movie(beta=0.04)
    for r in data["responses"]:
        r["p_ref"] = [0.3, 0.2, 0.2, 0.7, 0.5]
    res = run_scenario(parse_scenario(data))
    s = steps_json(res, 0, 0)
    names = [x["name"] for x in s["steps"]]
    assert names[-2:] == ["KL gradient", "gradient weight (policy + KL)"]
    policy = next(x for x in s["steps"] if x["name"] == "policy gradient weight")
    assert policy["value"] == 0.0 and s["grad_weight"] != 0.0
    assert s["grad_weight"] == pytest.approx(s["autograd"], rel=1e-12)
    assert "(the KL term, β = 0.04, still moves them)" in sentence(res)


def test_gspo_token_with_mixed_sign_advantages_names_tokens_not_the_response():
    # s = exp((0.5 + 0.5)/2) = e^0.5 = 1.65 > 1.0004: the token with A = +0.5 is clipped (upper), the one with
    # A = −0.3 is not (a ratio above the band never clips a negative advantage)
    data = {"responses": [{"tokens": ["x", "y"], "logp_old": [-1.0, -1.0], "logp_new": [-0.5, -0.5],
                           "advantage": [0.5, -0.3]},
                          {"tokens": ["z"], "logp_old": [-1.0], "logp_new": [-1.0], "advantage": [0.2]}],
            "settings": {"objective": "gspo_token"}}
    res = run_scenario(parse_scenario(data))
    assert res.explanation.clip.tolist()[0] == [1, 0]
    assert float(res.explanation.policy_grad[0, 1]) != 0.0
    text = sentence(res)
    assert "all its tokens" not in text and "responses whole" not in text
    assert text.startswith("GSPO-token clipped 1 of 3 tokens") and "“x” (response 1, t = 1, A = 0.5, s = 1.6487)" in text
    check_facts(res)


def test_sapo_quotes_its_gate_not_the_gradient_weight():
    res = run_scenario(parse_scenario(_movie()), "sapo")
    ex = res.explanation
    gate = ex.gate[0]
    # r = 4/3, 1.25, 1.2, 0.875, 1.5 with τ = 1: 4σ(τ(r − 1))(1 − σ) ranges from 0.9403 (r = 1.5) to 0.9961 (r = 0.875)
    sig = lambda r: 1 / (1 + math.exp(-(r - 1)))  # noqa: E731
    assert float(gate.min()) == pytest.approx(4 * sig(1.5) * (1 - sig(1.5)))
    assert float(gate.max()) == pytest.approx(4 * sig(0.875) * (1 - sig(0.875)))
    text = sentence(res)
    assert f"by {fmt(float(gate.min()))} to {fmt(float(gate.max()))}" in text
    # the old sentence quoted |∂J/∂log π| (0.17 to 0.28 here) as the gate
    assert fmt(float(ex.grad_weight.abs().min())) not in text


def test_cispo_marks_say_what_they_mean_whatever_the_sign_of_a():
    from gspo_viz.views.style import clip_legend
    # a token with r = 2 > 1.2 and A < 0: CISPO marks it ▲ (its weight is capped) and its gradient still flows
    data = {"responses": [{"p_old": [0.2], "p_new": [0.4], "advantage": -1.0}], "settings": {"objective": "cispo"}}
    ex = run_scenario(parse_scenario(data)).explanation
    assert CLIP_NAMES[int(ex.clip[0, 0])] == "upper" and float(ex.grad_weight[0, 0]) == pytest.approx(-1.2)
    legend = clip_legend(["grpo", "cispo", "sapo"])
    assert "A > 0" in legend[0] and "whatever A's sign" in legend[1] and "gradient still flows" in legend[1]
    assert "policy gradient 0" not in legend[1] and legend[2].startswith("SAPO: no marks")


def test_dynamic_sampling_decides_on_the_task_reward():
    # all three answers correct (task reward 1), lengths 2, 3, 4 with soft overlong punishment L_max 4, L_cache 2:
    # shaped rewards 1, 0.5, 0 differ, but DAPO drops the group: 0 < #correct < G fails on the task reward
    data = {"responses": [{"p_old": [0.5] * n, "p_new": [0.6] * n, "reward": 1.0} for n in (2, 3, 4)],
            "settings": {"objective": "dapo", "dynamic_sampling": True, "overlong": {"l_max": 4, "l_cache": 2}}}
    res = run_scenario(parse_scenario(data))
    assert res.shaped_rewards == [1.0, 0.5, 0.0] and not res.no_signal
    assert res.dropped and res.masked == [0, 1, 2] and (res.explanation.grad_weight == 0).all()
    assert any("task reward before any shaping" in c for c in res.conventions)


def test_dr_grpo_divides_by_the_longest_response_in_the_batch_filtered_or_not():
    # lengths 2, 4, 8; the 8-token answer is truncated and filtered. L_max = 8 (the batch's longest), G = 2 take
    # part, so each token of the others weighs 1/(2·8); the old code divided by 4, the longest that took part
    data = {"responses": [{"p_old": [0.5] * n, "p_new": [0.5] * n, "reward": rw, "truncated": n == 8}
                          for n, rw in ((2, 1.0), (4, 0.0), (8, 0.0))],
            "settings": {"objective": "dr_grpo", "overlong": {"filter": True}}}
    res = run_scenario(parse_scenario(data))
    A = res.advantages.tolist()                     # R − mean: 1 − 1/3, −1/3, −1/3
    assert A == pytest.approx([2 / 3, -1 / 3, -1 / 3])
    assert float(res.explanation.grad_weight[0, 0]) == pytest.approx(1.0 * (2 / 3) / (2 * 8))
    assert any("L_max = 8 (the longest response in the batch" in c for c in res.conventions)
    s = steps_json(res, 0, 0)
    assert s["grad_weight"] == pytest.approx(s["autograd"]) and any("2 \\cdot 8" in x["formula"] for x in s["steps"])


def test_a_group_of_one_response_clipped_whole_is_not_counted_as_1_of_1():
    """The talk's and lessons' one-answer groups read "GSPO clipped its one response whole", not "1 of 1 responses"."""
    data = {"responses": [{"tokens": ["a", "b"], "p_old": [0.5, 0.5], "p_new": [0.9, 0.9], "advantage": 1.0}]}
    res = run_scenario(parse_scenario(data), "gspo")
    assert bool(res.explanation.clip[0, 0])                  # s = 1.8 > 1 + ε_high: clipped whole
    text = sentence(res)
    assert "GSPO clipped its one response whole" in text and "1 of 1" not in text


def test_a_group_with_one_counted_response_says_it_counts_one_of_its_responses():
    """Two responses, one filtered as overlong: "1 of 1 counted responses", not "its one response"."""
    text = sentence(_result(OVERLONG_LEAVES_ONE))
    assert "GSPO clipped 1 of 1 counted responses whole" in text and "its one response" not in text
