"""The toy policy: tasks and rewards, on-policy log-probs, Routing Replay, the fast path, its metrics, learning,
determinism."""
import copy
import math

import pytest
import torch

from gspo_viz.core import metrics as M
from gspo_viz.core.advantages import group_advantages, kl_estimate
from gspo_viz.core.explain import explain
from gspo_viz.core.loss import objective_loss
from gspo_viz.core.objectives import OBJECTIVES
from gspo_viz.toy import tasks
from gspo_viz.toy.model import positions_of
from gspo_viz.toy.train import (Rollout, TrainConfig, TrainConfigError, Trainer, TrainingStopped, rollout,
                                sequence_logp)

EASY = dict(min_digits=1, max_digits=2)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread, as on the Train page: fast for these tiny tensors and the same sums every run."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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
    fast = objective_loss("dual_clip", logp, ro.logp_old, adv, ro.resp, tr.settings, loss_mask=mask)
    slow = explain("dual_clip", logp, ro.logp_old, adv, ro.resp, tr.settings, loss_mask=mask)
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
                "clip_fraction_dual", "clip_fraction_upper", "clip_fraction_lower",
                "first_minibatch_clip_fraction", "step_time"):
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
    from gspo_viz.scenarios import parse_scenario, run_scenario
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
    from gspo_viz.views.training import training_figure
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


def test_clip_fraction_dual_counts_tokens_held_at_c_and_identical_runs_are_named():
    from gspo_viz.toy.session import make_runs, summary, train_for
    # c barely above 1 and a large lr: later minibatches soon hold tokens with A < 0 and ratio > c
    runs = make_runs(TrainConfig(seed=2, lr=2e-2, dual_clip_c=1.001),
                     [("GRPO", {"objective": "grpo"}), ("Dual-Clip", {"objective": "dual_clip"})])
    train_for(runs, 1e9, max_steps=6)
    grpo, dual = (r.trainer.history for r in runs)
    assert all(m["clip_fraction_dual"] == 0 for m in grpo)                 # GRPO has no dual bound
    assert sum(m["clip_fraction_dual"] for m in dual) > 0
    # with the default c = 3 the first steps hold nothing, so Dual-Clip equals GRPO step for step
    runs = make_runs(TrainConfig(seed=2), [("GRPO", {"objective": "grpo"}), ("Dual-Clip", {"objective": "dual_clip"})])
    train_for(runs, 1e9, max_steps=4)
    assert all(m["clip_fraction_dual"] == 0 for m in runs[1].trainer.history)
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


# ------------------------------------------------------------------------------------------------- the step's metrics
def _recorded_step(tr: Trainer, monkeypatch):
    """One tr.step(), and the tensors its metrics are computed on, rebuilt from outside: the minibatch order (a copy of
    the shuffle generator), each minibatch's log-probs as the trainer computed them for its update (recorded from
    sequence_logp), log π_old as sampled, the advantages and both masks."""
    import gspo_viz.toy.train as train
    order_gen = torch.Generator()
    order_gen.set_state(tr.shuffle_gen.get_state())
    calls = []
    real = train.sequence_logp

    def recording(model, seq, forced=None):
        out = real(model, seq, forced)
        if model is tr.model:
            calls.append(out[0].detach().clone())
        return out

    monkeypatch.setattr(train, "sequence_logp", recording)
    m = tr.step()
    monkeypatch.setattr(train, "sequence_logp", real)
    ro = tr.last_rollout
    adv, loss_mask, _ = tr.advantages(ro)
    B = ro.seq.shape[0]
    chunks = [c for c in torch.randperm(B, generator=order_gen).chunk(tr.cfg.minibatches) if loss_mask[c].sum() > 0]
    assert len(chunks) == len(calls)                   # one forward per updated minibatch (no KL reference here)
    idx = torch.cat(chunks)
    return m, dict(logp=torch.cat(calls), logp_old=ro.logp_old[idx], adv=adv[idx], mask=ro.resp[idx],
                   loss_mask=loss_mask[idx], first=len(chunks[0]))


