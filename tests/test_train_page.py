"""The Train page explains itself (issue 10, item 4): a help line per panel saying what its curve measures, plain tick
labels on log axes, a sentence computed from the runs on why a sequence-level clip (GSPO) marks more tokens, a note
whenever one run's lines hide another's (also while the runs' step counts differ), and a sample viewer that shows the
latest step, opens on a prompt with a learning signal, labels it as its advantages say, and opens in the Token Lab a
group that the Token Lab draws."""
import math
from pathlib import Path

import plotly.graph_objects as go
import pytest

from gspo_viz.scenarios import parse_scenario, run_scenario
from gspo_viz.toy.session import Run, make_runs, panel_specs, panels, samples, summary_lines
from gspo_viz.toy.train import TrainConfig, Trainer
from gspo_viz.views.training import help_lines, training_figure

ROOT = Path(__file__).resolve().parents[1]
TINY = TrainConfig(prompts=4, group=4, min_digits=1, max_digits=2, minibatches=2, seed=0)


def fake(label: str, objective: str, rows: list[dict], **cfg) -> Run:
    """A run whose history is given (no training): rows of clip_fraction, seq_clip_fraction, log_ratio_std."""
    run = Run(label, Trainer(TrainConfig(objective=objective, **cfg)))
    run.trainer.history = [{"step": k + 1, "reward": 0.1, "accuracy": 0.0, "clip_fraction_dual": 0.0,
                            "expert_change_fraction": math.nan} | row for k, row in enumerate(rows)]
    return run


def said(runs: list[Run]) -> str:
    return " ".join(summary_lines(runs))


# ------------------------------------------------------------------------------------------------ the figure
def test_every_panel_of_the_figure_has_its_help_line_under_its_title():
    runs = make_runs(TINY.with_(moe=True), [("GRPO", {"objective": "grpo"}), ("Dual-Clip", {"objective": "dual_clip"})])
    for r in runs:
        r.trainer.step()
    specs = panel_specs(runs)
    # the dual mark's panel (Dual-Clip has the mark) and the experts' (MoE) are drawn here; every panel has a help
    assert [p.key for p in specs] == ["reward", "clip_fraction", "seq_clip_fraction", "log_ratio_std", "kl_old_new",
                                      "clip_fraction_dual", "expert_change_fraction"]
    # the help lines quote the runs' own numbers: P·G, μ and Dual-Clip's c in its objective's words
    helps = {p.key: p.help for p in specs}
    assert "P·G = 4·4 = 16 sampled answers" in helps["reward"] and "μ = 2" in helps["clip_fraction"]
    assert "exceeded c = 3 with A < 0" in helps["clip_fraction_dual"]
    drawn, _ = panels(runs)
    fig = training_figure(drawn, {}, {})
    notes = [a.text for a in fig.layout.annotations]
    for spec in specs:
        at = notes.index(f"<b>{spec.title}</b>")
        shown = notes[at + 1].split("<br>")                       # the line right under the title
        assert shown == help_lines(spec.help) and " ".join(shown) == spec.help   # all of it, nothing cut
        assert max(map(len, shown)) <= 46
    # a panel only some runs have is left out when none has it: no dual mark, no MoE
    plain = make_runs(TINY, [("GRPO", {"objective": "grpo"}), ("GSPO", {"objective": "gspo"})])
    assert [p.key for p in panel_specs(plain)] == ["reward", "clip_fraction", "seq_clip_fraction", "log_ratio_std",
                                                   "kl_old_new"]


