"""The toy policy: tasks and rewards, on-policy log-probs, Routing Replay, the fast path, learning, determinism."""
import math

import pytest
import torch

from gspo_viz import explain
from gspo_viz.objectives import objective_loss
from gspo_viz.toy import tasks
from gspo_viz.toy.train import (TrainConfig, TrainConfigError, Trainer, TrainingStopped, rollout,
                                sequence_logp)

EASY = dict(min_digits=1, max_digits=2)


# ------------------------------------------------------------------------------------------------- tasks
def test_rewards():
    E = tasks.EOS
    assert tasks.reward("sort", [3, 1, 2], [1, 2, 3, E]) == (1.0, True)
    assert tasks.reward("reverse", [3, 1, 2], [2, 1, 3, E]) == (1.0, True)
    # partial credit: 2 of 3 positions right
    assert tasks.reward("sort", [3, 1, 2], [1, 2, 2, E])[0] == pytest.approx(2 / 3)
    # one extra token: (3/3)·(1 − 1/3)
    assert tasks.reward("sort", [3, 1, 2], [1, 2, 3, 3, E])[0] == pytest.approx(2 / 3)
    assert tasks.reward("sort", [3, 1, 2], [1, 2, 3]) == (0.0, False)           # no EOS: truncated
    assert tasks.reward("sort", [3, 1, 2], [1, 2, 2, E], "exact") == (0.0, False)


def test_prompts_are_left_padded_and_seeded():
    a = tasks.sample_prompts(5, 1, 4, torch.Generator().manual_seed(1))
    b = tasks.sample_prompts(5, 1, 4, torch.Generator().manual_seed(1))
    assert torch.equal(a.tokens, b.tokens) and a.digits == b.digits
    for row, d in zip(a.tokens.tolist(), a.digits):
        real = [t for t in row if t != tasks.PAD]
        assert real == [tasks.BOS] + d + [tasks.SEP] and row[-1] == tasks.SEP


# ------------------------------------------------------------------------------------------------- on-policy numbers
@pytest.mark.parametrize("moe", [False, True])
def test_sampled_log_probs_equal_the_training_forward(moe):
    tr = Trainer(TrainConfig(moe=moe, seed=3))
    tr.model.eval()
    prompts = tasks.sample_prompts(16, 2, 4, torch.Generator().manual_seed(5))
    ro = rollout(tr.model, tr.cfg, prompts, torch.Generator().manual_seed(6))
    with torch.no_grad():
        logp, experts, _, _ = sequence_logp(tr.model, ro.seq)
    diff = ((logp - ro.logp_old) * ro.resp).abs().max().item()
    assert diff < 1e-5, diff                         # far inside GSPO's ±3e-4 band
    answered = ro.seq[:, 1:][ro.resp.bool()]             # every response token is in the action space
    assert ro.resp.sum() > 0 and set(answered.tolist()) <= set(range(tasks.DIGITS)) | {tasks.EOS}
    if moe:                                          # same weights, same tokens: the router chooses the same experts
        inp_real = ro.seq[:, :-1] != tasks.PAD
        assert torch.equal(experts[inp_real], ro.experts[inp_real])


def test_first_minibatch_clips_nothing_under_gspo():
    tr = Trainer(TrainConfig(objective="gspo", seed=0))
    for _ in range(5):
        assert tr.step()["first_minibatch_clip_fraction"] == 0.0


def test_routing_replay_uses_the_rollouts_experts():
    tr = Trainer(TrainConfig(moe=True, routing_replay=True, seed=1))
    for _ in range(3):
        tr.step()                                    # the policy moves away from the rollout's
    ro = tr.last_rollout
    forced = ro.experts
    with torch.no_grad():
        _, replayed, _, _ = sequence_logp(tr.model, ro.seq, forced)
        _, free, _, _ = sequence_logp(tr.model, ro.seq)
    assert torch.equal(replayed, forced)
    inp_real = ro.seq[:, :-1] != tasks.PAD
    changed = (free != forced).any(-1).any(-1)[inp_real].float().mean().item()
    assert changed > 0                                # without replay some tokens would have used other experts


def test_training_fast_path_equals_the_explain_path():
    tr = Trainer(TrainConfig(objective="dual_clip", seed=2))
    tr.step()
    ro = tr.last_rollout
    adv, mask, _ = tr.advantages(ro)
    with torch.no_grad():
        logp, _, _, _ = sequence_logp(tr.model, ro.seq)
    fast = objective_loss("dual_clip", logp, ro.logp_old, adv, mask, tr.settings)
    slow = explain("dual_clip", logp, ro.logp_old, adv, mask, tr.settings)
    assert float(fast) == pytest.approx(slow.loss, rel=1e-5, abs=1e-7)


