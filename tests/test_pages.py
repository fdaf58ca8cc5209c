"""AppTest of every page (pages/1_token_lab.py, pages/2_clip_explorer.py, pages/3_length_aggregation.py,
pages/4_formula_checker.py): it loads, loads every preset, shows the core's numbers after a control changes, and
shows a message for bad input."""
import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from gspo_viz import parse_scenario, run_scenario
from gspo_viz.core.curves import drift_sequence_ratio
from gspo_viz.views.style import fmt
from gspo_viz.scenarios.urlstate import encode_scenario

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))
PAGES = ["pages/1_token_lab.py", "pages/2_clip_explorer.py", "pages/3_length_aggregation.py",
         "pages/4_formula_checker.py"]


pytestmark = pytest.mark.usefixtures("navigation_mode")   # tests/conftest.py: AppTest in st.navigation mode


def open_page(page, query=None):
    """Open the app (with a link's query parameters), then the page. at.first_warnings: the first run's messages."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    if query:
        at.query_params.update(query)
    at.run()
    at.first_warnings = " ".join(w.value for w in at.warning)
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def ctl(key):
    """The widget key of a page control (gspo_viz.ui.state.control)."""
    return f"ctl_{key}_0"


def load_preset(at, path):
    at.sidebar.selectbox[0].select(path).run()
    at.sidebar.button[0].click().run()
    assert not at.exception, (path.name, at.exception)
    assert at.session_state["scenario"] == json.loads(path.read_text())


def texts(at):
    return " ".join(m.value for m in at.markdown)


def current(at):
    return parse_scenario(at.session_state["scenario"])


# ------------------------------------------------------------------------------------------------------------ all
@pytest.mark.parametrize("page", PAGES)
def test_page_loads_every_preset(page):
    at = open_page(page)
    for path in EXAMPLES:
        load_preset(at, path)
        assert at.title[0].value  # the page rendered


# ------------------------------------------------------------------------------------------------------------ Token Lab
def test_token_lab_metrics_are_the_cores():
    at = open_page(PAGES[0])
    scn = current(at)
    for k, name in enumerate(["grpo", "gspo", "dual_clip"]):
        assert at.metric[2 * k].value == fmt(run_scenario(scn, name).explanation.loss)


def test_token_lab_control_change_updates_the_numbers():
    at = open_page(PAGES[0])
    at.multiselect[0].set_value(["grpo", "dapo"]).run()
    at.toggle[0].set_value(False).run()              # one ε for every objective
    at.number_input(key=f"eps_high_{at.session_state['version']}").set_value(0.5).run()
    assert not at.exception
    scn = current(at)
    assert scn.settings.eps_high == 0.5
    grpo = run_scenario(scn, "grpo").explanation
    assert at.metric[0].value == fmt(grpo.loss)
    assert at.metric[2].value == fmt(run_scenario(scn, "dapo").explanation.loss)
    default = run_scenario(parse_scenario(json.loads((ROOT / "examples/default_group.json").read_text())), "grpo")
    assert fmt(default.explanation.loss) != at.metric[0].value  # the change really changed the number
    assert any(s.startswith("GRPO clipped") and "1 + ε_high = 1.5" in s for s in (m.value for m in at.markdown))


def test_token_lab_bad_probability_keeps_the_last_valid_group():
    at = open_page(PAGES[0])
    at.toggle(key=ctl("edit")).set_value(True).run()
    before = at.metric[0].value
    scenario_before = at.session_state["scenario"]
    key = f"tok_ed_{at.session_state['version']}_p"
    at.session_state[key] = {"edited_rows": {2: {"p_new": 1.5}}, "added_rows": [], "deleted_rows": []}
    at.run()
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    assert "tokens table, response 1, t = 3, column p_new" in errors and "outside (0, 1]" in errors
    assert at.metric[0].value == before and at.session_state["scenario"] == scenario_before
    at.session_state[key] = {"edited_rows": {2: {"p_new": 0.5}}, "added_rows": [], "deleted_rows": []}
    at.run()                                          # a valid edit goes through
    assert not at.error and at.session_state["scenario"]["responses"][0]["p_new"][2] == 0.5
    assert at.metric[0].value == fmt(run_scenario(current(at), "grpo").explanation.loss)


def test_token_lab_bad_setting_message():
    at = open_page(PAGES[0])
    at.number_input(key=f"c_{at.session_state['version']}").set_value(0.5).run()
    assert "dual_clip_c: must be > 1" in " ".join(e.value for e in at.error)
    assert "dual_clip_c" not in at.session_state["scenario"]["settings"]


def test_token_lab_add_response_and_sample():
    at = open_page(PAGES[0])
    at.toggle(key=ctl("edit")).set_value(True).run()
    g = len(at.session_state["scenario"]["responses"])
    [b for b in at.button if b.label == "Add response"][0].click().run()
    assert len(at.session_state["scenario"]["responses"]) == g + 1 and not at.exception
    [b for b in at.button if b.label == "Sample a group"][0].click().run()
    assert at.session_state["scenario"]["title"].startswith("Sampled group (G = 8")


def test_token_lab_no_signal_message():
    at = open_page(PAGES[0])
    load_preset(at, ROOT / "examples/equal_rewards_no_signal.json")
    assert "DAPO's dynamic sampling would drop it" in " ".join(w.value for w in at.warning)


# ------------------------------------------------------------------------------------------------------------ links
def test_a_link_reopens_the_same_view():
    data = json.loads((ROOT / "examples/dual_clip_negative_advantage.json").read_text())
    data["settings"]["dual_clip_c"] = 5.0
    at = open_page(PAGES[0], {"s": encode_scenario(data), "v": json.dumps({"cmp": ["dual_clip", "cispo"]})})
    assert at.session_state["scenario"] == data
    assert at.multiselect[0].value == ["dual_clip", "cispo"]
    assert at.metric[0].value == fmt(run_scenario(parse_scenario(data), "dual_clip").explanation.loss)
    assert at.query_params["s"] == [encode_scenario(data)] or at.query_params["s"] == encode_scenario(data)


def test_a_broken_link_falls_back_with_a_message():
    at = open_page(PAGES[0], {"s": "this-is-not-a-scenario", "v": "{not json"})
    shown = at.first_warnings
    assert "could not be used" in shown and "page settings in this link could not be read" in shown
    assert at.session_state["scenario"] == json.loads((ROOT / "examples/default_group.json").read_text())


def test_token_lab_loss_aggregation_setting_reaches_every_objective():
    """Choosing verl's token-mean in the Token Lab: GRPO's loss and GSPO's become the core's under token-mean (GSPO's
    per-response term counted once per token), which differ from their papers' here (responses of unequal length)."""
    at = open_page(PAGES[0])
    base = json.loads((ROOT / "examples/default_group.json").read_text())
    mode = dict(base, settings=dict(base["settings"], loss_agg_mode="token-mean"))
    before = [fmt(run_scenario(parse_scenario(base), n).explanation.loss) for n in ("grpo", "gspo")]
    after = [fmt(run_scenario(parse_scenario(mode), n).explanation.loss) for n in ("grpo", "gspo")]
    assert before != after and [m.value for m in at.metric[0:3:2]] == before     # loss metrics: every other one
    at.selectbox(key=f"agg_{at.session_state['version']}").select("token-mean").run()
    assert at.session_state["scenario"]["settings"]["loss_agg_mode"] == "token-mean"
    assert [m.value for m in at.metric[0:3:2]] == after
    at.selectbox(key=f"agg_{at.session_state['version']}").select(None).run()   # back to each paper's own
    assert "loss_agg_mode" not in at.session_state["scenario"]["settings"]
    assert [m.value for m in at.metric[0:3:2]] == before