def test_log_axes_print_plain_powers_of_ten_not_si_prefixes():
    # Plotly's default exponentformat "B" prints 1e-10 as "100p" and 1e10 as "10B"
    fig = training_figure([("KL", True, {"a": ([1, 2], [1e-10, 1e10])}, "help"),
                           ("reward", False, {"a": ([1, 2], [0.1, 0.2])}, "help")], {}, {})
    d = go.Figure(fig.to_dict()).to_dict()                        # raises on an invalid property
    assert d["layout"]["yaxis"]["type"] == "log" and d["layout"]["yaxis"]["exponentformat"] in ("e", "power")
    assert d["layout"]["yaxis2"]["type"] == "linear"
    assert d["layout"]["yaxis"]["dtick"] == 1          # 20 decades: a label per power of ten, none at 2 and 5
    narrow = training_figure([("KL", True, {"a": ([1, 2], [0.01, 0.05])}, "help")], {}, {})
    assert "dtick" not in narrow.to_dict()["layout"]["yaxis"]   # within a decade Plotly's own ticks (2, 5) are needed


# ------------------------------------------------------------------------------------------------ why GSPO clips more
def test_why_a_sequence_level_clip_marks_more_tokens_is_computed_from_the_runs():
    grpo = fake("GRPO", "grpo", [{"clip_fraction": c, "seq_clip_fraction": 0.05, "log_ratio_std": 0.1}
                                 for c in (0.01, 0.02, 0.03)])
    gspo = fake("GSPO", "gspo", [{"clip_fraction": c, "seq_clip_fraction": 0.25, "log_ratio_std": 0.1}
                                 for c in (0.1, 0.2, 0.3)])
    text = said([grpo, gspo])
    # GSPO's paper ε: [1 − 0.0003, 1 + 0.0004] = [0.9997, 1.0004], 0.0007 wide; GRPO's [0.8, 1.2] is 0.4 wide,
    # 0.4 / 0.0007 = 571.4 times as wide; mean clip fractions (0.1 + 0.2 + 0.3)/3 = 20% and 2%
    assert ("Why GSPO clips more tokens: 20.0% against GRPO's 2.0% (last 3 steps). Its band [0.9997, 1.0004] "
            "(ε_low = 0.0003, ε_high = 0.0004) is 0.0007 wide, 571 times narrower than GRPO's [0.8, 1.2], and it "
            "acts on each answer's sequence ratio s_i") in text
    assert "Answers with a clipped token: 25.0% of GSPO's and 5.0% of GRPO's." in text
    # the objective is asked, not named: GSPO-token clips on a sequence ratio too; DAPO's band [0.8, 1.28] is
    # 0.48 / 0.0007 = 685.7 times as wide
    dapo = fake("D", "dapo", [{"clip_fraction": 0.04, "seq_clip_fraction": 0.1, "log_ratio_std": 0.1}] * 3)
    tok = fake("T", "gspo_token", [{"clip_fraction": 0.5, "seq_clip_fraction": 0.5, "log_ratio_std": 0.1}] * 3)
    text = said([dapo, tok])
    assert "Why T clips more tokens: 50.0% against D's 4.0% (last 3 steps)." in text
    assert "686 times narrower than D's [0.8, 1.28]" in text


def test_the_sentence_says_more_only_when_the_numbers_are_more():
    # GSPO with GRPO's ε: the same band, and here fewer tokens clipped: no "why more", and no "narrower"
    grpo = fake("GRPO", "grpo", [{"clip_fraction": 0.02, "seq_clip_fraction": 0.05, "log_ratio_std": 0.1}] * 2)
    wide = fake("GSPO 0.2", "gspo", [{"clip_fraction": 0.001, "seq_clip_fraction": 0.001, "log_ratio_std": 0.1}] * 2,
                eps_low=0.2, eps_high=0.2)
    text = said([grpo, wide])
    assert "Why" not in text and "narrower" not in text
    assert ("GSPO 0.2 clips 0.1% of tokens against GRPO's 2.0% (last 2 steps); its band [0.8, 1.2] (ε_low = 0.2, "
            "ε_high = 0.2) is 0.4 wide, as wide as GRPO's [0.8, 1.2]") in text
    # alone, the run's band is set against its tokens' spread (log 1.0004 − log 0.9997 = 0.0007 in log terms)
    alone = said([fake("GSPO", "gspo", [{"clip_fraction": 0.2, "seq_clip_fraction": 0.3, "log_ratio_std": 0.05}])])
    assert ("GSPO clips 20.0% of tokens (last 1 steps): its band [0.9997, 1.0004] (ε_low = 0.0003, ε_high = 0.0004) "
            "is 0.0007 wide") in alone
    assert "30.0% of its answers were clipped, while its tokens' log π_θ/π_old spread by 0.05 (std) per step " \
           "against a band 0.0007 wide in log terms." in alone
    # token-level runs alone: nothing to explain
    assert "band" not in said([grpo])


