"""Talk mode and talks (gspo_viz/scenarios/talks.py, gspo_viz/ui/talk.py): talk files checked with errors that name
the field, the shipped ten-scene talk true to the numbers it shows, talk links (`mode=talk`, `talk=`, `t=`, `scene=`)
and short links (`example=NAME`) in AppTest. tests/test_browser_talk.py drives the same in Chromium."""
import json
import math
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from gspo_viz import parse_scenario, run_scenario
from gspo_viz.core.objectives import OBJECTIVES
from gspo_viz.scenarios.files import ScenarioError
from gspo_viz.scenarios.talks import (SCENE_PAGES, decode_talk, encode_talk, loads_talk, parse_talk, shipped_talk)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TALKS = EXAMPLES / "talks"
SHIPPED = "grpo_gspo_dual_clip"


def talk_data(**scene):
    return {"title": "t", "scenes": [{"title": "one", "page": "token_lab", "example": "movie_five_tokens"} | scene]}


# ------------------------------------------------------------------------------------------------ talk files
@pytest.mark.parametrize("data, where, words", [
    ({"title": "t", "scenes": []}, "scenes", "non-empty list"),
    ({"title": "t"}, "scenes", "non-empty list"),
    ({"title": "", "scenes": [{}]}, "title", "non-empty text"),
    ({"title": "t", "scenes": [{"title": "a"}], "colour": 1}, "colour", "not a talk field"),
    (talk_data(page="tokenlab"), "scenes[0].page", "unknown page \"tokenlab\""),
    (talk_data(example="no_such_example"), "scenes[0].example", "no example named \"no_such_example\""),
    (talk_data(example="../app"), "scenes[0].example", "no example named"),
    (talk_data(scenario={"responses": []}), "scenes[0]", "exactly one of"),
    ({"title": "t", "scenes": [{"title": "x", "page": "formula", "scenario": {"responses": [{"tokens": ["a"]}]}}]},
     "scenes[0].scenario.responses[0]", ""),
    (talk_data(controls={"cmp": [["grpo"]]}), "scenes[0].controls", "has a value no control takes"),
    (talk_data(controls=[1]), "scenes[0].controls", "must be a JSON object"),
    (talk_data(title="x" * 301), "scenes[0].title", "the limit is 300"),
    (talk_data(notes="hi"), "scenes[0].notes", "not a scene field"),
    ({"title": "t", "scenes": [{"title": "a", "page": "token_lab", "example": "movie_five_tokens"}] * 61}, "scenes",
     "the limit is 60"),
])
def test_a_bad_talk_file_is_refused_with_the_field_named(data, where, words):
    with pytest.raises(ScenarioError) as e:
        parse_talk(data, EXAMPLES)
    assert e.value.where.startswith(where), e.value
    assert words in e.value.message


def test_the_second_bad_scene_is_named_by_its_index():
    good = {"title": "a", "page": "token_lab", "example": "movie_five_tokens"}
    data = {"title": "t", "scenes": [good, good, good, dict(good, page="train")]}
    with pytest.raises(ScenarioError, match=r"scenes\[3\].page: unknown page \"train\""):
        parse_talk(data, EXAMPLES)


def test_a_talk_round_trips_through_its_link_and_its_file():
    talk = shipped_talk(SHIPPED, TALKS, EXAMPLES)
    assert decode_talk(encode_talk(talk), EXAMPLES) == talk
    assert loads_talk(json.dumps(talk.to_dict()), EXAMPLES) == talk
    inline = parse_talk({"title": "t", "scenes": [{"title": "x", "page": "length",
                                                   "scenario": json.loads((EXAMPLES / "dapo_clip_higher.json")
                                                                          .read_text())}]}, EXAMPLES)
    assert decode_talk(encode_talk(inline), EXAMPLES) == inline
    assert len(encode_talk(talk)) < 1500          # scenes that name examples keep the link short
    with pytest.raises(ScenarioError, match="damaged"):
        decode_talk(encode_talk(talk)[:-40], EXAMPLES)


# ------------------------------------------------------------------------------------------------ the shipped talk
def results(scene, name):
    return run_scenario(parse_scenario(scene.scenario), name)


def test_the_shipped_talk_has_ten_scenes_each_runs_its_objectives():
    talk = shipped_talk(SHIPPED, TALKS, EXAMPLES)
    assert talk.title == "GRPO → GSPO → Dual-Clip in ten scenes" and len(talk.scenes) == 10
    for scene in talk.scenes:
        assert scene.page in SCENE_PAGES and scene.example
        for name in scene.controls.get("cmp", []) + scene.controls.get("ce_objectives", []):
            results(scene, name)                  # raises if the objective cannot run on the scene's group
    assert {s.page for s in talk.scenes} == {"token_lab", "formula", "clip_explorer"}


