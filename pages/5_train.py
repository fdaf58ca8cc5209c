"""Train: a toy policy trained live by the core's objectives, several objectives side by side from the same seed.

Layout only: the model, the training and every number come from gspo_viz.toy."""
import dataclasses
import json

import streamlit as st

from gspo_viz.core.objectives import NAMES, OBJECTIVES
from gspo_viz.scenarios import ScenarioError, parse_scenario, run_scenario
from gspo_viz.toy import scheduler
from gspo_viz.toy.session import (MAX_RUNS, PRESETS, Background, averaged_rows, make_runs, metrics_frame, panels,
                                   samples as sample_view, steps_per_second, summary_lines)
from gspo_viz.toy.train import HISTORY_RECENT, TrainConfig, TrainConfigError
from gspo_viz.ui.sessions import keep_while_open
from gspo_viz.ui.state import control, require_app, set_scenario, slider
from gspo_viz.ui.widgets import PLOT_ARGS
from gspo_viz.views.plots import comparison_maps, heatmap_height
from gspo_viz.views.training import training_figure

require_app()
ss = st.session_state
D = TrainConfig()                                   # the defaults every control starts from
st.title("Train")
st.caption("A tiny transformer learns to sort (or reverse) digits, trained by the same objective code as the other "
           "pages. Runs start from the same seed, the same weights and the same prompts, so they differ only by "
           "their objective. Each step samples P prompts × G answers, then updates in μ minibatches: the later "
           "minibatches are off-policy, so clipping really acts.")

# ------------------------------------------------------------------------------------------------ settings
preset = control("tr_preset", lambda v, k: st.selectbox("Training preset", ["(your own)"] + list(PRESETS),
                                                        index=(["(your own)"] + list(PRESETS)).index(v), key=k),
                 "GRPO vs GSPO vs Dual-Clip on sort")
fixed = PRESETS[preset]["base"] if preset != "(your own)" else {}     # what the preset sets (shown, greyed out)
if preset != "(your own)":
    st.caption(f"{PRESETS[preset]['about']} The preset sets the greyed-out settings and each run's objective"
               f"{' and Routing Replay' if fixed.get('moe') else ''}; the other settings below apply.")
BY_PRESET = "Set by the training preset; choose '(your own)' to change it."
c1, c2, c3, c4 = st.columns(4)
if "task" in fixed:
    task = c1.selectbox("Task", [fixed["task"]], disabled=True, key="tr_task_fixed", help=BY_PRESET)
else:
    task = control("tr_task", lambda v, k: c1.selectbox("Task", ["sort", "reverse"],
                                                        index=["sort", "reverse"].index(v), key=k), D.task)
if "moe" in fixed:
    moe = c2.toggle("MoE (4 experts, top-1)", value=fixed["moe"], disabled=True, key="tr_moe_fixed", help=BY_PRESET)
    replay = c3.toggle("Routing Replay", value=False, disabled=True, key="tr_replay_fixed",
                       help="Set per run by the training preset (see the runs' names)." if fixed["moe"] else
                       BY_PRESET)
else:
    moe = control("tr_moe", lambda v, k: c2.toggle("MoE (4 experts, top-1)", value=v, key=k), False)
    replay = control("tr_replay", lambda v, k: c3.toggle("Routing Replay", value=v, key=k, disabled=not moe), False)
reward = control("tr_reward", lambda v, k: c4.selectbox("Reward", ["partial", "exact"],
                                                        index=["partial", "exact"].index(v), key=k), D.reward)
objectives = control("tr_objectives", lambda v, k: st.multiselect(
    f"Objectives (your own runs, 1 to {MAX_RUNS})", list(NAMES), default=v, key=k, max_selections=MAX_RUNS,
    format_func=lambda n: OBJECTIVES[n].title, disabled=preset != "(your own)"), ["grpo", "gspo", "dual_clip"])
