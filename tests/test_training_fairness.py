"""Fair training for many viewers: the server-wide scheduler (gspo_viz/toy/scheduler.py) limits how many sessions
step at once, keeps a FIFO line with places, makes a session yield its slot after a turn, drops a session whose page
went quiet or was paused, and holds no thread when idle; a run's history is capped by averaging its older steps
exactly; the Train page tells a viewer their place in line.

Nothing here asserts a speed: the fake sessions record the order in which they stepped, and waits only wait."""
import math
import threading
import time
from fractions import Fraction

import pytest

from gspo_viz.toy import scheduler as sched
from gspo_viz.toy.scheduler import Job, Scheduler, configured_slots

WAIT = 30.0       # the longest any wait below may take before the test gives up (never reached when it passes)


def wait_for(condition, what, beating=()):
    """Wait until condition() holds; meanwhile the sessions in `beating` get their page's heartbeat."""
    deadline = time.monotonic() + WAIT
    while not (all(bg.beat() or True for bg in beating) and condition()):
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.005)


class Recorder:
    """A shared log of ("start"|"end", session) events and the most sessions inside a round at once."""

    def __init__(self, prefix=None):
        self.log, self.lock = [], threading.Lock()
        self.inside = self.most = self.most_workers = 0
        self.prefix = prefix                       # count the worker threads named so, from inside each round

    def starts(self):
        return [name for what, name in self.log if what == "start"]


class Fake(Job):
    """A session whose round records itself; it is finished after `rounds` rounds (None: never)."""

    def __init__(self, name, rec, rounds=None, gate=None, barrier=None, idle_stop=60.0):
        super().__init__(idle_stop)
        self.name, self.rec, self.rounds, self.gate, self.barrier, self.done = name, rec, rounds, gate, barrier, 0

    def round(self):
        if self.gate is not None and self.done == 0:
            assert self.gate.wait(WAIT)
        if self.barrier is not None and self.done == 0:
            self.barrier.wait(WAIT)                # raises (the job errors) unless another session steps meanwhile
        with self.rec.lock:
            self.rec.log.append(("start", self.name))
            self.rec.inside += 1
            self.rec.most = max(self.rec.most, self.rec.inside)
            if self.rec.prefix:
                alive = sum(t.name.startswith(self.rec.prefix) for t in threading.enumerate())
                self.rec.most_workers = max(self.rec.most_workers, alive)
        time.sleep(0.003)                          # a round takes a moment, so overlapping rounds would show
        with self.rec.lock:
            self.rec.inside -= 1
            self.rec.log.append(("end", self.name))
        self.done += 1

    @property
    def finished(self):
        return self.rounds is not None and self.done >= self.rounds


def test_slots_come_from_the_environment_or_the_cores():
    assert configured_slots({"GSPO_VIZ_TRAINING_SLOTS": "3"}) == 3
    assert configured_slots({}) == max(1, sched.usable_cores() - 1)
    for bad in ("0", "-2", "two", "1.5"):
        with pytest.raises(ValueError, match="GSPO_VIZ_TRAINING_SLOTS must be a whole number >= 1"):
            configured_slots({"GSPO_VIZ_TRAINING_SLOTS": bad})


