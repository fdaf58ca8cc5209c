"""The Lessons (gspo_viz/lessons, pages/6_lessons.py): every lesson's answer is computed (a change of its numbers
flips it and its explanation follows), hand-derived numbers with their derivation, grading, and the page in AppTest:
a prediction, the reveal, a changed scenario, the progress in the link."""
import json
import math
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from gspo_viz.lessons import KEYS, LESSONS, Knob, Question, completed, grade, run_case
from gspo_viz.lessons.base import Choice
from gspo_viz.lessons.read import near

ROOT = Path(__file__).resolve().parents[1]
PAGE = "pages/6_lessons.py"
A2 = 0.5 / (math.sqrt(0.5) + 1e-6)   # rewards 1, 0: mean 0.5, sample std √0.5, A = ±0.5/(√0.5 + 1e-6) ≈ 0.70711


def lesson(key):
    return LESSONS[KEYS.index(key)]


def explained(key, **params):
    """(answer, explanation as one text) of lesson `key` on the numbers `params`."""
    les = lesson(key)
    rv = les.reveal(run_case(les, params))
    return rv.answer, rv.text()


def test_nine_lessons_in_the_order_of_the_issue():
    assert KEYS == ("sign_of_a", "clipped_gradient", "grpo_vs_gspo", "length", "dual_clip_floor", "clip_higher",
                    "gspo_epsilon", "soft_gates", "on_policy")
    for les in LESSONS:        # each question's computed answer is one it offers (or a number in its range)
        case = run_case(les)
        q, rv = les.question(case), les.reveal(case)
        values = [c.value for c in q.choices]
        if q.kind == "number":
            assert q.low <= rv.answer <= q.high
        elif q.kind == "many":
            assert set(rv.answer) <= set(values)
        else:
            assert rv.answer in values, les.key


# ------------------------------------------------------------------------------------------------ each lesson
def test_sign_of_a_clips_by_the_side_the_advantage_pushes():
    # response 1 (A > 0) ratios 1.08, 0.62, 0.93, 1.46: only r > 1.2 is clipped (t = 4); response 2 (A < 0) ratios
    # 0.93, 1.37, 1.03, 0.57: only r < 0.8 (t = 4). "sum" of response 1 (r = 0.62 < 0.8 but A > 0) keeps
    # (1/G)(1/|y|)·r·A = (1/2)(1/4)·0.62·0.70711 = 0.054801.
    answer, text = explained("sign_of_a")
    assert answer == ["0,3", "1,3"]
    assert "not clipped; gradient weight 0.0548, which raises the token back" in text
    assert "“6”: r = 0.57 fell below 1 − ε_low = 0.8 with A < 0: clipped; gradient weight 0." in text
    assert "“The”, “is”: inside [0.8, 1.2], not clipped." in text
    # response 2 correct: the signs swap, so do the clipped tokens (the two "sum"s)
    answer, text = explained("sign_of_a", correct=2)
    assert answer == ["0,1", "1,1"]
    assert "“sum”: r = 1.37 rose above 1 + ε_high = 1.2 with A > 0" in text
    # ε = 0.5: every ratio lies in [0.5, 1.5]
    answer, text = explained("sign_of_a", eps=0.5)
    assert answer == [] and "“The”, “sum”, “is”, “5”: inside [0.5, 1.5], not clipped" in text
    assert "“The”, “sum”, “is”, “6”: inside [0.5, 1.5], not clipped" in text and "clipped;" not in text


def test_clipped_gradient_is_zero_past_the_bound_only():
    # r = 0.48/0.32 = 1.5 > 1.2 with A > 0: the term is 1.2·A = 0.84853 at r = 1.5 and at 1.875; gradient 0
    answer, text = explained("clipped_gradient")
    assert answer == "zero"
    assert f"Its term is {1.2 * A2:.4f} at r = 1.5 and still {1.2 * A2:.4f} at r = 1.875" in text
    # r = 0.35/0.32 = 1.09375 inside: (1/2)(1/3)·1.09375·A = 0.128899
    answer, text = explained("clipped_gradient", p_new=0.35)
    assert answer == "up" and f"= {0.5 / 3 * 1.09375 * A2:.4g}, which raises the token" in text
    # the same r with A < 0: not clipped above 1 + ε, −(1/6)·1.5·A = −0.176777; the sentence says which side and
    # where the weight comes from (it once said "outside the range, but on the side its advantage does not clip")
    answer, text = explained("clipped_gradient", correct="wrong")
    assert answer == "down" and f"−{0.5 / 3 * 1.5 * A2:.4g}" in text
    assert "r = 1.5 is above the range [0.8, 1.2], but it moved against its advantage" in text
    assert f"factor × r × A = 0.1667 × 1.5 × (−{A2:.4f}) = −{0.5 / 3 * 1.5 * A2:.4g}" in text
    assert "side its advantage does not clip" not in text


