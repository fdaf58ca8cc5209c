"""The core behind the pages: links, tables, curves, formula steps, sentences, figures and sampling."""
import json
import math
from pathlib import Path

import plotly.graph_objects as go
import pytest

from gspo_viz import OBJECTIVES, ScenarioError, Settings, load_scenario, parse_scenario, run_scenario
from gspo_viz.core.advantages import advantage_panel
from gspo_viz.core.curves import (clip_curve, drift_distance, drift_sequence_ratio, overlong_curve,
                             per_token_weight_vs_length, ratio_grid, sequence_ratio_band)
from gspo_viz.views.narrate import sentence
from gspo_viz.views.plots import advantages_figure, clip_explorer_figure, grad_heatmap, lines_figure, ratio_heatmap
from gspo_viz.scenarios.sample import sample_group
from gspo_viz.views.steps import autograd_step, hover_texts, seed_mistakes, token_steps
from gspo_viz.views.tables import (add_response, add_token, remove_response, remove_token, scenario_to_tables,
                             tables_to_scenario, where_in_tables)
from gspo_viz.scenarios.urlstate import decode_scenario, encode_scenario

EX = Path(__file__).resolve().parents[1] / "examples"
ALL = list(OBJECTIVES)


def example(name, objective=None):
    return run_scenario(load_scenario(EX / f"{name}.json"), objective)


# ---------------------------------------------------------------------------------------------------------- links
def test_link_round_trip_is_exact():
    data = json.loads((EX / "default_group.json").read_text())
    assert decode_scenario(encode_scenario(data)) == data


@pytest.mark.parametrize("text", ["", "not-base64!!", encode_scenario({"a": 1})[:-6], "eJzLSM3JyQcABiwCFQ"])
def test_broken_links_are_refused_by_name(text):
    with pytest.raises(ScenarioError) as e:
        scn = decode_scenario(text)
        parse_scenario(scn)
    assert e.value.where in ("link", "responses", "a", "") and str(e.value)


# ---------------------------------------------------------------------------------------------------------- tables
def test_tables_round_trip_every_example():
    for path in EX.glob("*.json"):
        data = json.loads(path.read_text())
        for log_space in (False, True):
            r, t = scenario_to_tables(data, log_space)
            back = parse_scenario(tables_to_scenario(r, t, data))
            orig = parse_scenario(data)
            for a, b in zip(orig.responses, back.responses):
                assert a.tokens == b.tokens and a.reward == b.reward and a.truncated == b.truncated
                assert a.logp_new == pytest.approx(b.logp_new, rel=1e-12, abs=1e-12)


def test_typed_invalid_values_are_kept_and_located():
    data = json.loads((EX / "dapo_clip_higher.json").read_text())
    r, t = scenario_to_tables(data)
    t.loc[6, "p_new"] = "1.7"         # the second response (numbered 2 in the table), t = 2, typed as text
    back = tables_to_scenario(r, t, data)
    assert back["responses"][1]["p_new"][1] == 1.7  # kept as typed (read as the number it is)
    with pytest.raises(ScenarioError) as e:
        parse_scenario(back)
    assert e.value.where == "responses[1].p_new[1]"  # the file's path, counted from 0 …
    assert where_in_tables(e.value.where, t) == "tokens table, response 2, t = 2, column p_new"  # … the table's from 1
    r2, t2 = scenario_to_tables(back)  # and it survives a rebuild of the tables
    assert t2.loc[6, "p_new"] == "1.7"


def test_structural_edits():
    data = json.loads((EX / "dapo_clip_higher.json").read_text())
    r, t = scenario_to_tables(data)
    r, t = add_response(r, t)
    assert list(r["response"]) == [1, 2, 3] and len(t[t["response"] == 3]) == 3   # numbered from 1, as shown
    t = add_token(t, 1)
    assert len(t[t["response"] == 1]) == 6 and t.index[t["response"] == 1].max() == 5  # appended inside response 1
    t = remove_token(t, 2)
    r, t = remove_response(r, t, 1)
    assert list(r["response"]) == [1, 2] and sorted(set(t["response"])) == [1, 2]
    scn = parse_scenario(tables_to_scenario(r, t, data))
    assert [len(x.tokens) for x in scn.responses] == [2, 3]