def test_kl_old_new_is_k3_of_kl_from_old_to_new_exactly_over_the_vocabulary(monkeypatch):
    # KL(π_old ‖ π_θ) at a position is Σ_v p_old(v)·log(p_old(v)/p_new(v)). The trainer estimates it from the tokens
    # sampled from π_old with Schulman's k3 = (r − 1) − log r, r = p_new/p_old, which is unbiased:
    #   E_{v~p_old}[(r − 1) − log r] = Σ_v p_new(v) − Σ_v p_old(v) + Σ_v p_old(v)·log(p_old(v)/p_new(v))
    #                                = 1 − 1 + KL(p_old ‖ p_new).
    # The ratio the other way up, k = (1/r − 1) + log r, has E = Σ_v p_old²/p_new − 1 − KL ≠ KL (the old bug).
    tr = Trainer(TrainConfig(seed=5))
    old = copy.deepcopy(tr.model).eval()               # π_old: the policy that samples this step's rollout
    m, t = _recorded_step(tr, monkeypatch)             # then μ = 4 updates: tr.model is π_θ
    ro = tr.last_rollout
    tr.model.eval()
    with torch.no_grad():
        inp = ro.seq[:, :-1]
        real = inp != tasks.PAD
        lp_old = torch.log_softmax(old(inp, real, positions_of(real))[0].double(), -1)      # (B, T-1, V)
        lp_new = torch.log_softmax(tr.model(inp, real, positions_of(real))[0].double(), -1)
    at = ro.resp > 0                                   # the response positions of the rollout
    actions = list(range(tasks.DIGITS)) + [tasks.EOS]  # the policy's support (-1e9 logits elsewhere: p = 0)
    lo, ln = lp_old[at][:, actions], lp_new[at][:, actions]                                 # (N, 11)
    sampled = ro.seq[:, 1:][at]
    # these are π_old's distributions at the rollout's positions: the sampled tokens' log-probs match the record
    assert torch.allclose(lp_old[at].gather(-1, sampled.unsqueeze(-1)).squeeze(-1), ro.logp_old[at].double(),
                          atol=1e-5)
    p_old = lo.exp()
    assert torch.allclose(p_old.sum(-1), torch.ones(len(p_old), dtype=torch.float64), atol=1e-12)
    exact = (p_old * (lo - ln)).sum(-1)                                                     # (N,)
    assert exact.mean() > 1e-3                         # the policy moved: the identity below is not 0 = 0
    # k3 of every vocabulary entry at every position, through metrics.kl_old_new on one token at a time
    one = torch.ones(1, 1, dtype=torch.bool)
    k3 = torch.tensor([[M.kl_old_new(ln[n, v].view(1, 1), lo[n, v].view(1, 1), one) for v in range(len(actions))]
                       for n in range(len(lo))], dtype=torch.float64)
    assert torch.allclose((p_old * k3).sum(-1), exact, rtol=1e-9, atol=1e-12)
    wrong = (p_old * kl_estimate(ln, lo, "k3")).sum(-1)          # the old kl_estimate(logp, logp_old, "k3")
    assert (wrong - exact).abs().max() > 1e-3
    # and the trainer reports metrics.kl_old_new on the tensors it updated with (not the wrong-way estimate)
    valid = t["loss_mask"] > 0
    assert m["kl_old_new"] == M.kl_old_new(t["logp"], t["logp_old"], valid)
    assert m["kl_old_new"] != pytest.approx(float(kl_estimate(t["logp"], t["logp_old"], "k3")[valid].mean()),
                                            rel=1e-3)


@pytest.mark.parametrize("objective,changes", [
    ("dual_clip", dict(lr=2e-2, dual_clip_c=1.001)),   # c barely above 1, a large lr: tokens get held at c·A
    ("gspo", {}),                                       # ε = 3e-4/4e-4 on s_i: the later minibatches clip
])
def test_the_trainers_metrics_are_the_explain_paths_definitions(objective, changes, monkeypatch):
    tr = Trainer(TrainConfig(objective=objective, seed=2, **changes))
    tr.step()
    tr.step()
    m, t = _recorded_step(tr, monkeypatch)
    ex = explain(objective, t["logp"], t["logp_old"], t["adv"], t["mask"], tr.settings, loss_mask=t["loss_mask"])
    valid = t["loss_mask"] > 0
    assert 0 < m["clip_fraction"] < 1                   # something was clipped, so the comparisons can fail
    for key in ("clip_fraction", "clip_fraction_upper", "clip_fraction_lower", "clip_fraction_dual"):
        assert m[key] == pytest.approx(ex.metrics[key], abs=1e-12), key
    if "dual" in OBJECTIVES[objective].marks:
        assert m["clip_fraction_dual"] > 0
    assert m["seq_clip_fraction"] == M.seq_clip_fraction(ex.clip, valid)
    if OBJECTIVES[objective].level == "sequence":      # the explain path reports it for sequence-level objectives
        assert m["seq_clip_fraction"] == ex.metrics["seq_clip_fraction"]
    first = t["first"]
    assert m["first_minibatch_clip_fraction"] == M.clip_fractions(ex.clip[:first], valid[:first])["clip_fraction"]
    # the spread of log π_θ/π_old is the population std (÷ N), as the explain path's; with N ≈ 100–400 tokens the
    # sample std (÷ (N − 1)) is larger by √(N/(N−1)) ≈ 1 + 1/(2N), i.e. by more than 1e-3 relative
    d = (t["logp"] - t["logp_old"])[valid].double()
    N = d.numel()
    population = float(((d - d.mean()) ** 2).sum() / N) ** 0.5
    assert m["log_ratio_std"] == pytest.approx(ex.metrics["log_ratio_std"], rel=1e-5)
    assert m["log_ratio_std"] == pytest.approx(population, rel=1e-5)
    assert m["log_ratio_std"] != pytest.approx(population * (N / (N - 1)) ** 0.5, rel=1e-5)
    assert m["kl_old_new"] == pytest.approx(M.kl_old_new(ex.token_ratio.log(), torch.zeros_like(ex.token_ratio),
                                                         valid), rel=1e-5)