def test_grpo_vs_gspo_by_token_ratio_or_sequence_ratio():
    # response 1 ratios 0.85, 0.95, 0.93, 0.33/0.22 = 1.5: s_1 = (0.85·0.95·0.93·1.5)^(1/4) = 1.0302 > 1.0004 with
    # A > 0, so GSPO clips the whole response (all 0); GRPO keeps "Let": (1/2)(1/4)·0.85·A = 0.075131
    s1 = (0.85 * 0.95 * 0.93 * 1.5) ** 0.25
    answer, text = explained("grpo_vs_gspo")
    assert answer == "grpo" and f"s_1 = {s1:.4f} rose above 1 + ε_high = 1.0004" in text
    assert f"{0.125 * 0.85 * A2:.4g}" in text
    # s_1 is given before the prediction, from the table's ratios; the reveal does not blame one token for it
    les = lesson("grpo_vs_gspo")
    assert f"(0.85 · 0.95 · 0.93 · 1.5)^(1/4) = {s1:.4f}" in " ".join(les.context(run_case(les)))
    assert "s_1 = 1.0302 is past the bound, so all 4 tokens lose their gradient" in text
    assert "at r = 1.5, s_1" not in text
    # the spike at p_new 0.2 (r = 0.90909): s_1 = 0.909 < 1 with A > 0 is not clipped; every token gets
    # (1/G)·s_1·A/|y| = s_1·A/8 > GRPO's 0.85·A/8 for "Let"
    s1 = (0.85 * 0.95 * 0.93 * 0.2 / 0.22) ** 0.25
    answer, text = explained("grpo_vs_gspo", p_new=0.2)
    assert answer == "gspo" and f"gradient weight {s1 * A2 / 8:.4g}, as does every token" in text
    # asking about the spike itself: both 0
    assert explained("grpo_vs_gspo", ask=3)[0] == "same"


def test_length_and_aggregation():
    # short 2 tokens (right), long 12 (wrong), every r = 1. GRPO: (1/2)(1/2)·A = 0.17678 vs (1/2)(1/12)·A = 0.029463,
    # 6× apart. DAPO: A/14 = 0.050508 for both. Dr.GRPO: A = ±0.5 (no std), 0.5/(2·12) = 0.020833 for both.
    answer, text = explained("length")
    assert answer == ["dapo", "dr_grpo"]
    assert f"gets {A2 / 4:.4g}, a token of response 2 (12 tokens) −{A2 / 24:.4g}: 6× as much in response 1" in text
    assert f"{A2 / 14:.4g}, a token of response 2 (12 tokens) −{A2 / 14:.4g}: the same size" in text
    assert "so it is the longest response, 12" in text and "0.02083" in text and "pushed down 6× more gently" in text
    # summed per response: GRPO ±A/2 alike; DAPO 2A/14 against 12A/14, 6× as much in the long one
    assert f"GRPO: {A2 / 2:.4g} for response 1 and −{A2 / 2:.4g} for response 2, the same size" in text
    assert f"DAPO: {2 * A2 / 14:.4g} for response 1 and −{12 * A2 / 14:.4g} for response 2, 6× as much in response 2" \
        in text
    # equal lengths (8 and 8): every aggregation gives every token the same size
    assert explained("length", short=8, long=8)[0] == ["grpo", "dapo", "dr_grpo"]
    # response 1 is never the longer one: the long response's knob starts where the short one's ends (a link asking
    # for a 3-token "long" response gets the default; it once made "the short one" the longer one)
    les = lesson("length")
    assert les.clean({"short": 8, "long": 3}) == {"short": 8, "long": 12, "right": "short"}