k1, k2, k3, k4, k5, k6 = st.columns(6)
lr = control("tr_lr", lambda v, k: k1.number_input("lr", 1e-4, 1.0, v, format="%.4f", key=k), D.lr)
P = control("tr_P", lambda v, k: k2.number_input("P prompts", 1, 64, v, key=k), D.prompts)
G = control("tr_G", lambda v, k: k3.number_input("G answers", 1, 32, v, key=k), D.group)
mu = control("tr_mu", lambda v, k: k4.number_input("μ minibatches", 1, 4096, v, key=k), D.minibatches)
c = control("tr_c", lambda v, k: k5.number_input("Dual-Clip c", 0.5, 20.0, v, step=0.5, key=k), D.dual_clip_c)
beta = control("tr_beta", lambda v, k: k6.number_input("β (KL)", 0.0, 1.0, v, step=0.01, key=k), D.beta)
d1, d2, d3 = st.columns(3)
digits = control("tr_digits", lambda v, k: slider(d1, "digits per prompt", 1, 8, tuple(v), key=k),
                 [D.min_digits, D.max_digits])
seed = control("tr_seed", lambda v, k: d2.number_input("seed", 0, 10_000, v, key=k), D.seed)
own_eps = control("tr_own_eps", lambda v, k: d3.toggle("each objective uses its paper's ε", value=v, key=k), True)
eps_low = eps_high = None                           # None: each objective's default (Settings.resolved)
if not own_eps:
    e1, e2 = d3.columns(2)
    eps_low = control("tr_eps_low", lambda v, k: e1.number_input("ε_low", 0.0, 0.9, v, step=0.01, format="%.4f",
                                                                 key=k), 0.2)
    eps_high = control("tr_eps_high", lambda v, k: e2.number_input("ε_high", 0.0, 10.0, v, step=0.01,
                                                                   format="%.4f", key=k), 0.2)

m1, m2, m3 = st.columns(3)         # the rollout engine's numbers are not the trainer's (issue 11: mismatch)
BF16_HELP = ("Sample under bf16 autocast while the trainer recomputes π_old in float32: a real rollout/trainer "
             "mismatch (π_rollout ≠ π_old, and with the MoE some routes). The curves then show the gap, mean "
             "|log π_old − log π_rollout|.")
if "rollout_dtype" in fixed:
    bf16 = m1.toggle("Rollouts in bfloat16", value=fixed["rollout_dtype"] == "bfloat16", disabled=True,
                     key="tr_bf16_fixed", help=BY_PRESET)
else:
    bf16 = control("tr_bf16", lambda v, k: m1.toggle("Rollouts in bfloat16", value=v, key=k, help=BF16_HELP), False)
rc_level = control("tr_rc", lambda v, k: m2.selectbox(
    "Rollout correction", [None, "token", "sequence"], index=[None, "token", "sequence"].index(v), key=k,
    disabled=not bf16, format_func=lambda x: "off" if x is None else f"{x} level, truncated at 2",
    help="Weight each token's term by π_old/π_rollout, truncated at C = 2 (verl's rollout_is)"), None)
routes = control("tr_routes", lambda v, k: m3.selectbox(
    "Routing Replay replays", ["rollout", "old"], index=["rollout", "old"].index(v), key=k,
    disabled=not (bf16 and moe and replay),
    format_func={"rollout": "the rollout's routes (R3)", "old": "the trainer's old routes (R2)"}.get,
    help="With a bf16 rollout the engine's routes differ from the trainer's recomputation of π_old's"), "rollout")
try:
    base = TrainConfig(task=task, reward=reward, moe=moe, routing_replay=replay and moe, lr=float(lr), prompts=int(P),
                       group=int(G), minibatches=int(mu), dual_clip_c=float(c), beta=float(beta),
                       min_digits=int(digits[0]), max_digits=int(digits[1]), seed=int(seed),
                       eps_low=eps_low, eps_high=eps_high, rollout_dtype="bfloat16" if bf16 else "float32",
                       rollout_is=rc_level if bf16 else None,
                       replay_routes=routes if (bf16 and moe and replay) else "rollout")
    if preset != "(your own)":
        specs = [(label, PRESETS[preset]["base"] | over) for label, over in PRESETS[preset]["runs"]]
    else:
        specs = [(OBJECTIVES[n].title, {"objective": n}) for n in objectives]
    configs = [base.with_(**over) for _, over in specs]
    error = None if specs else "choose at least one objective"