def test_the_shipped_talks_titles_say_what_the_numbers_show():
    s = shipped_talk(SHIPPED, TALKS, EXAMPLES).scenes
    # 1: A = +1 and ε = 0.2, so the tokens with r > 1.2 are clipped: ratios 4/3, 1.25, 1.2, 0.875, 1.5
    res = results(s[0], "grpo")
    r = res.explanation.token_ratio[0].tolist()
    clipped = [t for t, c in enumerate(res.explanation.clip[0].tolist()) if c]
    assert float(res.advantages[0]) == 1.0 and clipped == [t for t, x in enumerate(r) if x > 1.2 + 1e-12] == [0, 1, 4]
    assert "1 + ε = 1.2" in s[0].say
    # 2: token 1 (fc_token 0) has r = 1.333 > 1.2 with A > 0: its gradient weight is 0
    c = s[1].controls
    res = results(s[1], c["fc_objective"])
    assert f"{float(res.explanation.token_ratio[c['fc_response'], c['fc_token']]):.3f}" == "1.333"
    assert float(res.explanation.grad_weight[c["fc_response"], c["fc_token"]]) == 0.0
    # 3: the Clip Explorer's marked token (t = 1 of the one answer) has A > 0 and r = 4/3 past 1 + ε: gradient 0
    res = results(s[2], "grpo")
    t = s[2].controls["ce_token"]
    assert "A > 0" in s[2].title and float(res.advantages[0]) > 0
    assert float(res.explanation.token_ratio[0, t]) > 1.2 and float(res.explanation.grad_weight[0, t]) == 0
    # 4: an unclipped token's GRPO weight is r·A/(G·|o|): 1 · 0.7071/(2 · 4) = 0.0884 in the 4-token answer, twice
    # that per token (0.7071/(2 · 2) = 0.1768, in size) in the 2-token one
    res = results(s[3], "grpo")
    assert "r·A/(G·|o|)" in s[3].title
    G, lengths = len(s[3].scenario["responses"]), [len(r["tokens"]) for r in s[3].scenario["responses"]]
    for i, L in enumerate(lengths):
        for t in range(L):
            r, A = float(res.explanation.token_ratio[i, t]), float(res.advantages[i])
            assert float(res.explanation.grad_weight[i, t]) == pytest.approx(r * A / (G * L), rel=1e-6)
    assert lengths[0] > lengths[1] and abs(float(res.explanation.grad_weight[0, 0])) < abs(
        float(res.explanation.grad_weight[1, 0]))
    # 5: s_i is the geometric mean of the token ratios
    res = results(s[4], "gspo")
    for i, resp in enumerate(s[4].scenario["responses"]):
        L = len(resp["tokens"])
        geo = math.exp(sum(math.log(float(x)) for x in res.explanation.token_ratio[i, :L]) / L)
        assert float(res.explanation.seq_ratio[i]) == pytest.approx(geo, rel=1e-9)
    # 7: GSPO clips a good answer (A > 0) whole because its s lies past 1 + ε_high, not because of its reward
    res = results(s[6], "gspo")
    clipped = [i for i in range(len(res.advantages)) if bool(res.explanation.clip[i, 0])]
    assert clipped and all(float(res.advantages[i]) > 0 and float(res.explanation.seq_ratio[i])
                           > 1 + res.explanation.settings.eps_high
                           for i in clipped)
    # 6: token ratios 1.105, 1, 0.905 (product 1.00003) give s = 1 to 4 decimals, for both answers
    res = results(s[5], "gspo")
    assert [f"{x:.4f}" for x in res.explanation.seq_ratio.tolist()] == ["1.0000", "1.0000"]
    # 8: one token's ratio is 8 (to 1e-9) in the answer with A < 0, and Dual-Clip's dual mark holds it
    res = results(s[7], "dual_clip")
    i, t = 1, 3
    assert abs(float(res.explanation.token_ratio[i, t]) - 8) < 1e-9 and float(res.advantages[i]) < 0
    assert "dual" in OBJECTIVES["dual_clip"].marks and res.explanation.clip[i, t] == 3
    # 9: the Clip Explorer marks that token (choices run response by response: 4 tokens of response 1, then t = 4)
    assert s[8].controls["ce_token"] == 4 + t and s[8].controls["ce_xmax"] >= 8
    # 10: three objectives on the default group of eight
    assert len(parse_scenario(s[9].scenario).responses) == 8 and len(s[9].controls["cmp"]) == 3