# ------------------------------------------------------------------------------------------------- DAPO and Dr.GRPO
def _fake_rollout(rewards, lengths, T=4):
    """A rollout with given task rewards and response lengths (the advantages read nothing else)."""
    B = len(rewards)
    resp = (torch.arange(T).expand(B, T) < torch.tensor(lengths).unsqueeze(-1)).float()
    zeros = torch.zeros(B, T)
    return Rollout(seq=torch.zeros(B, T + 1, dtype=torch.long), real=torch.ones(B, T + 1, dtype=torch.bool), resp=resp,
                   logp_old=zeros, experts=None, rewards=torch.tensor(rewards), exact=torch.tensor(rewards) == 1,
                   truncated=torch.zeros(B, dtype=torch.bool), lengths=torch.tensor(lengths), digits=[[0]] * B)


def test_dynamic_sampling_decides_on_the_task_reward_not_the_shaped_one():
    # max_digits 3: the budget is max_new = 4 tokens; L_cache = 2, so the punishment starts after 4 − 2 = 2 tokens:
    #   length 2 → 0, length 3 → (2 − 3)/2 = −0.5, length 4 → −1   (DAPO eq. 13)
    cfg = TrainConfig(prompts=2, group=4, max_digits=3, dynamic_sampling=True, overlong_cache=2)
    tr = Trainer(cfg)
    # group 0: all four answers right (task reward 1), lengths 2, 3, 4, 2 → shaped 1, 0.5, 0, 1: the shaped rewards
    # differ, but #correct = G, so DAPO eq. 11 drops the group
    # group 1: rewards 1, 0, 1, 0, lengths 2, 2, 3, 2 → shaped 1, 0, 0.5, 0: kept
    ro = _fake_rollout([1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0], [2, 3, 4, 2, 2, 2, 3, 2])
    adv, mask, no_signal = tr.advantages(ro)
    assert no_signal.tolist() == [True, False]
    assert mask[:4].sum() == 0 and torch.equal(mask[4:], ro.resp[4:])
    # the kept group's advantages come from the shaped rewards: mean 0.375, sample std √(0.6875/3) = 0.478714,
    # A_1 = 0.625/0.478714 = 1.30558 (the task rewards alone would give ±0.866)
    assert adv[4].item() == pytest.approx(1.30558, abs=1e-5)
    assert torch.allclose(adv[4:].double(), group_advantages(torch.tensor([1.0, 0.0, 0.5, 0.0], dtype=torch.float64))[0],
                          atol=1e-6)
    # without dynamic sampling the all-right group keeps its length-shaped advantages: shaped 1, 0.5, 0, 1 → mean
    # 0.625, deviations 0.375, −0.125, −0.625, 0.375, sample std √(0.6875/3) = 0.478714
    adv, mask, _ = Trainer(cfg.with_(dynamic_sampling=False)).advantages(ro)
    assert torch.equal(mask, ro.resp)
    assert adv[:4].tolist() == pytest.approx([0.78334, -0.26111, -1.30558, 0.78334], abs=1e-5)