def test_token_lab_shows_the_settings_in_verl_and_trl_words():
    """The popover holds, per compared objective, the bridge's verl overrides and TRL call for the current settings,
    and follows an edit of them (the loss aggregation box)."""
    from gspo_viz.core.settings import Settings
    from gspo_viz.scenarios import bridge
    at = open_page(PAGES[0])
    codes = [c.value for c in at.code]
    for name in ("grpo", "gspo", "dual_clip"):
        assert bridge.as_overrides(bridge.to_verl(Settings(objective=name))) in codes
        assert bridge.as_python(bridge.to_trl(Settings(objective=name))) in codes
    at.selectbox(key=f"agg_{at.session_state['version']}").select("seq-mean-token-sum").run()
    codes = " ".join(c.value for c in at.code)
    assert codes.count("actor_rollout_ref.actor.loss_agg_mode=seq-mean-token-sum\n") == 3
    assert codes.count("loss_type='luspo'") == 3            # TRL's loss that sums each response's tokens


def test_a_link_with_an_invalid_control_value_falls_back():
    at = open_page(PAGES[0], {"v": json.dumps({"cmp": ["grpo", "ppo9"]})})
    assert at.multiselect[0].value == ["grpo", "gspo", "dual_clip"]  # the default, not the invalid link value
    at.run()
    assert "'cmp' is not valid here" in " ".join(w.value for w in at.warning)