def test_dual_clip_floor_holds_the_term_at_c_times_a():
    # “9”: r = 0.2/0.043 = 4.6512 > c = 3 with A < 0: Dual-Clip's term is 3·(−0.70711) = −2.1213, gradient 0; GRPO's
    # is not clipped (A < 0, r above the range): (1/2)(1/3)·4.6512·(−A) = −0.54812
    answer, text = explained("dual_clip_floor")
    assert answer == "grpo"
    assert f"c·A = 3 × (−{A2:.4f}) = −{3 * A2:.4f}" in text and f"−{0.5 / 3 * 0.2 / 0.043 * A2:.4g}" in text
    # c = 5 > r: no floor, the same term; response 2 right: A > 0, both clip above 1.2
    assert explained("dual_clip_floor", c=5.0)[0] == "same"
    answer, text = explained("dual_clip_floor", wrong="right")
    assert answer == "same" and "floor acts only for A < 0" in text


def test_clip_higher_and_dynamic_sampling():
    # r = 0.16/0.13 = 1.2308 in (1.2, 1.28] with A = 0.5/(√(1/3) + 1e-6) = 0.86603 (rewards 1, 0, 1, 0):
    # GRPO clips it, DAPO keeps (1/Σ|y|)·r·A = 1.2308·0.86603/16 = 0.066617
    A4 = 0.5 / (math.sqrt(1 / 3) + 1e-6)
    answer, text = explained("clip_higher")
    assert answer == "up" and f"gradient weight {0.16 / 0.13 * A4 / 16:.4g}" in text and "clip-higher" in text
    assert explained("clip_higher", p_new=0.2)[0] == "zero"          # r = 1.538 > 1.28: DAPO clips too
    answer, text = explained("clip_higher", right=[2, 4])             # A < 0: lowered, and the upper bound is moot
    assert answer == "down" and "With A < 0 the upper bound never clips" in text
    answer, text = explained("clip_higher", right=[2])                # one right answer: "1 of 4 responses is right"
    assert answer == "down" and text.startswith("1 of 4 responses is right")
    answer, text = explained("clip_higher", right=[1, 2, 3, 4])      # equal rewards: dynamic sampling drops it
    assert answer == "dropped" and "drops it" in text


def _hand_clip_counts(data):
    """GRPO's and GSPO's clipped tokens of a scenario, by hand: z-score A, r per token against [0.8, 1.2] by the sign
    of A, s_i = exp(mean log-ratio) against [1 − 3e-4, 1 + 4e-4] (whole responses)."""
    R = [r["reward"] for r in data["responses"]]
    m = sum(R) / len(R)
    sd = math.sqrt(sum((x - m) ** 2 for x in R) / (len(R) - 1))
    grpo = gspo = total = 0
    for x, r in zip(R, data["responses"]):
        a = (x - m) / (sd + 1e-6)
        d = [math.log(n) - math.log(o) for o, n in zip(r["p_old"], r["p_new"])]
        total += len(d)
        grpo += sum(1 for v in d if (a > 0 and math.exp(v) > 1.2) or (a < 0 and math.exp(v) < 0.8))
        s = math.exp(sum(d) / len(d))
        gspo += len(d) if (a > 0 and s > 1 + 4e-4) or (a < 0 and s < 1 - 3e-4) else 0
    return grpo, gspo, total


def test_gspo_epsilon_clips_far_more_tokens():
    les = lesson("gspo_epsilon")
    case = run_case(les)
    grpo, gspo, total = _hand_clip_counts(case.data)
    rv = les.reveal(case)
    assert rv.answer == "gspo" and gspo > 10 * grpo
    assert f"clipped {grpo} of {total} tokens" in rv.explanation[0]
    assert f"clipped {gspo} of {total} tokens" in rv.explanation[1]
    # a tiny drift: both 0, and the explanation says why
    answer, text = explained("gspo_epsilon", drift=0.001)
    assert answer == "same" and "every s_i stays inside" in text
    # one s_i outside the range (group 1, drift 0.001): the sentence agrees in number with its count
    answer, text = explained("gspo_epsilon", drift=0.001, seed=1)
    assert answer == "gspo" and "so 1 of 8 s_i lies outside the range. 1 of them moved the way its advantage" in text
    assert "and is clipped whole." in text
    # another group: the answer is still the one the numbers give
    case = run_case(les, {"seed": 5})
    grpo, gspo, total = _hand_clip_counts(case.data)
    assert les.reveal(case).answer == ("gspo" if gspo > grpo else "grpo" if grpo > gspo else "same")