def test_the_sentence_quotes_the_trained_runs_own_numbers():
    runs = make_runs(TINY, [("GRPO", {"objective": "grpo"}), ("GSPO", {"objective": "gspo"})])
    for _ in range(2):
        for r in runs:
            r.trainer.step()
    grpo, gspo = (r.trainer.history for r in runs)
    mean = lambda h, k: sum(m[k] for m in h) / len(h)  # noqa: E731
    line = next(x for x in summary_lines(runs) if "band [0.9997, 1.0004]" in x)
    assert f"{mean(gspo, 'clip_fraction'):.1%}" in line and f"GRPO's {mean(grpo, 'clip_fraction'):.1%}" in line
    assert (f"{mean(gspo, 'seq_clip_fraction'):.1%} of GSPO's and {mean(grpo, 'seq_clip_fraction'):.1%} of "
            "GRPO's.") in line


# ------------------------------------------------------------------------------------------------ hidden lines
def test_a_note_names_hidden_lines_while_the_runs_step_counts_differ():
    # at a refresh one run may be a step ahead of the other (runs step in turns): the old note compared only runs
    # with as many steps, so it vanished at most refreshes
    grpo, dual = make_runs(TINY, [("GRPO", {"objective": "grpo"}), ("Dual-Clip", {"objective": "dual_clip"})])
    for _ in range(3):
        grpo.trainer.step()
    for _ in range(2):
        dual.trainer.step()
    keys = [p.key for p in panel_specs([grpo])]
    assert all(a[k] == b[k] for a, b in zip(grpo.trainer.history, dual.trainer.history) for k in keys)
    text = said([grpo, dual])
    assert ("Dual-Clip's curves lie exactly on GRPO's so far (the same value in every panel both are drawn in, at "
            "each of the 2 steps both have run), so Dual-Clip's lines hide GRPO's.") in text
    assert "Dual-Clip PPO has a mark GRPO lacks" in text and "no token has reached that yet" in text


# ------------------------------------------------------------------------------------------------ the sample viewer
@pytest.mark.parametrize("changes", [{}, {"dynamic_sampling": True, "overlong_filter": True, "overlong_cache": 2}])
def test_each_group_opens_with_its_signal_label_agreeing_with_its_advantages(changes):
    runs = make_runs(TINY.with_(max_digits=3, **changes),
                     [("GRPO", {"objective": "grpo"}), ("GSPO", {"objective": "gspo"})])
    for r in runs:
        r.trainer.step()
    view = samples(runs[0])
    assert view.step == 1 and view.prompts == TINY.prompts
    assert sorted(view.signal + list(view.quiet)) == list(range(TINY.prompts))
    for k in range(view.prompts):
        scenario = view.scenario(k)
        assert f"step {view.step}:" in scenario["title"]
        scn = parse_scenario(scenario)
        assert len(scn.responses) > 1 and all(r.tokens for r in scn.responses)
        for name in [r.objective for r in runs]:                 # the group the Token Lab opens runs for each
            res = run_scenario(scn, name)
            adv = res.advantages if res.advantages.dim() == 1 else res.advantages.abs().amax(-1)
            moves = any(float(adv[i]) != 0 for i in range(len(scn.responses)) if i not in res.masked)
            assert moves == (k in view.signal), (k, name)      # "signal" means an advantage ≠ 0 in the loss
            assert res.explanation.loss is not None
    # the viewer opens on a prompt whose answers got different rewards
    if view.signal:
        rewards = [r["reward"] for r in view.scenario(view.first_signal)["responses"]]
        assert len(set(rewards)) > 1