@pytest.mark.parametrize("page, key, bad, default, label", [
    (2, "la_G", 99, 8, "G (answers in the group)"),                  # G on [2, 32]
    (1, "ce_xmax", -3.0, 4.0, "Ratio axis up to"),                   # on [1.5, 12]
])
def test_a_link_with_a_slider_value_off_its_track_falls_back(page, key, bad, default, label):
    """Streamlit 1.67's slider takes an initial value outside its range as given: the page refuses it instead."""
    at = open_page(PAGES[page], {"v": json.dumps({key: bad})})
    assert next(s for s in at.slider if s.label == label).value == default
    at.run()
    assert f"value {bad} for '{key}' is not valid here" in " ".join(w.value for w in at.warning).replace("\\", "")


# ------------------------------------------------------------------------------------------------------------ Clip Explorer
def test_clip_explorer_marks_the_cores_token():
    at = open_page(PAGES[1])
    load_preset(at, ROOT / "examples/movie_five_tokens.json")
    at.selectbox(key=ctl("ce_token")).select(3).run()   # t = 4, r = 0.875
    assert "r = **0.875**" in texts(at) and "A = **1**" in texts(at)


def test_clip_explorer_slider_moves_the_zero_gradient_strip():
    at = open_page(PAGES[1])
    at.slider(key=ctl("ce_grpo_eps_high")).set_value(0.3).run()
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    grad_up = specs[1]                   # A > 0, gradient panel
    grpo_strip = [s for s in grad_up["layout"]["shapes"] if s.get("fillcolor") == "#0072B2"]
    assert grpo_strip and 1.3 < grpo_strip[0]["x0"] < 1.32  # first grid point above 1 + ε = 1.3


# ------------------------------------------------------------------------------------------------------------ Length
def test_length_page_numbers_follow_the_sliders():
    at = open_page(PAGES[2])
    at.slider(key=ctl("la_G")).set_value(4).run()
    assert f"the whole answer: **{1 / 4:.3g}**" in texts(at)        # GRPO: (1/G) per answer, however long
    at.slider(key=ctl("la_delta")).set_value(0.25).run()
    assert f"e^δ = **{drift_sequence_ratio([1], 0.25)[0]:.4g}**" in texts(at)


def test_length_page_bad_overlong_setting_message():
    at = open_page(PAGES[2])
    at.slider(key=ctl("la_omax")).set_value(1000).run()
    at.slider(key=ctl("la_ocache")).set_value(2000).run()  # L_cache > L_max
    assert "must not exceed L_max" in " ".join(e.value for e in at.error)


# ------------------------------------------------------------------------------------------------------------ Formula Checker
def test_formula_checker_steps_end_in_the_cores_gradient():
    at = open_page(PAGES[3])
    load_preset(at, ROOT / "examples/dual_clip_negative_advantage.json")
    at.selectbox(key=ctl("fc_objective")).select("dual_clip").run()
    at.selectbox(key=ctl("fc_response")).select(1).run()
    at.selectbox(key=ctl("fc_token")).select(3).run()   # t = 4, “41”
    latex = [x.value.strip("$\n") for x in at.get("latex")]  # st.latex bodies arrive as $$ ... $$
    assert any("\\max((-5.65685),\\ c A)" in x for x in latex)
    check = [x for x in latex if x.startswith("\\partial J / \\partial")]
    assert len(check) == 1 and check[0].endswith("= 0")  # autograd: a dual-clipped token has no gradient
    assert "dual: this branch is constant" in " ".join(latex).replace("\\text{", "").replace("}", "")


def test_formula_checker_shows_the_articles_mistakes():
    at = open_page(PAGES[3])
    next(s for s in at.selectbox if s.label == "Worked example").select(ROOT / "examples/movie_five_tokens.json").run()
    [b for b in at.button if b.label == "Load it"][0].click().run()
    at.selectbox(key=ctl("fc_token")).select(3).run()   # t = 4, r = 0.875
    shown = texts(at)
    assert "a ratio inside the range is not clipped" in shown and "shared/seeds/003" in shown