def test_soft_gates_never_zero_a_gradient():
    # r = 0.56/0.32 = 1.75, A > 0: GRPO clips (0); CISPO caps the weight at 1.2: 1.2·A/6 = 0.14142 (token-mean over
    # 6 tokens); SAPO: σ = σ(1·0.75) = 0.67918, gate 4σ(1−σ) = 0.87157, (1/2)(1/3)·gate·1.75·A = 0.17975
    sig = 1 / (1 + math.exp(-0.75))
    gate = 4 * sig * (1 - sig)
    answer, text = explained("soft_gates")
    assert answer == ["cispo", "sapo"]
    assert f"{1.2 * A2 / 6:.4g}" in text and f"soft gate 4σ(1−σ) is {gate:.4f}" in text
    assert f"{gate * 1.75 * A2 / 6:.4g}" in text and "Only GRPO switches" in text
    # inside the range every objective gives it a gradient
    assert explained("soft_gates", p_new=0.35)[0] == ["grpo", "cispo", "sapo"]
    # below the range with A < 0: GRPO clips; CISPO (no lower bound) keeps the weight r = 0.05/0.32 = 0.15625:
    # −(1/6)·0.15625·A = −0.018414
    answer, text = explained("soft_gates", p_new=0.05, correct="wrong")
    assert answer == ["cispo", "sapo"]
    assert f"CISPO: r = 0.1563 is within (0, 1.2], so its weight is r itself: gradient weight −{0.15625 * A2 / 6:.4g}" \
        in text


def test_on_policy_nothing_clips():
    # drift 0: p_new = p_old, every r = 1. Group 1's rewards 0,0,0,1,1,1,1,0: mean 0.5, sample std √(2/7) = 0.53452,
    # A_1 = −0.5/(0.53452 + 1e-6) = −0.93541; GRPO's weight at r = 1 is A/(G·|y_1|)
    answer, text = explained("on_policy")
    A1 = -0.5 / (math.sqrt(2 / 7) + 1e-6)
    assert answer == 0.0 and "exactly 1" in text and f"× (−{-A1:.4f})" in text
    assert "GSPO gives every token the same gradient weight as GRPO" in text
    # DAPO divides by all the group's tokens instead: A_1/Σ|y_i|
    data = run_case(lesson("on_policy")).data
    total = sum(len(r["p_old"]) for r in data["responses"])
    assert f"in response 1, {1 / total:.4g} × (−{-A1:.4f}) = −{-A1 / total:.4g}" in text
    answer, text = explained("on_policy", drift=0.1)
    assert answer > 0 and "has moved since the rollout" in text


def _extremes(knob):
    """A knob's values worth trying: its ends and its default (every option of a choice)."""
    if knob.kind in ("slider", "seed"):
        return sorted({knob.low, knob.high, knob.default})
    if knob.kind == "choice":
        return list(knob.options)
    return [[], list(knob.options), list(knob.default)]


NUMBER = r"[−-]?\d+(?:\.\d+)?"
SAID = [  # (what a sentence says of two numbers, whether that is true of them)
    (rf"({NUMBER}) rose above 1 \+ ε_high = ({NUMBER})", lambda a, b: a > b),
    (rf"({NUMBER}) fell below 1 − ε_low = ({NUMBER})", lambda a, b: a < b),
    (rf"({NUMBER}) exceeded c = ({NUMBER})", lambda a, b: a > b),
    (rf"({NUMBER}) is not above c = ({NUMBER})", lambda a, b: a <= b),
    (rf"({NUMBER}) is inside the range \[({NUMBER}), {NUMBER}\]", lambda a, lo: a >= lo),
    (rf"({NUMBER}) is inside the range \[{NUMBER}, ({NUMBER})\]", lambda a, hi: a <= hi),
    (rf"({NUMBER}) is above the range \[{NUMBER}, ({NUMBER})\]", lambda a, hi: a > hi),
    (rf"({NUMBER}) is below the range \[({NUMBER}), {NUMBER}\]", lambda a, lo: a < lo),
]