except TrainConfigError as e:
    specs, configs, error = [], [], str(e)
if error:
    st.error(f"These settings cannot train: {error}.", icon=":material/error:")

# ------------------------------------------------------------------------------------------------ controls
# The runs train on the server's shared scheduler (gspo_viz/toy/scheduler.py): a few training slots for every viewer,
# the other sessions wait in line and take turns. This session's runs live in ss.train_bg; the page only draws.
ss.setdefault("train_bg", None)
if ss.train_bg is not None and ss.train_bg.released:   # never seen by a page in practice: its session was gone
    ss.train_bg = None
bg = ss.train_bg
if bg is not None:
    bg.beat()                                       # the page is watching (back after a quiet spell: rejoin the line)
stale = bg is not None and [r.trainer.cfg for r in bg.runs] != configs


def fresh_runs() -> Background:
    if ss.train_bg is not None:
        ss.train_bg.pause()
    ss.train_bg = Background(make_runs(base, specs))
    keep_while_open(ss.train_bg)                    # its trainers are let go when this tab is closed for good
    return ss.train_bg


b1, b2, b3, b4 = st.columns(4)
running = bg is not None and bg.running
if b1.button("Start", icon=":material/play_arrow:", disabled=bool(error) or running):
    bg = fresh_runs() if bg is None or stale else bg
    bg.start()
    st.rerun()  # redraw the buttons (Pause enabled) and switch the charts to live refresh
if b2.button("Pause", icon=":material/pause:", disabled=not running):
    bg.pause()
    st.rerun()
if b3.button("Single step", icon=":material/skip_next:", disabled=bool(error)):
    bg = fresh_runs() if bg is None or stale else bg
    bg.step_once()
if b4.button("Reset", icon=":material/restart_alt:", disabled=bool(error)):
    bg = fresh_runs()
    st.rerun()
if stale and not error:
    st.info("The settings changed since these runs started: Reset (or Start) to train with them.",
            icon=":material/info:")
if scheduler.shared_note():
    st.warning(f"Training slots: {scheduler.shared_note()}", icon=":material/warning:")
status = bg.status() if bg is not None else None
state = status.state if status is not None else "idle"
running = state != "idle"
ss.train_state_seen = state                         # what this full run drew; a fragment reruns the page on a change


def ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def sessions(n: int) -> str:
    return f"{n} session{'s' if n != 1 else ''}"


def follow(bg: Background) -> None:
    """Heartbeat; a full rerun when this session started or stopped training or waiting (buttons, refresh rate)."""
    bg.beat()
    if bg.status().state != ss.train_state_seen:
        st.rerun()


@st.fragment(run_every=1.0 if running else None)
def line():
    """Where this session stands on the server: training, its place in line, or paused."""
    bg = ss.train_bg
    if bg is None:
        return
    follow(bg)
    s = bg.status()
    turns = f"The server trains {sessions(s.slots)} at a time, in turns of {scheduler.TURN_SECONDS:.0f} s."
    if s.state == "waiting":
        st.info(f"Waiting: {ordinal(s.place)} in line; {sessions(s.training)} "
                f"{'is' if s.training == 1 else 'are'} training. {turns}", icon=":material/hourglass_top:")
    elif s.state == "training":
        others = (f" {sessions(s.waiting)} waiting: this one yields its slot after its turn and rejoins the line."
                  if s.waiting else "")
        where = "the server's training slot" if s.slots == 1 else f"one of the server's {s.slots} training slots"
        st.caption(f"Training on {where}.{others}")
    elif s.reason and s.reason.startswith("error"):
        st.error(f"Training stopped: {s.reason}", icon=":material/error:")


line()

LINE_STYLES = ("solid", "dash", "dot", "dashdot")