# ------------------------------------------------------------------------------------------------- learning
@pytest.mark.parametrize("objective", ["grpo", "gspo", "dual_clip"])
def test_short_runs_raise_the_reward(objective):
    tr = Trainer(TrainConfig(objective=objective, seed=0, **EASY))
    before = [p.detach().clone() for p in tr.model.parameters()]
    rewards = [tr.step()["reward"] for _ in range(30)]
    assert sum(rewards[-5:]) / 5 > sum(rewards[:5]) / 5 + 0.2, rewards
    assert any(not torch.equal(a, b) for a, b in zip(before, tr.model.parameters()))


def test_same_seed_same_metrics_and_same_start():
    a, b = Trainer(TrainConfig(seed=7)), Trainer(TrainConfig(seed=7))
    ma = [a.step() for _ in range(3)]
    mb = [b.step() for _ in range(3)]
    for x, y in zip(ma, mb):
        assert {k: v for k, v in x.items() if k != "step_time"} == {k: v for k, v in y.items() if k != "step_time"}
    c = Trainer(TrainConfig(objective="gspo", seed=7))  # another objective from the same seed starts identically
    d = Trainer(TrainConfig(objective="grpo", seed=7))
    assert all(torch.equal(p, q) for p, q in zip(c.model.parameters(), d.model.parameters()))


def test_metrics_are_complete_and_finite():
    m = Trainer(TrainConfig(moe=True, seed=4)).step()
    for key in ("reward", "accuracy", "clip_fraction", "seq_clip_fraction", "log_ratio_std", "kl_old_new",
                "entropy", "response_length", "grad_norm", "no_signal_fraction", "expert_change_fraction",
                "dual_clip_fraction", "step_time"):
        assert key in m and math.isfinite(m[key]), key


def test_dynamic_sampling_masks_groups_without_signal():
    tr = Trainer(TrainConfig(dynamic_sampling=True, reward="exact", seed=0))
    tr.step()
    ro = tr.last_rollout
    adv, mask, no_signal = tr.advantages(ro)
    assert no_signal.any()                            # at the start almost every group is all-wrong
    rows = mask.sum(-1).view(tr.cfg.prompts, tr.cfg.group)
    assert (rows[no_signal] == 0).all()


# ------------------------------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("changes,field", [
    ({"group": 1}, "group"), ({"minibatches": 1000}, "minibatches"), ({"dual_clip_c": 1.0}, "dual_clip_c"),
    ({"routing_replay": True}, "routing_replay"), ({"objective": "ppo9"}, "objective"), ({"eps_low": 1.5}, "eps_low"),
])
def test_impossible_settings_are_refused(changes, field):
    with pytest.raises(TrainConfigError) as e:
        TrainConfig(**changes)
    assert e.value.field == field


def test_nan_loss_stops_the_run_and_keeps_the_last_good_state(monkeypatch):
    tr = Trainer(TrainConfig(seed=0))
    tr.step()
    good = [p.detach().clone() for p in tr.model.parameters()]
    import gspo_viz.toy.train as train
    real = train.objective_loss
    monkeypatch.setattr(train, "objective_loss", lambda *a, **k: real(*a, **k) * float("nan"))
    with pytest.raises(TrainingStopped, match="kept its last good state"):
        tr.step()
    assert all(torch.equal(a, b) for a, b in zip(good, tr.model.parameters()))
    assert len(tr.history) == 1                       # the failed step left no metrics behind


def test_nan_policy_stops_the_rollout_with_a_message():
    tr = Trainer(TrainConfig(seed=0))
    with torch.no_grad():
        tr.model.head.weight.fill_(float("nan"))
    with pytest.raises(TrainingStopped, match="not finite"):
        tr.step()


# ------------------------------------------------------------------------------------------------- the page's helpers
def test_presets_build_and_a_group_becomes_a_scenario():
    from gspo_viz import parse_scenario, run_scenario
    from gspo_viz.toy.session import PRESETS, group_scenario, make_runs, metrics_frame, summary, train_for
    for name, preset in PRESETS.items():
        base = TrainConfig(**preset["base"])
        runs = make_runs(base, [(label, preset["base"] | over) for label, over in preset["runs"]])
        assert len(runs) == len(preset["runs"])
    runs = make_runs(TrainConfig(seed=0), [("GRPO", {"objective": "grpo"}), ("GSPO", {"objective": "gspo"})])
    assert train_for(runs, 0.0, max_steps=2) == 2
    scenario = group_scenario(runs[1], prompt=0)
    scn = parse_scenario(scenario)                     # a valid scenario for the Token Lab
    assert len(scn.responses) >= 1 and scn.settings.objective == "gspo"
    res = run_scenario(scn, "gspo")
    ro = runs[1].trainer.last_rollout
    G = runs[1].trainer.cfg.group
    kept = [i for i in range(G) if ro.resp[i].sum() > 0]   # answers with at least one token
    assert [r.reward for r in scn.responses] == [float(ro.rewards[i]) for i in kept]
    assert res.explanation.seq_ratio is not None
    frame = metrics_frame(runs)
    assert list(frame["run"]) == ["GRPO", "GSPO"] and "clip_fraction" in frame
    text = summary(runs)
    assert "GRPO: after 1 steps" in text and "GSPO: after 1 steps" in text