# ---------------------------------------------------------------------------------------------------------- curves
def test_grpo_clip_curve_zero_regions():
    grid = [0.5, 0.7, 0.79, 0.81, 1.0, 1.19, 1.21, 1.5, 2.0]
    up = clip_curve("grpo", grid, 1.0, Settings())
    assert up.zero_regions == [(1.21, 2.0)]
    assert up.value == pytest.approx([0.5, 0.7, 0.79, 0.81, 1.0, 1.19, 1.2, 1.2, 1.2])
    assert up.grad == pytest.approx([0.5, 0.7, 0.79, 0.81, 1.0, 1.19, 0, 0, 0])  # ∂(r·A)/∂log π = r·A
    down = clip_curve("grpo", grid, -1.0, Settings())
    assert down.zero_regions == [(0.5, 0.79)]


def test_dual_clip_and_cispo_curves():
    grid = [0.5, 1.0, 2.9, 3.1, 5.0]
    dual = clip_curve("dual_clip", grid, -1.0, Settings(dual_clip_c=3.0))
    assert dual.value == pytest.approx([-0.8, -1.0, -2.9, -3.0, -3.0]) and dual.zero_regions[-1] == (3.1, 5.0)
    cispo = clip_curve("cispo", grid, 1.0, Settings(eps_high=0.2))
    assert cispo.value is None and cispo.zero_regions == []
    assert cispo.grad == pytest.approx([0.5, 1.0, 1.2, 1.2, 1.2])  # the capped weight, never zero


def test_gspo_curve_on_its_own_scale():
    c = clip_curve("gspo", ratio_grid(1.0, 0.002, n=5), 1.0, Settings(objective="gspo"))
    assert c.ratio == pytest.approx([0.998, 0.999, 1.0, 1.001, 1.002])
    assert c.grad[3] == 0 and c.grad[2] == pytest.approx(1.0)  # 1.001 > 1.0004 is clipped; s = 1 is not


def test_length_curves():
    w = per_token_weight_vs_length([1, 10, 100], G=4, other_len=20, max_tokens=200)
    assert w["seq-mean-token-mean"] == pytest.approx([1 / 4, 1 / 40, 1 / 400])    # (1/G)(1/L)
    assert w["token-mean"] == pytest.approx([1 / 61, 1 / 70, 1 / 160])            # 1/(L + 3·20)
    assert w["seq-mean-token-sum"] == pytest.approx([1 / 4] * 3)                  # 1/G: a long answer weighs more
    assert w["seq-mean-token-sum-norm"] == pytest.approx([1 / 800] * 3)           # 1/(G·L_max)
    assert w["seq-mean"] == pytest.approx(w["seq-mean-token-mean"])               # (1/G)·s·A/L at s = 1
    lo, hi = sequence_ratio_band([1, 10], 0.2, 0.2)
    assert lo == pytest.approx([0.8, 0.8 ** 10]) and hi == pytest.approx([1.2, 1.2 ** 10])
    assert drift_sequence_ratio([1, 2, 50], 1.0) == pytest.approx([math.e, math.exp(0.5), math.exp(0.02)])
    assert drift_distance([4], -2.0) == pytest.approx([1 - math.exp(-0.5)])
    assert overlong_curve([10, 17, 20, 30], 20, 4) == pytest.approx([0, -0.25, -1, -1])


def test_band_helpers():
    from gspo_viz.core.curves import drift_curves, first_length_within, within_band
    assert within_band(0.8, 0.2, 0.2) and within_band(1.2, 0.2, 0.2) and not within_band(1.21, 0.2, 0.2)
    lengths = [1, 10, 100, 1000, 3000]
    s, dist = drift_curves(lengths, 1.0)                # exp(1/L) − 1 <= 4e-4 first at L >= 2500.5
    assert dist == pytest.approx([abs(x - 1) for x in s])
    assert first_length_within(lengths, s, 4e-4, 4e-4) == 3000
    assert first_length_within(lengths, s, 1e-6, 1e-6) is None