# ------------------------------------------------------------------------------------------------ in the app
@pytest.fixture
def app(navigation_mode):
    def open_app(query):
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
        at.query_params.update(query)
        at.run()
        assert not at.exception, at.exception
        return at
    return open_app


def shown(at):
    return " ".join(e.value for kind in (at.markdown, at.warning, at.error, at.info, at.caption) for e in kind)


def test_a_talk_link_shows_the_scene_with_no_sidebar_and_no_controls(app):
    at = app({"mode": "talk", "talk": SHIPPED})
    talk = shipped_talk(SHIPPED, TALKS, EXAMPLES)
    assert talk.scenes[0].title in shown(at) and "1 / 10" in shown(at)
    assert len(at.sidebar) == 0                   # no sidebar: no preset, import, download or talk builder
    assert not at.multiselect and not at.number_input and not at.toggle and not at.selectbox
    assert at.session_state["scenario"] == talk.scenes[0].scenario
    assert len(at.get("plotly_chart")) >= 2       # the Token Lab's charts
    assert dict(at.query_params) in ({"mode": ["talk"], "talk": [SHIPPED], "scene": ["1"]},
                                     {"mode": "talk", "talk": SHIPPED, "scene": "1"})


def test_next_and_back_step_through_the_scenes_and_their_pages(app):
    at = app({"mode": "talk", "talk": SHIPPED})
    talk = shipped_talk(SHIPPED, TALKS, EXAMPLES)
    at.button(key="talk_next").click().run()
    assert not at.exception, at.exception
    assert talk.scenes[1].title in shown(at) and "2 / 10" in shown(at)
    assert at.session_state["ctl"] == talk.scenes[1].controls
    assert any("1.333" in e.value or "1.33333" in e.value for e in at.get("latex"))   # the Formula Checker's steps
    at.button(key="talk_pagedown").click().run()   # a clicker's Page Down: the same step
    assert talk.scenes[2].title in shown(at) and at.session_state["scene"] == 2
    at.button(key="talk_prev").click().run()
    assert talk.scenes[1].title in shown(at)
    assert at.button(key="talk_prev").disabled is False and at.session_state["scene"] == 1


def test_the_formula_checker_and_clip_explorer_scenes_show_their_charts_only(app):
    """In a talk these pages draw no title, picker, settings or notes; the Formula Checker names the token its steps
    are for, and the Clip Explorer shows only the side of A its marked token is on (scene 9: a token with A < 0)."""
    talk = shipped_talk(SHIPPED, TALKS, EXAMPLES)
    at = app({"mode": "talk", "talk": SHIPPED, "scene": "2"})
    assert not at.title and not at.selectbox and not at.expander
    scene = talk.scenes[1]
    i, t = scene.controls.get("fc_response", 0), scene.controls.get("fc_token", 0)
    token = scene.scenario["responses"][i]["tokens"][t]
    assert f"Response {i + 1}, token t = {t + 1}: “{token}”" in shown(at)
    # the punchline first (on a projector the last steps lie below the screen): the weight and autograd's answer
    weight = float(results(scene, scene.controls["fc_objective"]).explanation.grad_weight[i, t])
    assert weight == 0 and "**policy gradient weight: 0** · autograd check" in shown(at)
    at = app({"mode": "talk", "talk": SHIPPED, "scene": "9"})
    scene = talk.scenes[8]
    res = results(scene, "grpo")
    pos = [(i, t) for i, r in enumerate(scene.scenario["responses"]) for t in range(len(r["tokens"]))]
    i, t = pos[scene.controls["ce_token"]]
    adv = res.advantages[i]
    A = float(adv) if adv.dim() == 0 else float(adv[t])
    assert A < 0                                   # the scene is about a token with a negative advantage
    heads = [h.value for h in at.subheader]
    assert heads == ["A < 0 (a worse-than-average answer)"]     # that side only, no sequence-level section
    assert not at.title and not at.expander and not at.slider and not at.multiselect
    assert len(at.get("plotly_chart")) == 2


def test_a_scene_in_the_link_opens_there_and_a_bad_one_says_so(app):
    talk = shipped_talk(SHIPPED, TALKS, EXAMPLES)
    at = app({"mode": "talk", "talk": SHIPPED, "scene": "8"})
    assert talk.scenes[7].title in shown(at) and at.session_state["ctl"]["cmp"] == ["grpo", "dual_clip"]
    at = app({"mode": "talk", "talk": SHIPPED, "scene": "42"})
    assert "scenes 1 to 10" in shown(at) and talk.scenes[0].title in shown(at)
    at = app({"mode": "talk", "talk": "no_such_talk"})
    assert "talk in this link could not be used" in shown(at)