def test_background_training_starts_pauses_and_stops_when_nobody_watches():
    import time
    from gspo_viz.toy.session import Background, make_runs
    bg = Background(make_runs(TrainConfig(seed=0), [("GRPO", {"objective": "grpo"})]), idle_stop=1.0)
    bg.start()
    deadline = time.time() + 20
    while bg.runs[0].trainer.step_count < 2 and time.time() < deadline:
        time.sleep(0.05)
    assert bg.running and bg.runs[0].trainer.step_count >= 2
    bg.pause()
    assert not bg.running
    n = bg.runs[0].trainer.step_count
    bg.step_once()
    assert bg.runs[0].trainer.step_count == n + 1 and not bg.running
    bg.start()                                       # no heartbeat for idle_stop seconds: the thread ends itself
    deadline = time.time() + 20
    while bg.running and time.time() < deadline:
        time.sleep(0.1)
    assert not bg.running


def test_curves_average_buckets_of_steps_once_a_run_is_long():
    from gspo_viz.toy.session import Run, curves
    tr = Trainer(TrainConfig(seed=0))
    tr.history = [{"step": s, "reward": float(s)} for s in range(1, 8)]      # rewards 1..7 at steps 1..7
    run = Run("a", tr)
    series, k = curves([run], "reward", max_points=10)                      # short: every step is a point
    assert k == 1 and series["a"] == (list(range(1, 8)), [float(s) for s in range(1, 8)])
    series, k = curves([run], "reward", max_points=3)                       # 7 steps, 3 points: k = ceil(7/3) = 3
    # buckets {1,2,3} → mean 2 at step 3, {4,5,6} → 5 at step 6, the incomplete {7} → 7 at step 7
    assert k == 3 and series["a"] == ([3, 6, 7], [2.0, 5.0, 7.0])


def test_training_figure_one_panel_per_metric_with_the_values():
    import plotly.graph_objects as go
    from gspo_viz.plots import training_figure
    panels = [("mean reward", False, {"GRPO": ([1, 2], [0.1, 0.2]), "GSPO": ([1, 2], [0.3, 0.4])}),
              ("KL", True, {"GRPO": ([1, 2], [1e-3, 2e-3]), "GSPO": ([1, 2], [1e-4, 2e-4])})]
    fig = training_figure(panels, {"GRPO": "#111111", "GSPO": "#222222"}, {"GSPO": "dash"}, columns=3)
    d = go.Figure(fig.to_dict()).to_dict()                                  # raises on any invalid property
    traces = d["data"]
    assert [(t["name"], t["xaxis"], t["showlegend"]) for t in traces] == [
        ("GRPO", "x", True), ("GSPO", "x", True), ("GRPO", "x2", False), ("GSPO", "x2", False)]
    assert list(traces[3]["y"]) == [1e-4, 2e-4] and d["layout"]["yaxis2"]["type"] == "log"
    assert traces[1]["line"]["dash"] == "dash" and traces[0]["line"]["color"] == "#111111"
    x1, x2 = d["layout"]["xaxis"]["domain"], d["layout"]["xaxis2"]["domain"]
    assert x1[1] < x2[0]                                                    # side by side, not overlapping