# ---------------------------------------------------------------------------------------------------------- steps
@pytest.mark.parametrize("name", ALL)
def test_steps_end_in_the_autograd_weight_and_their_sum_matches(name):
    for ex_name in ("movie_five_tokens", "three_responses_gspo", "dual_clip_negative_advantage", "dapo_clip_higher"):
        res = example(ex_name, name)
        for i, r in enumerate(res.scenario.responses):
            for t in range(len(r.tokens)):
                steps = token_steps(res, i, t)
                auto = autograd_step(res, i, t).value
                assert auto == float(res.explanation.grad_weight[i, t])
                # the steps' own arithmetic ends in the closed form, which autograd confirms
                assert steps[-1].value == pytest.approx(auto, rel=1e-9, abs=1e-15), (ex_name, i, t)
                by_hand = [s for s in steps if s.label.startswith("policy gradient weight")][0].value
                kl = sum(s.value for s in steps if s.label == "KL gradient")
                assert by_hand + kl == pytest.approx(steps[-1].value, rel=1e-9, abs=1e-12), (ex_name, i, t)


def test_step_arithmetic_can_be_redone_by_hand():
    res = example("three_responses_gspo", "grpo")
    steps = {s.label: s for s in token_steps(res, 2, 0)}
    # response 2 (reward 5): log p_old = ln(1e-5)/3, log p_new = ln(0.8e-5)/3, so Δ = ln(0.8)/3
    assert steps["log-ratio"].value == pytest.approx(math.log(0.8) / 3)
    assert steps["token ratio"].value == pytest.approx(0.8 ** (1 / 3))
    assert steps["group mean of the rewards"].value == pytest.approx(22 / 3)
    assert steps["group std (sample, G − 1)"].value == pytest.approx(math.sqrt(13 / 3))
    A = (5 - 22 / 3) / (math.sqrt(13 / 3) + 1e-6)
    assert steps["advantage (group z-score)"].value == pytest.approx(A)
    assert steps["the min"].value == pytest.approx(min(0.8 ** (1 / 3) * A, 0.8 * A))
    assert steps["aggregation factor"].value == pytest.approx(1 / (3 * 3))
    # every number shown in a formula is the step's value to 6 significant digits
    for s in steps.values():
        assert f"{s.value:.6g}".lstrip("-") in s.latex or s.label in ("clip decision", "clip bounds",
                                                                        "log-probabilities")


def test_seed_mistakes_beside_the_right_values():
    res = example("movie_five_tokens")
    m4 = {m.title: m for m in seed_mistakes(res, 0, 3)}           # r = 0.875
    inside = m4["a ratio inside the range is not clipped"]
    assert inside.wrong_value == 0.8 and inside.right_value == pytest.approx(0.875)
    m1 = {m.title: m for m in seed_mistakes(res, 0, 0)}           # r = 4/3, clipped above
    product = m1["clip is not a product of min and max"]
    assert product.wrong_value == pytest.approx(1.2 * 4 / 3) and product.right_value == pytest.approx(1.2)
    assert m1["a clipped token has zero gradient"].right_value == 0.0
    gspo = {m.title: m for m in seed_mistakes(example("three_responses_gspo"), 0, 0)}
    adv = gspo["GSPO's advantage is the group z-score of rewards"]
    assert adv.wrong_value == pytest.approx((2 ** (1 / 7) + 1.5 ** 0.2) / 2 - 0.8 ** (1 / 3))  # the article's 0.166
    assert adv.right_value == pytest.approx((9 - 22 / 3) / (math.sqrt(13 / 3) + 1e-6))


def test_hover_text_carries_the_tokens_numbers():
    res = example("movie_five_tokens")
    h = hover_texts(res)[0][3]
    assert "(response 1, t = 4)" in h and "r = p_new/p_old = 0.875" in h and "clip: none" in h and f"∂J/∂log π = {0.875 / 5:.6g}" in h