def test_an_encoded_talk_travels_in_its_link(app):
    talk = parse_talk({"title": "mine", "scenes": [
        {"title": "Dual-Clip alone", "page": "token_lab", "example": "dual_clip_negative_advantage",
         "controls": {"cmp": ["dual_clip"]}, "say": "Look at token 4."}]}, EXAMPLES)
    at = app({"mode": "talk", "t": encode_talk(talk)})
    assert "Dual-Clip alone" in shown(at) and "Look at token 4." in shown(at) and "1 / 1" in shown(at)
    assert at.button(key="talk_next").disabled


def test_exit_leaves_talk_mode_on_the_same_view(app):
    at = app({"mode": "talk", "talk": SHIPPED, "scene": "5"})
    at.button(key="talk_exit").click().run()
    assert not at.exception, at.exception
    assert len(at.sidebar) > 0 and at.multiselect          # the sidebar and the controls are back
    assert at.multiselect[0].value == ["grpo", "gspo"]     # scene 5's objectives
    assert "mode" not in at.query_params


def test_mode_talk_on_a_plain_link_shows_that_view_in_talk_style(app):
    at = app({"mode": "talk", "example": "dual_clip_negative_advantage", "v": json.dumps({"cmp": ["dual_clip"]})})
    assert len(at.sidebar) == 0 and not at.multiselect
    assert at.button(key="talk_exit") is not None
    assert at.query_params["mode"] in ("talk", ["talk"])


def test_example_short_links_open_every_example(app):
    for path in sorted(EXAMPLES.glob("*.json")):
        at = app({"example": path.stem})
        assert at.session_state["scenario"] == json.loads(path.read_text(encoding="utf-8")), path.stem
        assert at.query_params["example"] in (path.stem, [path.stem])     # the link stays short
        assert "s" not in at.query_params


def test_a_bad_example_name_says_so_and_shows_the_default(app):
    at = app({"example": "nope"})
    assert "no example named \"nope\"" in shown(at)
    assert at.session_state["scenario"] == json.loads((EXAMPLES / "default_group.json").read_text(encoding="utf-8"))


def test_the_sidebar_builds_a_talk_from_views(app):
    at = app({"example": "movie_five_tokens"})
    at.switch_page("pages/1_token_lab.py").run()
    assert "mode=talk" in " ".join(c.value for c in at.sidebar.code)      # this view's talk link
    [b for b in at.sidebar.button if b.label == "Add this view as a scene"][0].click().run()
    draft = at.session_state["talk_draft"]
    assert len(draft) == 1 and draft[0].page == "token_lab" and draft[0].example == "movie_five_tokens"
    link = [c.value for c in at.sidebar.code if "t=" in c.value][0]
    encoded = link.split("t=")[1].split("&")[0]
    assert decode_talk(encoded, EXAMPLES).scenes == tuple(draft)


def test_a_talk_file_is_loaded_from_the_sidebar_and_a_bad_one_says_where(app):
    """The sidebar's "Load a talk (JSON)" reads a file by the scenario files' rules (ui/uploads.read_upload): a bad
    one leaves the page as it was with a message naming the field; a good one starts the talk at its first scene."""
    at = app({"example": "movie_five_tokens"})
    uploader = next(u for u in at.sidebar.file_uploader if u.label == "Load a talk (JSON)")
    bad = json.dumps(talk_data(page="tokenlab")).encode()
    uploader.set_value(("mine.json", bad, "application/json")).run()
    assert not at.exception, at.exception
    errors = [e.value.replace("\\", "") for e in at.sidebar.error]      # shown as plain text: markdown escaped
    assert errors and "mine.json" in errors[0] and "scenes[0].page" in errors[0]
    assert at.session_state["mode"] != "talk" and len(at.sidebar) > 0
    uploader = next(u for u in at.sidebar.file_uploader if u.label == "Load a talk (JSON)")
    uploader.set_value(("bytes.json", b"\xff\xfe", "application/json")).run()
    assert "UTF-8" in " ".join(e.value for e in at.sidebar.error)
    good = {"title": "Mine", "scenes": [{"title": "First of mine", "page": "formula", "example": "movie_five_tokens"},
                                        {"title": "Second", "page": "token_lab", "example": "default_group"}]}
    uploader = next(u for u in at.sidebar.file_uploader if u.label == "Load a talk (JSON)")
    uploader.set_value(("mine.json", json.dumps(good).encode(), "application/json")).run()
    assert not at.exception, at.exception
    assert "First of mine" in shown(at) and "1 / 2" in shown(at) and len(at.sidebar) == 0