def csv_note(merged: int, widest: int) -> str:
    return (f"The CSV below has one row per step for each run's last {HISTORY_RECENT} steps; to bound memory, older "
            f"steps are averaged: {merged} rows average up to {widest} consecutive steps each (column "
            "steps_averaged).")


@st.fragment(run_every=0.25 if state == "training" else None)
def live():
    bg = ss.train_bg
    if bg is None:
        st.info("Press Start or Single step to train.", icon=":material/model_training:")
        return
    follow(bg)
    runs = bg.runs
    for r in runs:
        if r.error:
            st.error(f"{r.label} stopped: {r.error}", icon=":material/error:")
    steps = sum(r.trainer.step_count for r in runs)
    doing = {"training": "Training", "waiting": "Waiting for a slot"}.get(ss.train_state_seen, "Paused")
    st.caption(f"{doing}: {steps} steps in all ({max(r.trainer.step_count for r in runs)} per run), "
               f"{steps_per_second(runs):.1f} steps/s while training.")
    colors, dashes, seen = {}, {}, {}
    for r in runs:                                 # the objective's colour and dash; its later runs, the other dashes
        obj = OBJECTIVES[r.objective]
        colors[r.label] = obj.color
        seen[r.objective] = seen.get(r.objective, -1) + 1
        styles = (obj.dash,) + tuple(d for d in LINE_STYLES if d != obj.dash)
        dashes[r.label] = styles[seen[r.objective] % len(styles)]
    drawn, every = panels(runs)                    # each panel with its help line (what the curve measures)
    st.plotly_chart(training_figure(drawn, colors, dashes), key="curves", **PLOT_ARGS)
    merged, widest = averaged_rows(runs)
    if every > 1:
        st.caption(f"Each point is the mean of {every} consecutive steps, so long runs stay quick to draw. "
                   + ("The CSV below has every step." if not merged else csv_note(merged, widest)))
    st.markdown("\n".join(f"- {line}" for line in summary_lines(runs)))


live()

# ------------------------------------------------------------------------------------------------ samples
SAMPLES_EVERY = 2.0     # seconds between the sample viewer's refreshes while training


def open_in_lab(scenario: dict, names: list[str]) -> None:
    """The button's callback: the group the viewer showed when it was clicked (not a later step's) becomes the
    scenario, compared under the runs' objectives; the viewer then switches to the Token Lab."""
    set_scenario(scenario)
    ss.ctl["cmp"] = names
    ss.tr_open_lab = True