def test_one_slot_steps_one_session_at_a_time_first_in_line_first_and_each_yields_after_its_turn():
    rec = Recorder()
    s = Scheduler(1, turn=0.0)                   # a turn of one round: a session yields whenever somebody waits
    gate = threading.Event()
    a, b, c = (Fake(n, rec, rounds=3, gate=gate if n == "A" else None) for n in "ABC")
    s.submit(a)
    wait_for(lambda: s.status(a).state == "training", "A to take the slot")
    s.submit(b)
    s.submit(c)
    sa, sb, sc = s.status(a), s.status(b), s.status(c)
    assert (sa.state, sa.training, sa.waiting) == ("training", 1, 2)
    assert (sb.state, sb.place) == ("waiting", 1) and (sc.state, sc.place) == ("waiting", 2)
    assert s.workers() == 1
    gate.set()
    assert s.join(WAIT)
    # first in line first; after each round the session goes to the back of the line behind those waiting
    assert rec.starts() == list("ABCABCABC")
    # never two rounds at once: every start is followed by its own end
    assert all(rec.log[2 * k][1] == rec.log[2 * k + 1][1] and rec.log[2 * k][0] == "start"
               for k in range(len(rec.log) // 2)) and rec.most == 1
    assert [j.reason for j in (a, b, c)] == ["finished"] * 3 and s.status(a).state == "idle"


def test_a_session_alone_keeps_its_slot_and_yields_once_somebody_waits():
    rec = Recorder()
    s = Scheduler(1, turn=0.0)
    a, b = Fake("A", rec), Fake("B", rec, rounds=1)
    s.submit(a)
    wait_for(lambda: a.done >= 3, "A to train alone")
    assert set(rec.starts()) == {"A"} and s.status(a).state == "training"   # nobody waits: no yield
    s.submit(b)
    wait_for(lambda: b.done == 1 and a.done >= 5, "B's turn, then A's again")
    first_b = rec.starts().index("B")
    assert rec.starts()[first_b + 1:] and set(rec.starts()[first_b + 1:]) == {"A"}   # A back after B's one round
    s.withdraw(a)
    assert s.join(WAIT)


def test_two_slots_step_two_sessions_at_once_never_three():
    prefix = "fair-two"
    rec = Recorder(prefix)
    s = Scheduler(2, turn=0.0, name=prefix)
    # each session's first round waits at a barrier for another session's: it passes only if two step at once
    barrier = threading.Barrier(2)
    jobs = [Fake(n, rec, rounds=3, barrier=barrier) for n in "ABCD"]
    for j in jobs:
        s.submit(j)
    assert s.workers() == 2                     # the line holds two; no third worker is started
    assert s.join(WAIT)
    assert [j.reason for j in jobs] == ["finished"] * 4 and all(j.done == 3 for j in jobs)
    assert rec.most == 2 and rec.most_workers == 2


def test_a_quiet_page_loses_its_place_in_line_and_frees_the_slot():
    rec = Recorder()
    s = Scheduler(1, turn=600.0)                 # long turns: only going quiet makes A leave
    a = Fake("A", rec, idle_stop=0.5)            # trains while its page beats, then goes quiet
    b = Fake("B", rec, idle_stop=0.5)            # waits in line, its page never beats again
    c = Fake("C", rec)                           # its page keeps beating
    s.submit(a)
    wait_for(lambda: s.status(a).state == "training", "A to take the slot")
    b.beat()
    s.submit(b)
    s.submit(c)
    assert (s.status(b).place, s.status(c).place) == (1, 2)
    wait_for(lambda: s.status(c).place == 1, "B to leave the line", beating=(a, c))
    assert s.status(b).state == "idle" and b.reason == "quiet" and b.done == 0
    assert s.status(a).state == "training"       # A's page beats: it keeps the slot
    wait_for(lambda: c.done >= 1, "C to get the slot once A's page is quiet", beating=(c,))
    assert s.status(a).state == "idle" and a.reason == "quiet" and a.done >= 1 and not s.running(a)
    st = s.status(c)
    assert (st.state, st.training, st.waiting) == ("training", 1, 0)
    s.withdraw(c)
    assert s.join(WAIT)


def test_pause_frees_the_slot_at_once_and_no_round_runs_after_it():
    rec = Recorder()
    s = Scheduler(1, turn=60.0)                  # a long turn: only the pause makes A leave
    a, b = Fake("A", rec), Fake("B", rec)
    s.submit(a)
    wait_for(lambda: a.done >= 1, "A to train")
    s.submit(b)
    assert s.status(b).place == 1
    s.withdraw(a)
    done = a.done
    assert a.reason == "paused" and s.status(a).state == "idle" and not s.running(a)
    wait_for(lambda: b.done >= 2, "B to take the freed slot")
    assert a.done == done                         # nothing of A ran after the pause returned
    s.submit(a)                                   # Start again: to the back of the line
    assert s.status(a).place == 1 and s.status(b).state == "training"
    s.withdraw(a)
    s.withdraw(b)
    assert s.join(WAIT) and s.workers() == 0


def test_a_single_step_waits_for_a_slot_ahead_of_the_line_runs_one_round_and_leaves():
    rec = Recorder()
    s = Scheduler(1, turn=0.0)
    gate = threading.Event()
    a, b, c = Fake("A", rec, gate=gate), Fake("B", rec), Fake("C", rec)
    s.submit(a)
    wait_for(lambda: s.status(a).state == "training", "A to take the slot")
    s.submit(c)
    result = []
    single = threading.Thread(target=lambda: result.append(s.run_once(b)))     # B's Single step button
    single.start()
    wait_for(lambda: s.status(b).state == "waiting", "B's single step to join the line")
    assert (s.status(b).place, s.status(c).place) == (1, 2)   # one round: ahead of the sessions waiting to train
    gate.set()
    single.join(WAIT)
    assert result == [True] and b.done == 1 and b.reason == "paused" and not s.running(b)
    wait_for(lambda: c.done >= 1 and a.done >= 2, "A and C to go on")
    assert rec.starts()[:3] == ["A", "B", "C"] and rec.starts().count("B") == 1 and rec.most == 1
    s.withdraw(a)
    s.withdraw(c)
    assert s.join(WAIT)


def test_real_sessions_train_in_turns_and_leave_no_thread_behind():
    from gspo_viz.toy.session import Background, make_runs
    from gspo_viz.toy.train import TrainConfig
    assert sched.shared().join(WAIT)               # sessions other tests left in the server's scheduler have left
    baseline = threading.active_count()
    s = Scheduler(1, turn=0.0, name="fair-real")
    small = TrainConfig(prompts=2, group=2, min_digits=1, max_digits=1, minibatches=1)
    sessions = [Background(make_runs(small.with_(seed=k), [("GRPO", {"objective": "grpo"}),
                                                           ("GSPO", {"objective": "gspo"})]), scheduler=s)
                for k in range(3)]
    for bg in sessions:
        bg.start()
    assert threading.active_count() <= baseline + 1
    wait_for(lambda: all(bg.runs[0].trainer.step_count >= 2 for bg in sessions), "every session", sessions)
    for bg in sessions:
        bg.pause()
        assert not bg.running
    counts = [[r.trainer.step_count for r in bg.runs] for bg in sessions]
    assert all(a == b for a, b in counts)          # a round steps every run of the session once
    assert s.join(WAIT)
    assert threading.active_count() == baseline    # an idle server holds no training thread
    assert not [t for t in threading.enumerate() if t.name.startswith("fair-real")]
    assert [[r.trainer.step_count for r in bg.runs] for bg in sessions] == counts


def test_one_round_steps_exactly_what_stepping_the_runs_alone_does():
    # the scheduler only decides who steps when: the numbers are those of the runs stepped alone, in order
    from gspo_viz.toy.session import Background, make_runs, train_for
    from gspo_viz.toy.train import TrainConfig
    small = TrainConfig(prompts=2, group=4, min_digits=1, max_digits=2, minibatches=2)
    specs = [("GRPO", {"objective": "grpo"}), ("GSPO", {"objective": "gspo"})]
    alone = make_runs(small, specs)
    train_for(alone, 1e9, max_steps=6)
    s = Scheduler(1, turn=0.0)
    other = Background(make_runs(small.with_(seed=9), specs), scheduler=s)
    bg = Background(make_runs(small, specs), scheduler=s)
    other.start()
    bg.start()
    wait_for(lambda: bg.runs[0].trainer.step_count >= 3, "three rounds", (bg, other))
    bg.pause()
    other.pause()
    assert s.join(WAIT)
    for a, b in zip(alone, bg.runs):
        n = b.trainer.step_count
        assert n >= 3
        for ma, mb in zip(a.trainer.history[:n], b.trainer.history, strict=True):
            for key in ma.keys() - {"step_time"}:
                assert ma[key] == mb[key] or (math.isnan(ma[key]) and math.isnan(mb[key])), (key, ma, mb)


# ---------------------------------------------------------------------------------------------- capped history
def exact_mean(values):
    return float(sum(Fraction(v) for v in values) / len(values))


def same(rows, others):
    """Equal rows, a NaN equal to a NaN."""
    return len(rows) == len(others) and all(
        a.keys() == b.keys() and all(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a)
        for a, b in zip(rows, others))


@pytest.mark.parametrize("recent,older", [(4, 4), (3, 2), (1, 6)])
def test_history_is_capped_and_each_row_is_the_exact_mean_of_its_steps(recent, older):
    from gspo_viz.toy.train import StepLog
    log = StepLog(recent, older)
    steps = []
    for s in range(1, 301):
        row = {"step": s, "reward": float(s % 7), "sq": float(s * s), "nan": math.nan}
        steps.append(row)
        rows = log.add(row)
        assert len(rows) <= recent + older + 1
        covered = [(m["step"] - m.get("steps", 1) + 1, m["step"]) for m in rows]
        assert covered[0][0] == 1 and covered[-1][1] == s               # every step, in order, no gap, no overlap
        assert all(b[0] == a[1] + 1 for a, b in zip(covered, covered[1:]))
        assert rows[-min(recent, s):] == steps[-min(recent, s):]         # the latest steps: one row each, unchanged
        if s <= recent + older:
            assert same(rows, steps)                                     # nothing averaged yet
        for m, (first, last) in zip(rows, covered):
            for key in ("reward", "sq"):
                assert m[key] == exact_mean([x[key] for x in steps[first - 1:last]]), (s, m)
            assert math.isnan(m["nan"])
    assert log.averaged and max(m.get("steps", 1) for m in rows) > 1


def test_a_trainers_history_averages_its_older_steps_and_the_page_helpers_count_them(monkeypatch):
    from gspo_viz.toy import train
    from gspo_viz.toy.session import Run, averaged_rows, curves, metrics_frame, steps_per_second, summary_lines
    monkeypatch.setattr(train, "HISTORY_RECENT", 3)
    monkeypatch.setattr(train, "HISTORY_OLDER", 2)
    tr = train.Trainer(train.TrainConfig(prompts=2, group=4, min_digits=1, max_digits=2, minibatches=2))
    every = [tr.step() for _ in range(13)]
    h = tr.history
    assert len(h) <= 3 + 2 + 1 and h[-3:] == every[-3:]
    for m in h:
        n = m.get("steps", 1)
        for key in ("reward", "clip_fraction", "step_time"):
            assert m[key] == pytest.approx(math.fsum(x[key] for x in every[m["step"] - n:m["step"]]) / n, rel=1e-12)
    run = Run("GRPO", tr)
    frame = metrics_frame([run])
    assert frame["steps_averaged"].sum() == 13 and list(frame["step"]) == [m["step"] for m in h]
    assert averaged_rows([run]) == (sum(m.get("steps", 1) > 1 for m in h), max(m.get("steps", 1) for m in h))
    assert steps_per_second([run]) == pytest.approx(13 / math.fsum(x["step_time"] for x in every), rel=1e-9)
    series, k = curves([run], "reward", max_points=4)          # 13 steps, 4 points: k = 4, a multiple of the width
    width = max(m.get("steps", 1) for m in h)
    assert k % width == 0 and k >= 4
    xs, ys = series["GRPO"]
    starts = [0] + xs[:-1]
    assert ys == pytest.approx([math.fsum(x["reward"] for x in every[a:b]) / (b - a) for a, b in zip(starts, xs)],
                               rel=1e-12)
    assert summary_lines([run])[0].startswith("GRPO: after 13 steps")


def test_the_summary_finds_a_collapse_and_tells_its_steps_in_an_averaged_history():
    import re
    from gspo_viz.toy import train
    from gspo_viz.toy.session import Run, summary_lines
    rewards = [0.9] * 40 + [0.5] * 12                        # 40 steps at 0.9, then 12 at 0.5
    log = train.StepLog(12, 4)                               # the last 12 steps one row each, the others averaged
    for k, x in enumerate(rewards):
        rows = log.add({"step": k + 1, "reward": x, "accuracy": 0.0, "clip_fraction": 0.0,
                        "expert_change_fraction": math.nan})
    assert any(m.get("steps", 1) > 1 for m in rows)
    run = Run("GRPO", train.Trainer(train.TrainConfig()))
    run.trainer.history = rows
    text = summary_lines([run])[0]
    assert "after 52 steps the mean reward is 0.500" in text and "(last 10 steps)" in text
    found = re.search(r"its reward fell from ([\d.]+) \((\d+) steps up to step (\d+)\)", text)
    assert found, text
    best, covered, at = float(found[1]), int(found[2]), int(found[3])
    assert covered >= 10 and best == 0.9 and sum(rewards[at - covered:at]) / covered == pytest.approx(0.9)


# ---------------------------------------------------------------------------------------------- the Train page
@pytest.mark.usefixtures("navigation_mode")
def test_the_train_page_tells_a_viewer_their_place_in_line(monkeypatch):
    from test_pages import TRAIN, click, open_page
    s = Scheduler(1, turn=600.0)              # one slot and long turns: whoever trains keeps the slot here
    monkeypatch.setattr(sched, "_shared", s)
    monkeypatch.setattr(Job, "idle_stop", 600.0)   # the pages' heartbeats: the AppTests do not run on a timer
    one, two, three = open_page(TRAIN), open_page(TRAIN), open_page(TRAIN)
    click(one, "Start")
    bg1 = one.session_state["train_bg"]
    wait_for(lambda: bg1.status().state == "training", "the first session to train")
    click(two, "Start")
    click(three, "Start")
    infos = lambda at: " ".join(i.value for i in at.info)  # noqa: E731
    assert "Waiting: 1st in line; 1 session is training." in infos(two)
    assert "Waiting: 2nd in line; 1 session is training." in infos(three)
    assert [b for b in three.button if b.label == "Pause"][0].disabled is False   # a waiting session can leave
    one.run()
    assert "Waiting" not in infos(one)
    assert any("Training on the server's training slot. 2 sessions waiting" in c.value for c in one.caption)
    click(one, "Pause")                                    # the slot goes to the first in line
    bg2 = two.session_state["train_bg"]
    wait_for(lambda: bg2.status().state == "training", "the second session to train")
    three.run()
    assert "Waiting: 1st in line; 1 session is training." in infos(three)
    click(three, "Pause")
    click(two, "Pause")
    assert s.join(WAIT)


@pytest.mark.usefixtures("navigation_mode")
def test_the_train_page_says_when_the_csv_averages_older_steps(monkeypatch):
    from gspo_viz.toy import train
    from test_pages import TRAIN, click, open_page
    monkeypatch.setattr(train, "HISTORY_RECENT", 2)
    monkeypatch.setattr(train, "HISTORY_OLDER", 2)
    at = open_page(TRAIN)
    click(at, "Single step")
    captions = lambda: " ".join(c.value for c in at.caption)  # noqa: E731
    assert "averaged" not in captions()
    for r in at.session_state["train_bg"].runs:
        for _ in range(5):
            r.trainer.step()
    at.run()
    assert "one row per step for each run's last 2 steps; to bound memory, older steps are averaged" in captions()
    frame_rows = sum(len(r.trainer.history) for r in at.session_state["train_bg"].runs)
    merged = sum(m.get("steps", 1) > 1 for r in at.session_state["train_bg"].runs for m in r.trainer.history)
    assert 0 < merged < frame_rows and f"{merged} rows average up to" in captions()


# ----------------------------------------------------------------------------------------------- page runs first
def test_a_round_waits_for_the_page_runs_in_progress():
    """While a viewer's page run is in progress no training round starts; when it ends, training goes on."""
    from gspo_viz.toy.foreground import Foreground
    fg = Foreground(max_wait=WAIT)
    rec = Recorder()
    s = Scheduler(1, foreground=fg)
    job = Fake("a", rec)
    run = fg.page_run()
    run.__enter__()
    try:
        s.submit(job)
        wait_for(lambda: s.status(job).state == "training", "the job to hold its slot", [job])
        time.sleep(0.3)                          # long enough for many rounds, had the slot not waited
        assert rec.starts() == []
        assert fg.running == 1
    finally:
        run.__exit__(None, None, None)
    wait_for(lambda: len(rec.starts()) >= 3, "rounds after the page run ended", [job])
    s.withdraw(job)
    assert s.join(WAIT)


def test_the_wait_for_page_runs_is_capped_so_training_always_moves():
    """A page run that never ends (or a class that keeps the server busy) delays each round by at most max_wait."""
    from gspo_viz.toy.foreground import Foreground
    fg = Foreground(max_wait=0.01)
    rec = Recorder()
    s = Scheduler(1, foreground=fg)
    job = Fake("a", rec)
    with fg.page_run():
        s.submit(job)
        wait_for(lambda: len(rec.starts()) >= 3, "rounds despite a page run in progress", [job])
        assert fg.running == 1
    s.withdraw(job)
    assert s.join(WAIT)
    assert fg.waited > 0


def test_every_app_run_counts_as_a_page_run(navigation_mode):
    """app.py wraps each run in FOREGROUND.page_run(): during a page's run the count is 1, and 0 after it."""
    from contextlib import contextmanager
    from pathlib import Path
    from streamlit.testing.v1 import AppTest
    from gspo_viz.toy.foreground import FOREGROUND
    seen = []
    original = FOREGROUND.page_run

    @contextmanager
    def spying():
        with original():
            seen.append(FOREGROUND.running)
            yield
    FOREGROUND.page_run = spying
    try:
        at = AppTest.from_file(str(Path(__file__).parents[1] / "app.py"), default_timeout=60).run()
    finally:
        del FOREGROUND.page_run
    assert not at.exception
    assert seen == [1]
    assert FOREGROUND.running == 0