# ------------------------------------------------------------------------------------------------------------ Train
TRAIN = "pages/5_train.py"


def click(at, label):
    [b for b in at.button if b.label == label][0].click().run()
    assert not at.exception, at.exception


def test_train_page_start_a_few_steps_pause():
    import time
    at = open_page(TRAIN)
    assert "Press Start" in " ".join(i.value for i in at.info)
    click(at, "Start")
    bg = at.session_state["train_bg"]
    deadline = time.time() + 30
    while min(r.trainer.step_count for r in bg.runs) < 2 and time.time() < deadline:
        time.sleep(0.2)                                  # the session's background thread trains
    at.run()
    assert not at.exception
    assert [r.label for r in bg.runs] == ["GRPO", "GSPO", "Dual-Clip"] and bg.running
    assert all(r.trainer.step_count >= 2 for r in bg.runs)
    assert any("steps in all" in c.value for c in at.caption)
    assert "GRPO: after" in texts(at)                      # the generated summary
    click(at, "Pause")
    assert not bg.running
    counts = [r.trainer.step_count for r in bg.runs]
    time.sleep(0.5)
    at.run()
    assert [r.trainer.step_count for r in bg.runs] == counts  # paused: no training


def test_train_page_same_seed_same_start_for_every_run():
    at = open_page(TRAIN)
    click(at, "Single step")
    runs = at.session_state["train_bg"].runs
    first = [r.trainer.history[0] for r in runs]
    # same weights and prompts at step 1: the rollouts (rewards) are identical whatever the objective
    assert len({m["reward"] for m in first}) == 1 and len({m["response_length"] for m in first}) == 1


@pytest.mark.parametrize("key,value,words", [
    ("ctl_tr_G_0", 1, "G >= 2"), ("ctl_tr_mu_0", 1000, "μ must be in 1..P·G"), ("ctl_tr_c_0", 1.0, "c must be > 1"),
])
def test_train_page_refuses_impossible_settings(key, value, words):
    at = open_page(TRAIN)
    at.number_input(key=key).set_value(value).run()
    assert words in " ".join(e.value for e in at.error)
    assert [b for b in at.button if b.label == "Start"][0].disabled


def test_train_page_opens_a_group_in_the_token_lab():
    at = open_page(TRAIN)
    click(at, "Single step")
    # prompts are counted from 1 as everywhere in the app: the viewer opens on the first prompt with a signal
    from gspo_viz.toy.session import signal_groups
    run = at.session_state["train_bg"].runs[0]
    shown = next(m.value for m in at.markdown if m.value.startswith("Prompt **"))    # following: text, no box
    assert shown == f"Prompt **{signal_groups(run)[0] + 1}**"
    at.toggle(key="tr_view_follow").set_value(False).run()                          # choosing: a box from 1
    prompt = at.number_input(key="tr_view_prompt")
    assert prompt.min == 1 and prompt.value == signal_groups(run)[0] + 1
    at.toggle(key="tr_view_follow").set_value(True).run()
    assert ", ".join(str(p + 1) for p in signal_groups(run)) in " ".join(c.value for c in at.caption)
    click(at, "Open this group in the Token Lab")
    assert at.title[0].value == "Token Lab"
    assert at.session_state["scenario"]["title"].startswith("GRPO, step 1: answers to")
    assert at.multiselect[0].value == ["grpo", "gspo", "dual_clip"]


def test_train_page_shows_what_a_preset_sets_greyed_out():
    at = open_page(TRAIN)
    at.selectbox(key="ctl_tr_preset_0").select("MoE without Routing Replay").run()
    moe = at.toggle(key="tr_moe_fixed")
    assert moe.value is True and moe.disabled                # the preset's MoE, not the person's own toggle
    assert at.toggle(key="tr_replay_fixed").disabled
    click(at, "Single step")
    runs = at.session_state["train_bg"].runs
    assert [(r.trainer.cfg.moe, r.trainer.cfg.routing_replay) for r in runs] == [(True, False), (True, True),
                                                                                  (True, False)]
    assert "Routing Replay, so far" in texts(at)
    at.selectbox(key="ctl_tr_preset_0").select("(your own)").run()
    assert not at.toggle(key="ctl_tr_moe_0").disabled and at.toggle(key="ctl_tr_moe_0").value is False


