"""Notes that state numbers (default_group, gspo_equal_token_weights, equal_rewards_no_signal): each number is rebuilt
here from the computed result, so a note that drifts from the numbers fails (the default notes once said GSPO clips
"most answers" whole: it clips 3 of 8). The seed examples' notes are checked in test_seed_examples.py."""
import json
from pathlib import Path

from gspo_viz import parse_scenario, run_scenario
from gspo_viz.core.objectives.base import DUAL, LOWER, UPPER
from gspo_viz.views.style import fmt

PATH = Path(__file__).resolve().parents[1] / "examples" / "default_group.json"
DATA = json.loads(PATH.read_text(encoding="utf-8"))
NOTES = DATA["notes"]
SCN = parse_scenario(DATA)


def test_group_facts():
    rewards = [r.reward for r in SCN.responses]
    correct = [i + 1 for i, r in enumerate(rewards) if r == 1]
    total = sum(len(r.tokens) for r in SCN.responses)
    assert f"({total} in all)" in NOTES
    assert f"({len(correct)} of {len(rewards)} are correct: responses {correct[0]}, {correct[1]} and {correct[2]})" \
        in NOTES


def test_grpo_and_dual_clip_counts():
    ex = run_scenario(SCN, "grpo").explanation
    codes = ex.clip[ex.mask > 0]
    n_up, n_low = int((codes == UPPER).sum()), int((codes == LOWER).sum())
    assert f"GRPO clips individual tokens: {n_up + n_low} of {len(codes)}, {n_low} below 1 − ε = 0.8 with A < 0 " \
           f"(▼) and {n_up} above 1 + ε = 1.2" in NOTES
    dual = run_scenario(SCN, "dual_clip").explanation
    held = [(int(i), int(t)) for i, t in zip(*((dual.clip == DUAL) & (dual.mask > 0)).nonzero(as_tuple=True))]
    assert len(held) == 1                                       # "floors 1 more token"
    i, t = held[0]
    assert int(((dual.clip != 0) & (dual.mask > 0)).sum()) == n_up + n_low + 1
    assert f"floors 1 more token: “{SCN.responses[i].tokens[t]}” in response {i + 1}" in NOTES
    assert f"ratio r = {fmt(float(dual.token_ratio[i, t]))} passed c = 3" in NOTES


def test_gspo_clips_three_answers_whole():
    res = run_scenario(SCN, "gspo")
    ex = res.explanation
    clipped = [i + 1 for i in range(len(SCN.responses)) if (ex.clip[i][ex.mask[i] > 0] != 0).all()]
    assert clipped == [1, 5, 7] and "clips 3 of the 8 answers whole: responses 1, 5 and 7" in NOTES
    assert all(float(res.advantages[i - 1]) < 0 and float(ex.seq_ratio[i - 1]) < 0.9997 for i in clipped)
    s_correct = [fmt(float(ex.seq_ratio[i])) for i, r in enumerate(SCN.responses) if r.reward == 1]
    assert f"({s_correct[0]}, {s_correct[1]}, {s_correct[2]})" in NOTES
    assert all(float(ex.seq_ratio[i]) > 1 and float(res.advantages[i]) < 0 for i in (5, 7))  # responses 6 and 8


def test_gspo_equal_token_weights_notes():
    data = json.loads((PATH.parent / "gspo_equal_token_weights.json").read_text(encoding="utf-8"))
    notes = data["notes"]
    scn = parse_scenario(data)
    gspo, grpo = run_scenario(scn, "gspo"), run_scenario(scn, "grpo")
    A = float(gspo.advantages[0])
    r = gspo.explanation.token_ratio[0].tolist()
    assert f"(1/2)·1·{A:.3f}/3 = {float(gspo.explanation.grad_weight[0, 0]):.3f}" in notes
    assert "{:.3f}, {:.3f}, {:.3f}".format(*grpo.explanation.grad_weight[0].tolist()) in notes
    assert f"their arithmetic mean is {(r[0] + r[2]) / 2:.3f}" in notes and f"{r[0]:.3f}" in notes


def test_equal_rewards_notes():
    data = json.loads((PATH.parent / "equal_rewards_no_signal.json").read_text(encoding="utf-8"))
    res = run_scenario(parse_scenario(data))
    assert len(data["responses"]) == 4 and "All four answers got reward 1" in data["notes"]
    assert {r.reward for r in res.scenario.responses} == {1.0} and res.advantages.tolist() == [0.0] * 4