def open_train():
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.run()
    at.switch_page("pages/5_train.py").run()
    assert not at.exception, at.exception
    return at


def click(at, label):
    [b for b in at.button if b.label == label][0].click().run()
    assert not at.exception, at.exception


@pytest.mark.usefixtures("navigation_mode")
def test_the_viewer_shows_the_latest_step_and_opens_a_group_the_token_lab_draws():
    at = open_train()
    click(at, "Single step")
    click(at, "Single step")
    bg = at.session_state["train_bg"]
    bg.step_once()                                 # the runs train on meanwhile (as on a slot): the page redraws
    at.run()
    run = bg.runs[0]
    view = samples(run)
    assert view.step == 3
    heads = [h.value for h in at.subheader]
    # following, the prompt is text beside the run, not a box (a disabled box set from refreshes lagged the heading)
    assert not [b for b in at.number_input if b.label == "Prompt"]
    prompt = int(next(m.value for m in at.markdown if m.value.startswith("Prompt **")).split("**")[1])
    # the viewer is at the latest step, on the first prompt with a learning signal at that step (counted from 1)
    assert f"Sample viewer: GRPO's answers to prompt {prompt} at step 3" in heads
    assert view.signal and prompt == view.first_signal + 1
    assert ", ".join(str(p + 1) for p in view.signal) in " ".join(c.value for c in at.caption)
    assert not any("has no learning signal" in i.value for i in at.info)
    # the maps are one run's answers scored by every run's objective, and the page says so
    assert ("A map per objective, all on GRPO's answers: the same tokens and ratios, scored by each run's objective "
            "(GRPO, GSPO, Dual-Clip PPO)") in " ".join(c.value for c in at.caption)
    click(at, "Open this group in the Token Lab")
    assert at.title[0].value == "Token Lab"
    scenario = at.session_state["scenario"]
    assert scenario["title"].startswith("GRPO, step 3: answers to") and scenario == view.scenario(prompt - 1)
    names = at.multiselect[0].value
    assert names == ["grpo", "gspo", "dual_clip"]
    scn = parse_scenario(scenario)
    assert len(scn.responses) > 1 and all(r.tokens for r in scn.responses)
    for name in names:                             # charts with something on them: the advantages are not all 0
        assert run_scenario(scn, name).advantages.abs().max() > 0
    assert len([c for c in at.get("plotly_chart")]) >= 2


@pytest.mark.usefixtures("navigation_mode")
def test_a_prompt_chosen_by_hand_without_a_signal_says_so_as_its_advantages_do():
    at = open_train()
    click(at, "Single step")
    run = at.session_state["train_bg"].runs[0]
    view = samples(run)
    assert view.quiet, "this seed's first step has prompts without a signal"
    followed = view.first_signal + 1
    at.toggle(key="tr_view_follow").set_value(False).run()
    assert at.number_input(key="tr_view_prompt").value == followed      # the box starts where the viewer was
    quiet = min(view.quiet)
    at.number_input(key="tr_view_prompt").set_value(quiet + 1).run()
    assert not at.exception, at.exception
    assert (f"Prompt {quiet + 1} has no learning signal at step 1: its answers got the same reward, so every "
            "advantage is 0.") in " ".join(i.value for i in at.info)
    assert any(f"answers to prompt {quiet + 1} at step 1" in h.value for h in at.subheader)
    res = run_scenario(parse_scenario(view.scenario(quiet)), "grpo")
    assert res.advantages.abs().max() == 0