# ---------------------------------------------------------------------------------------------------------- sentences
def test_sentences_read_the_computed_numbers():
    s = sentence(example("movie_five_tokens"))
    assert s.startswith("GRPO clipped 3 of 5 tokens (60%)")
    assert "“《” (r = 1.3333)" in s and "1 + ε_high = 1.2" in s and "Loss -1.135." in s
    d = sentence(example("dual_clip_negative_advantage"))
    assert "“41” (r = 8) exceeded c = 3 with A < 0, so its policy gradient is 0" in d
    g = sentence(example("three_responses_gspo"))
    assert g.startswith("GSPO clipped 3 of 3 responses whole") and "response 3 (s = 0.9283)" in g
    assert "dynamic sampling would drop" in sentence(example("equal_rewards_no_signal"))


def test_sentence_changes_with_the_numbers():
    data = json.loads((EX / "movie_five_tokens.json").read_text())
    data["responses"][0]["p_new"][0] = 0.33  # 0.33/0.3 = 1.1: token 1 no longer clipped
    s = sentence(run_scenario(parse_scenario(data)))
    assert s.startswith("GRPO clipped 2 of 5 tokens (40%)") and "“《”" not in s


# ---------------------------------------------------------------------------------------------------------- figures
def test_every_figure_passes_plotly_validation():
    res = example("dual_clip_negative_advantage")
    figs = [ratio_heatmap(res), grad_heatmap(res),
            advantages_figure(advantage_panel([1.0, 0.0, 0.5])),
            clip_explorer_figure({n: clip_curve(n, ratio_grid(), 1.0, Settings()) for n in ("grpo", "cispo")},
                                 "grad", 1.0, "r", (1.3, "marked")),
            lines_figure([1, 2], {"a": [1, 2]}, "t", "x", "y", log_y=True, band=([0.5, 0.5], [2, 2], "band"),
                         dashes={"a": "dash"})]
    for f in figs:
        go.Figure(f.to_dict())  # raises on any invalid property


def test_heatmap_cells_hold_the_core_numbers():
    res = example("movie_five_tokens")
    z = grad_heatmap(res).to_dict()["data"][0]["z"]
    assert z[0] == pytest.approx(res.explanation.grad_weight[0].tolist())
    data = ratio_heatmap(res).to_dict()["data"]
    assert data[0]["z"][0] == pytest.approx([math.log(r) for r in res.explanation.token_ratio[0].tolist()])
    texts = {tuple(t["text"]): t for t in data[1:]}
    assert ("1.333", "1.25", "1.2", "0.875", "1.5") in texts     # each cell prints its ratio (4 significant digits)
    symbols = texts[("▲", "▲", "▲")]                 # clip symbols only on the clipped cells
    assert symbols["x"] == [1, 2, 5] and res.explanation.clip[0].tolist() == [1, 1, 0, 0, 1]
    assert ("《", "肖申克", "的救赎》", "，", "很好看") in texts   # short responses show their tokens
    assert ("«", "Shawshank", "Redemption»", ",", "very good") in texts   # and their English glosses


def test_advantage_panel_conventions():
    p = advantage_panel([1.0, 0.0, 0.0, 1.0])
    a = p["advantages"]
    assert a["z-score, std over G − 1 (TRL, verl)"][0] == pytest.approx(0.5 / (math.sqrt(1 / 3) + 1e-6))
    assert a["z-score, std over G"][0] == pytest.approx(0.5 / (0.5 + 1e-6))
    assert a["mean-centred (Dr.GRPO)"] == pytest.approx([0.5, -0.5, -0.5, 0.5])
    assert a["leave-one-out (RLOO)"][0] == pytest.approx(1 - 1 / 3)
    assert advantage_panel([2.0, 2.0])["no_signal"] is True


# ---------------------------------------------------------------------------------------------------------- sampling
def test_sample_group_is_seeded_and_valid():
    a, b, c = sample_group(seed=3), sample_group(seed=3), sample_group(seed=4)
    assert a == b and a != c
    scn = parse_scenario(a)
    assert len(scn.responses) == 8 and all(8 <= len(r.tokens) <= 32 for r in scn.responses)
    still = parse_scenario(sample_group(drift=0.0, seed=1))
    assert all(r.logp_new == r.logp_old for r in still.responses)
    with pytest.raises(ValueError):
        sample_group(G=1)