def test_dr_grpo_divides_by_the_generation_budget_and_filtered_answers_still_exist(monkeypatch):
    import gspo_viz.toy.train as train
    cfg = TrainConfig(objective="dr_grpo", seed=0, overlong_filter=True, minibatches=16)  # max_new = 3 + 1
    assert cfg.settings().max_tokens == cfg.max_new == 4
    for name in ("grpo", "gspo", "dual_clip", "dapo"):                          # the others read no max_tokens
        assert "max_tokens" not in OBJECTIVES[name].knobs and cfg.with_(objective=name).settings().max_tokens is None
    tr = Trainer(cfg)
    order_gen = torch.Generator()
    order_gen.set_state(tr.shuffle_gen.get_state())
    calls = []
    real = train.objective_loss

    def recording(*a, **k):
        out = real(*a, **k)
        calls.append((a, k, float(out.detach())))
        return out

    monkeypatch.setattr(train, "objective_loss", recording)
    tr.step()
    ro = tr.last_rollout
    keep = (~ro.truncated).float().unsqueeze(-1)
    assert 0 < keep.sum() < len(keep)                  # the filter took some answers out of the loss, not all
    chunks = [c for c in torch.randperm(len(keep), generator=order_gen).chunk(cfg.minibatches)
              if (ro.resp[c] * keep[c]).sum() > 0]
    assert len(calls) == len(chunks)
    filtered_somewhere = shorter_somewhere = False
    for idx, ((name, logp, logp_old, adv, mask, settings, ref), kw, loss) in zip(chunks, calls):
        part = kw["loss_mask"]
        assert torch.equal(mask, ro.resp[idx])          # the existence mask: filtered answers still exist
        assert torch.equal(part, ro.resp[idx] * keep[idx])     # the loss mask: without the truncated answers
        filtered_somewhere |= bool((part.sum(-1) == 0).any())
        # where the answers taking part are all shorter than 4, an L_max read from them (the old code passed the loss
        # mask as the mask) would give another loss
        shorter_somewhere |= int(part.sum(-1).max()) < 4 and abs(loss) > 1e-6
        assert settings.max_tokens == 4
        # Dr.GRPO by hand: −(1/(n·L_max)) Σ_i Σ_t min(r·A, clip(r, 0.8, 1.2)·A) over the n answers that take part,
        # with L_max = 4 whatever the lengths in this minibatch
        r = (logp.detach() - logp_old).exp()
        A = adv.unsqueeze(-1)
        term = torch.minimum(r * A, r.clamp(0.8, 1.2) * A)
        n = int((part.sum(-1) > 0).sum())
        assert loss == pytest.approx(-float((term * part).sum()) / (n * 4), rel=1e-5, abs=1e-8)
    assert filtered_somewhere and shorter_somewhere


def test_identical_curves_are_explained_by_a_mark_one_objective_has_and_has_not_used():
    from gspo_viz.toy.session import Run, summary_lines

    def run(label, objective, dual=0.0, rewards=(0.1, 0.2, 0.3)):
        r = Run(label, Trainer(TrainConfig(objective=objective)))
        r.trainer.history = [{"step": k + 1, "reward": x, "accuracy": 0.0, "clip_fraction": 0.0,
                              "clip_fraction_upper": 0.0, "clip_fraction_lower": 0.0, "clip_fraction_dual": dual,
                              "expert_change_fraction": math.nan} for k, x in enumerate(rewards)]
        return r

    def said(runs):
        return " ".join(summary_lines(runs))

    legend = OBJECTIVES["dual_clip"].marks["dual"]
    # Dual-Clip has the "dual" mark GRPO lacks; its reason quotes c (the run's c = 3): "exceeded c = 3 with A < 0"
    text = said([run("A", "grpo"), run("B", "dual_clip")])
    assert ("B's curves lie exactly on A's so far (the same value in every panel both are drawn in, at each of the 3 "
            "steps both have run)") in text
    assert (f"Dual-Clip PPO has a mark GRPO lacks, for a token that exceeded c = 3 with A < 0 ({legend}), and no "
            "token has reached that yet.") in text
    # the same, whichever run comes first
    assert "Dual-Clip PPO has a mark GRPO lacks" in said([run("B", "dual_clip"), run("A", "grpo")])
    # once a token got the mark (clip_fraction_dual > 0 at a step), "no token has reached that yet" would be false:
    # the sentence says where a token first got it instead
    text = said([run("A", "grpo"), run("B", "dual_clip", dual=0.01)])
    assert "lie exactly" in text and "no token has reached" not in text
    assert "(✕ A < 0 and the ratio is above c: the term is held at c·A, policy gradient 0), and B's tokens first got " \
           "it at step 1." in text
    # the same marks (GRPO and DAPO both have upper and lower): no reason is given
    assert "has a mark" not in said([run("A", "grpo"), run("B", "dapo")])
    # equal up to step 2, then different: the hidden stretch is named (the old sentence then said nothing)
    text = said([run("A", "grpo"), run("B", "dual_clip", rewards=(0.1, 0.2, 0.4))])
    assert "so far" not in text
    assert ("Up to step 2, B's curves lie exactly on A's (the same value in every panel both are drawn in, at each of "
            "those 2 steps) and hide A's lines; from step 3 they differ.") in text
    # different from the first step: no sentence at all
    assert "lie exactly" not in said([run("A", "grpo"), run("B", "dual_clip", rewards=(0.5, 0.2, 0.3))])