def test_runs_stepped_in_parallel_compute_what_they_compute_alone():
    from concurrent.futures import ThreadPoolExecutor
    from gspo_viz.toy.session import make_runs, train_for
    specs = [("GRPO", {"objective": "grpo"}), ("GSPO", {"objective": "gspo"}), ("Dual", {"objective": "dual_clip"})]
    alone = make_runs(TrainConfig(seed=4), specs)
    together = make_runs(TrainConfig(seed=4), specs)
    # one intra-op thread everywhere (as on the Train page): with more, a kernel may split its sums differently
    # when two threads call it at once, and results then differ in the last bits
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert train_for(alone, 1e9, max_steps=9) == 9                   # three rounds, one thread
        with ThreadPoolExecutor(2, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            assert train_for(together, 1e9, max_steps=9, pool=pool) == 9  # three rounds, two runs at a time
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(alone, together):
        for ma, mb in zip(a.trainer.history, b.trainer.history, strict=True):
            for key in ma.keys() - {"step_time"}:
                same = ma[key] == mb[key] or (math.isnan(ma[key]) and math.isnan(mb[key]))
                assert same, (a.label, ma["step"], key, ma[key], mb[key])
        assert all(torch.equal(p, q) for p, q in zip(a.trainer.model.parameters(), b.trainer.model.parameters()))


def test_summary_reports_a_collapse_and_what_routing_replay_shows():
    from gspo_viz.toy.session import Run, summary
    def history(rewards, spread, changed):
        return [{"step": k + 1, "reward": r, "accuracy": 0.0, "clip_fraction": 0.0, "log_ratio_std": spread,
                 "expert_change_fraction": changed} for k, r in enumerate(rewards)]
    off = Run("GRPO", Trainer(TrainConfig(moe=True)))
    on = Run("GRPO + RR", Trainer(TrainConfig(moe=True, routing_replay=True)))
    off.trainer.history = history([0.5] * 20, 0.04, 0.08)
    on.trainer.history = history([0.6] * 20, 0.01, 0.0)
    text = summary([off, on])
    assert "without it, GRPO changed experts for 8.0% of tokens on average" in text
    assert "spread by 0.040 per step on average (std; largest 0.040 at step 1), against 0.010" in text
    assert "Rewards over the last 10 steps: 0.500 without, 0.600 with." in text
    assert "noisier: the cause the GSPO paper names" in text                # 0.040 > 1.2 · 0.010
    assert "Neither run has collapsed" in text and "fell" not in text
    on.trainer.history = history([0.6] * 20, 0.06, 0.0)             # now the replayed run spreads more: 0.06 > 1.2 · 0.04
    assert "not noisier without Routing Replay" in summary([off, on])
    on.trainer.history = history([0.6] * 20, 0.045, 0.0)             # 0.045 is within 20% of 0.04
    assert "about equal (within 20%)" in summary([off, on])
    # the run without Routing Replay collapses: ten steps at 0.9, then ten at 0.5 → best 10-step mean 0.9 (up to
    # step 10), latest 0.5: a fall of 0.4 >= 0.3
    off.trainer.history = history([0.9] * 10 + [0.5] * 10, 0.04, 0.08)
    text = summary([off, on])
    assert "GRPO: after 20 steps the mean reward is 0.500" in text
    assert "its reward fell from 0.900 (10 steps up to step 10)" in text and "Neither run" not in text


def test_dual_clip_fraction_counts_tokens_held_at_c_and_identical_runs_are_named():
    from gspo_viz.toy.session import make_runs, summary, train_for
    # c barely above 1 and a large lr: later minibatches soon hold tokens with A < 0 and ratio > c
    runs = make_runs(TrainConfig(seed=2, lr=2e-2, dual_clip_c=1.001),
                     [("GRPO", {"objective": "grpo"}), ("Dual-Clip", {"objective": "dual_clip"})])
    train_for(runs, 1e9, max_steps=6)
    grpo, dual = (r.trainer.history for r in runs)
    assert all(m["dual_clip_fraction"] == 0 for m in grpo)                 # GRPO has no dual bound
    assert sum(m["dual_clip_fraction"] for m in dual) > 0
    # with the default c = 3 the first steps hold nothing, so Dual-Clip equals GRPO step for step
    runs = make_runs(TrainConfig(seed=2), [("GRPO", {"objective": "grpo"}), ("Dual-Clip", {"objective": "dual_clip"})])
    train_for(runs, 1e9, max_steps=4)
    assert all(m["dual_clip_fraction"] == 0 for m in runs[1].trainer.history)
    assert [m["reward"] for m in runs[0].trainer.history] == [m["reward"] for m in runs[1].trainer.history]
    text = summary(runs)
    assert "Dual-Clip's curves lie exactly on GRPO's so far" in text and "no token has reached that yet" in text


def test_token_names_survive_html_and_markdown():
    # "<s>"/"</s>" vanished in Plotly cells (read as a strike-through tag); the names must be plain text
    assert tasks.detokenize([tasks.BOS, 1, 2, tasks.SEP, 2, 1, tasks.EOS]) == "BOS 1 2 → 2 1 EOS"
    assert not any("<" in n or ">" in n for n in tasks.NAMES)


def test_signal_groups_are_the_prompts_whose_rewards_differ():
    from gspo_viz.toy.session import Run, signal_groups
    tr = Trainer(TrainConfig(seed=0, prompts=3, group=2))
    run = Run("a", tr)
    assert signal_groups(run) == []                                   # no rollout yet
    tr.step()
    rewards = tr.last_rollout.rewards.view(3, 2).tolist()
    assert signal_groups(run) == [i for i, (a, b) in enumerate(rewards) if a != b]
    tr.last_rollout.rewards = torch.tensor([0.5, 0.5, 0.0, 1.0, 0.2, 0.2])
    assert signal_groups(run) == [1]