@st.fragment(run_every=SAMPLES_EVERY if state == "training" else None)
def samples() -> None:
    """The sample viewer: one prompt's G answers at the runs' latest step, refreshed with the training. A function
    (its names, the runs and one run's answers, are not globals of the page: the fragments keep those globals as long
    as the server keeps the session, and the runs must go when their tab has closed for good, toy/lifetime.py) and a
    fragment that reads the runs from the session at each refresh."""
    if ss.pop("tr_open_lab", False):
        st.switch_page("pages/1_token_lab.py")
    bg = ss.train_bg
    runs = bg.runs if bg is not None else None
    if not runs or all(r.trainer.last_rollout is None for r in runs):
        return
    # The heading first, from the widgets' session-state values (set here before the widgets below are drawn): no
    # placeholder that a refresh would blank. Only the person sets the toggle; the prompt box is set from here only
    # while it follows (and is then disabled): a value set from here in a box the person can edit races with the
    # refreshes' widget states.
    labels = [r.label for r in runs]
    if ss.get("tr_view_run") not in labels:
        ss.tr_view_run = labels[0]
    run = runs[labels.index(ss.tr_view_run)]
    with bg.lock:                                  # one step's numbers: the thread does not update meanwhile
        view = sample_view(run)
    if view is None:
        st.info(f"{run.label} has no answers to show yet.")
        return
    ss.setdefault("tr_view_follow", True)
    if ss.tr_view_follow:
        ss.tr_view_prompt = view.first_signal + 1  # prompts are counted from 1; the box starts here if turned off
        prompt = ss.tr_view_prompt - 1
    else:                                          # the box starts at the prompt last followed
        ss.tr_view_prompt = min(max(int(ss.get("tr_view_prompt", 1)), 1), view.prompts)
        prompt = ss.tr_view_prompt - 1
    st.subheader(f"Sample viewer: {view.label}'s answers to prompt {prompt + 1} at step {view.step}")
    st.caption(f"Step {view.step} is {view.label}'s latest step when drawn"
               + (f"; the viewer refreshes every {SAMPLES_EVERY:g} s while training (pause to study one step)."
                  if ss.train_state_seen == "training" else "."))
    s1, s2, s3 = st.columns([2, 1, 2])
    s1.selectbox("Run", labels, key="tr_view_run")
    following = s3.toggle("Show a prompt with a signal", key="tr_view_follow",
                          help="On: at each step, the first prompt whose answers carry a learning signal. Off: "
                               "choose the prompt yourself.")
    if following:   # text, not a disabled box: a box set from refreshes showed an older prompt than the heading
        s2.markdown(f"Prompt **{prompt + 1}**", help="Turn off 'Show a prompt with a signal' to choose one.")
    else:
        s2.number_input("Prompt", 1, view.prompts, key="tr_view_prompt")
    signal = (f"Prompts with a learning signal at step {view.step} (an answer with an advantage other than 0 takes "
              "part in the loss; the others teach nothing this step): "
              f"{', '.join(str(p + 1) for p in view.signal) if view.signal else 'none'}.")
    if prompt in view.quiet:                       # one element either way: a refresh then replaces it in place
        st.info(f"Prompt {prompt + 1} has no learning signal at step {view.step}: {view.quiet[prompt]}. {signal}",
                icon=":material/block:")
    else:
        st.caption(signal)
    scenario = view.scenario(prompt)             # built outside the lock: the rollout does not change
    if not scenario["responses"]:
        st.info("No answers to show for this prompt.")
        return
    st.markdown(f"**{scenario['title']}**")
    names = list(dict.fromkeys(r.objective for r in runs))
    parsed = parse_scenario(scenario)
    results = []
    for name in names:
        try:
            results.append(run_scenario(parsed, name))
        except ScenarioError as e:
            st.warning(f"{OBJECTIVES[name].title}: {e}")
    if results:                                    # the Token Lab's maps: one figure, one colour scale
        if len(results) > 1:
            st.caption(f"A map per objective, all on {view.label}'s answers: the same tokens and ratios, scored by "
                       f"each run's objective ({', '.join(OBJECTIVES[r.explanation.objective].title for r in results)}"
                       ") with its own clip rule. The other runs sampled answers of their own, not shown here.")
        ratio_maps, _ = comparison_maps(results, heatmap_height(len(parsed.responses)))
        st.plotly_chart(ratio_maps, key="sample_maps", **PLOT_ARGS)
    st.button("Open this group in the Token Lab", icon=":material/open_in_new:", on_click=open_in_lab,
              args=(scenario, names), help=f"Opens prompt {prompt + 1} of step {view.step} as shown here.")


def downloads(bg) -> None:
    """The metrics and settings downloads, as of this full run of the page (a function: see samples)."""
    runs = bg.runs if bg is not None else None
    if not runs or all(r.trainer.last_rollout is None for r in runs):
        return
    frame = metrics_frame(runs)
    merged, widest = averaged_rows(runs)
    if merged:
        st.caption(csv_note(merged, widest))
    dl1, dl2 = st.columns(2)
    dl1.download_button("Download the metrics (CSV)", frame.to_csv(index=False, float_format="%.10g"),
                        file_name="train_metrics.csv", mime="text/csv", icon=":material/download:")
    settings = [{"label": r.label} | dataclasses.asdict(r.trainer.cfg) for r in runs]
    dl2.download_button("Download the settings (JSON)", json.dumps(settings, indent=1), file_name="train_settings.json",
                        mime="application/json", icon=":material/download:")


samples()
downloads(bg)