@pytest.mark.parametrize("key", KEYS)
def test_every_sentence_holds_at_the_ends_of_every_knob(key):
    """Each knob at its ends (every option of a choice), in every combination: the comparisons the sentences state
    hold for the numbers they print, no sentence says nan or inf or "1 tokens", the computed answer is one the
    question offers and grades right, and the lesson has what to look at and a takeaway."""
    import itertools
    import re
    les = lesson(key)
    assert les.look and les.takeaway
    for combo in itertools.product(*map(_extremes, les.knobs)):
        params = dict(zip((k.key for k in les.knobs), combo))
        case = run_case(les, params)
        q, rv = les.question(case), les.reveal(case)
        assert grade(q, rv.answer, rv.answer)
        if q.kind != "number":
            assert set(rv.answer if q.kind == "many" else [rv.answer]) <= {c.value for c in q.choices}
        for line in les.context(case) + [q.prompt, rv.answer_text] + rv.sentences():
            assert not re.search(r"\bnan\b|\binf\b|\b1 (tokens|responses)\b", line), (params, line)
            for pattern, holds in SAID:
                for m in re.finditer(pattern, line):
                    a, b = (float(x.replace("−", "-")) for x in m.groups())
                    assert holds(a, b), (params, m.group(0))
        if rv.answer == "dropped":          # dynamic sampling drops the group for both objectives, as it says
            assert all(res.dropped for res in case.results.values())


# ------------------------------------------------------------------------------------------------ the pieces
def test_a_ratio_next_to_a_bound_is_printed_apart_from_it():
    # 1.00041 rounds to the bound 1.0004 at the tables' 4 decimals: "s = 1.0004 rose above 1.0004" would read false
    assert near(1.00041, 0.9997, 1.0004) == "1.00041" and near(0.99968, 0.9997, 1.0004) == "0.99968"
    assert near(1.0302, 0.9997, 1.0004) == "1.0302" and near(1.0004, 0.9997, 1.0004) == "1.0004"


def test_grading():
    many = Question("many", "?", (Choice("a", "A"), Choice("b", "B")))
    assert grade(many, ["b", "a"], ["a", "b"]) and not grade(many, ["a"], ["a", "b"]) and grade(many, [], [])
    assert many.differences(["b"], ["a"]) == "missed A; picked in excess B"
    number = Question("number", "?", tolerance=5)
    assert grade(number, 4.9, 0) and not grade(number, 5.2, 0) and not grade(number, None, 0)
    one = Question("one", "?", (Choice("a", "A"),))
    assert grade(one, "a", "a") and not grade(one, None, "a")


def test_knobs_and_progress_refuse_what_a_link_should_not_hold():
    whole = Knob("n", "n", "slider", 2, low=1, high=8, step=1)
    assert whole.clean(3.0) == 3 and isinstance(whole.clean(3.0), int)
    assert whole.clean(2.5) == 2 and whole.clean(9) == 2 and whole.clean(True) == 2
    many = Knob("m", "m", "many", [1], options=(1, 2, 3))
    assert many.clean([3, 1, 3]) == [1, 3] and many.clean([4]) == [1] and many.clean("1") == [1]
    assert completed(["on_policy", "nope", "sign_of_a"]) == ["sign_of_a", "on_policy"]
    with pytest.raises(ValueError):
        completed("sign_of_a")


# ------------------------------------------------------------------------------------------------ the page
pytestmark = pytest.mark.usefixtures("navigation_mode")   # tests/conftest.py: AppTest in st.navigation mode


def open_lessons(query=None):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    if query:
        at.query_params.update(query)
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def texts(at):
    return " ".join(m.value for m in at.markdown)


def controls(at):
    return json.loads(at.query_params["v"][0] if isinstance(at.query_params["v"], list) else at.query_params["v"])