def test_a_group_opened_in_the_token_lab_gets_the_trainers_advantages_and_masks():
    # the scenario carries what the run trains with (L_max = the budget, dynamic sampling, the overlong filter and
    # punishment), so the Token Lab recomputes this group's advantages and loss mask as the trainer did
    from gspo_viz.scenarios import parse_scenario, run_scenario
    from gspo_viz.toy.session import Run, group_scenario
    cfg = TrainConfig(objective="dr_grpo", seed=0, min_digits=1, dynamic_sampling=True, overlong_filter=True,
                      overlong_cache=2)
    tr = Trainer(cfg)
    tr.step()
    run = Run("Dr.GRPO", tr)
    adv, mask, no_signal = tr.advantages(tr.last_rollout)
    G = cfg.group
    assert no_signal.any() and not no_signal.all()      # groups both dropped and kept, so both cases are compared
    for p in range(cfg.prompts):
        sc = group_scenario(run, p)
        assert sc["settings"]["max_tokens"] == cfg.max_new
        res = run_scenario(parse_scenario(sc))
        rows = slice(p * G, (p + 1) * G)
        assert res.dropped == bool(no_signal[p])
        assert res.advantages.tolist() == pytest.approx(adv[rows].tolist(), abs=1e-6)
        out = [i for i in range(G) if mask[rows][i].sum() == 0]           # the answers out of the trainer's loss
        assert sorted(res.masked) == out


def test_a_bf16_rollout_is_a_real_mismatch_and_rollout_correction_weighs_it():
    """Sampling under bf16 autocast while the trainer recomputes π_old in float32 (issue 11): the gap
    |log π_old − log π_rollout| is 0 with a float32 rollout and small but not 0 in bf16; rollout correction's weights
    then differ from 1, so the run's numbers change; the MoE's rollout routes differ from the trainer's for a few
    tokens, and the panels appear only for the runs that have them."""
    from gspo_viz.toy.session import Run, panel_specs
    fp32 = Trainer(TrainConfig(objective="grpo", minibatches=2))
    bf16 = Trainer(TrainConfig(objective="grpo", minibatches=2, rollout_dtype="bfloat16"))
    corrected = Trainer(TrainConfig(objective="grpo", minibatches=2, rollout_dtype="bfloat16",
                                    rollout_is="token", rollout_is_threshold=1.0005))
    a, b, c = fp32.step(), bf16.step(), corrected.step()
    assert a["rollout_logp_gap"] == 0.0 and 0 < b["rollout_logp_gap"] < 0.05
    assert 0 < c["rollout_truncated_fraction"] < 1            # weights above 1.0005 were truncated, others not
    assert b["no_signal_fraction"] < 1                          # a learning signal, so the weights matter:
    assert not torch.equal(bf16._flat, corrected._flat)         # the corrected update moved the policy elsewhere
    moe = Trainer(TrainConfig(objective="grpo", minibatches=2, moe=True, routing_replay=True,
                              rollout_dtype="bfloat16"))
    for _ in range(2):
        m = moe.step()
    assert m["rollout_route_mismatch"] > 0 and m["expert_change_fraction"] == 0.0   # R3: the rollout's routes
    keys = [p.key for p in panel_specs([Run("fp32", fp32), Run("bf16", bf16)])]
    assert "rollout_logp_gap" in keys and "rollout_route_mismatch" not in keys
    with pytest.raises(TrainConfigError, match="replay_routes"):
        TrainConfig(moe=True, routing_replay=True, replay_routes="old")          # R2 = R3 without a bf16 rollout
    with pytest.raises(TrainConfigError, match="one per response"):
        TrainConfig(objective="gspo", rollout_dtype="bfloat16", rollout_is="token")