def test_train_page_runs_survive_switching_pages():
    at = open_page(TRAIN)
    click(at, "Single step")
    click(at, "Single step")
    bg = at.session_state["train_bg"]
    at.switch_page("pages/1_token_lab.py").run()
    assert not at.exception and at.title[0].value == "Token Lab"
    at.switch_page(TRAIN).run()
    assert at.session_state["train_bg"] is bg                               # the same runs, not new ones
    assert [r.trainer.step_count for r in bg.runs] == [2, 2, 2]
    assert "after 2 steps" in texts(at)


def test_two_viewers_train_their_own_runs_at_the_same_time(monkeypatch):
    # a server with two training slots: each viewer's session gets one (with fewer slots than sessions, the others
    # wait in line: tests/test_training_fairness.py)
    import time
    from gspo_viz.toy import scheduler
    monkeypatch.setattr(scheduler, "_shared", scheduler.Scheduler(2))
    one, two = open_page(TRAIN), open_page(TRAIN)
    click(one, "Start")
    click(two, "Start")
    bg1, bg2 = one.session_state["train_bg"], two.session_state["train_bg"]
    assert bg1 is not bg2 and bg1.runs[0].trainer is not bg2.runs[0].trainer  # nothing shared between sessions
    deadline = time.time() + 30
    while min(r.trainer.step_count for r in bg1.runs + bg2.runs) < 2 and time.time() < deadline:
        bg1.beat(), bg2.beat()                                             # the pages' heartbeats
        time.sleep(0.2)
    assert bg1.status().state == bg2.status().state == "training"          # neither waits for the other
    assert all(r.trainer.step_count >= 2 for r in bg1.runs + bg2.runs)
    click(one, "Pause")
    assert not bg1.running and bg2.running                                 # pausing one leaves the other training
    click(two, "Pause")
    assert scheduler.shared().join()                                       # nobody trains: no worker thread left


def test_train_page_sets_eps_low_and_high_apart():
    at = open_page(TRAIN)
    at.selectbox(key="ctl_tr_preset_0").select("(your own)").run()
    at.toggle(key="ctl_tr_own_eps_0").set_value(False).run()
    at.number_input(key="ctl_tr_eps_low_0").set_value(0.1).run()
    at.number_input(key="ctl_tr_eps_high_0").set_value(0.28).run()
    click(at, "Single step")
    cfgs = [r.trainer.cfg for r in at.session_state["train_bg"].runs]
    assert [(c.eps_low, c.eps_high) for c in cfgs] == [(0.1, 0.28)] * 3
    assert cfgs[0].settings().eps_low == 0.1 and cfgs[0].settings().eps_high == 0.28


def test_a_link_with_eps_low_zero_keeps_it_when_a_page_opens():
    # `current.get("eps_low") or default` read 0.0 as unset: the Token Lab turned a link's ε_low = 0 into 0.2, and
    # a link that set ε_low alone gained ε_high = 0.2 (GSPO's own 4e-4 lost) just by opening the page
    data = json.loads((ROOT / "examples" / "movie_five_tokens.json").read_text())
    data["settings"] = {"objective": "grpo", "eps_low": 0.0, "eps_high": 0.2}
    at = open_page("pages/1_token_lab.py", {"s": encode_scenario(data)})
    assert at.session_state["scenario"]["settings"] == {"objective": "grpo", "eps_low": 0.0, "eps_high": 0.2}
    data["settings"] = {"objective": "gspo", "eps_low": 0.0}
    at = open_page("pages/1_token_lab.py", {"s": encode_scenario(data)})
    assert at.session_state["scenario"]["settings"] == {"objective": "gspo", "eps_low": 0.0}


def test_formula_checker_numbers_responses_and_tokens_from_one():
    at = open_page("pages/4_formula_checker.py")
    response = next(s for s in at.selectbox if s.label == "Response")
    token = next(s for s in at.selectbox if s.label == "Token")
    assert response.options[0] == "response 1" and token.options[0].startswith("t = 1:")
    latex = [x.value for x in at.latex]
    assert any(r"y_{1,1}" in x for x in latex)          # autograd's line names the token as the page does