def test_page_predict_reveal_change_the_numbers():
    at = open_lessons()
    assert at.header[0].value == "1. Ratio and clipping by the sign of A"
    assert "Why, from the numbers" not in texts(at)                      # nothing revealed yet
    at.multiselect(key="ls_pred_sign_of_a").set_value(["0,3"]).run()      # one of the two clipped tokens
    at.button(key="ls_reveal").click().run()
    assert not at.exception
    assert "Not right: missed response 2, t = 4: “6” (r = 0.57)" in at.error[0].value
    assert "GRPO clips 2 tokens" in at.info[0].value
    assert "“6”: r = 0.57 fell below 1 − ε_low = 0.8 with A < 0: clipped" in texts(at)
    assert "**Not right.**" in texts(at)                                  # said where Reveal was pressed too
    assert f"**Takeaway**: {LESSONS[0].takeaway}" in texts(at)
    assert controls(at)["ls_done"] == ["sign_of_a"] and at.header[0].value.endswith("✓")
    # another scenario: response 2 is the right one; the reveal was for the earlier numbers
    at.radio(key="ctl_ls_sign_of_a_correct_0").set_value(2).run()
    assert "The numbers changed since you revealed this lesson. Your prediction then was not right" in \
        at.info[0].value
    assert "Why, from the numbers" not in texts(at)
    at.multiselect(key="ls_pred_sign_of_a").set_value(["0,1", "1,1"]).run()
    at.button(key="ls_reveal").click().run()
    assert "Right." in at.success[0].value and "**Right.**" in texts(at)
    assert "“sum”: r = 1.37 rose above 1 + ε_high = 1.2 with A > 0: clipped" in texts(at)
    # keep the answer shown: the explanation follows a change of ε at once
    at.toggle(key="ctl_ls_follow_0").set_value(True).run()
    at.slider(key="ctl_ls_sign_of_a_eps_0").set_value(0.5).run()
    assert "“The”, “sum”, “is”, “6”: inside [0.5, 1.5], not clipped" in texts(at)
    assert "GRPO clips no token here" in at.info[0].value
    assert "Not right" in at.error[0].value                               # the old prediction, against new numbers


def test_progress_and_numbers_come_back_from_the_link():
    v = {"ls_lesson": 4, "ls_done": ["sign_of_a", "clipped_gradient"], "ls_dual_clip_floor_c": 5.0}
    at = open_lessons({"v": json.dumps(v)})
    assert at.header[0].value == "5. Dual-Clip's floor"
    assert "c = 5" in texts(at)
    at.radio(key="ls_pred_dual_clip_floor").set_value("same").run()
    at.button(key="ls_reveal").click().run()
    assert "Right." in at.success[0].value                                # r = 4.65 < c = 5: no floor
    assert controls(at)["ls_done"] == ["sign_of_a", "clipped_gradient", "dual_clip_floor"]
    at.button(key="ls_next_top").click().run()
    assert at.header[0].value == "6. DAPO's clip-higher and dynamic sampling" and controls(at)["ls_lesson"] == 5
    # a hand-edited link: progress that is not a list falls back to none, with a message, and nothing breaks
    at = open_lessons({"v": json.dumps({"ls_lesson": 8, "ls_done": 3})})
    at.run()                                                              # the message shows on the next run
    assert at.header[0].value.startswith("9. On-policy") and not at.exception
    assert any("is not valid here" in w.value and "ls" in w.value for w in at.warning)
    # a knob's value out of its range (c = 99): refused with a message naming it, the lesson runs on the default c
    at = open_lessons({"v": json.dumps({"ls_lesson": 4, "ls_dual_clip_floor_c": 99})})
    at.run()
    assert any("value 99 for 'ls_dual_clip_floor_c' is not valid here" in w.value.replace("\\", "") for w in at.warning)
    assert "c = 3" in texts(at) and not at.exception


def test_talk_mode_does_not_break_the_page():
    at = open_lessons({"mode": "talk"})
    assert not at.exception and at.header[0].value.startswith("1. ")


@pytest.mark.parametrize("key", ["clipped_gradient", "dual_clip_floor", "soft_gates"])
def test_the_curve_plots_note_says_how_their_gradient_gives_the_quoted_weight(key):
    """The curves are one token's term before aggregation (lesson 8 quoted 0.1798 beside a plot at 1.08): the note
    under them gives each objective's aggregation factor, and factor × the gradient curve at r is the quoted weight."""
    from gspo_viz.core.curves import clip_curve
    from gspo_viz.lessons import read as R
    les = lesson(key)
    case = run_case(les)
    rv = les.reveal(case)
    mod = __import__(f"gspo_viz.lessons.{key}", fromlist=["I", "T"])
    i, t = mod.I, mod.T
    assert rv.figures and rv.figure_note
    named = [n for n in case.results if f" under {R.title(n)}" in rv.figure_note]
    assert len(named) == {"clipped_gradient": 1, "dual_clip_floor": 2, "soft_gates": 3}[key]   # each plotted one
    for name in named:
        res = case.results[name]
        f = R.factor(res, i, t)
        assert f"{R.num(f)} under {R.title(name)}" in rv.figure_note
        curve = clip_curve(name, [R.ratio(res, i, t)], R.adv(res, i), res.explanation.settings).grad[0]
        assert f * curve == pytest.approx(R.grad(res, i, t), rel=1e-6, abs=1e-12)
