"""A closed Train tab's trainers are let go (gspo_viz/toy/lifetime.py): the server keeps a closed tab's session for a
reconnect and, after the last viewer leaves, never drops it, so without the reaper every Trainer ever started stayed
in memory. The clock here is a fake one; nothing waits for real time but the thread test's short period."""
import gc
import threading
import time
import weakref
from pathlib import Path

import pytest

from gspo_viz.toy.lifetime import Reaper
from gspo_viz.toy.scheduler import Scheduler
from gspo_viz.toy.session import Background, make_runs
from gspo_viz.toy.train import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
SMALL = TrainConfig(prompts=2, group=2, min_digits=1, max_digits=1, minibatches=1)
SPECS = [("GRPO", {"objective": "grpo"}), ("GSPO", {"objective": "gspo"})]


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def session(scheduler=None):
    return Background(make_runs(SMALL, SPECS), scheduler=scheduler or Scheduler(1, turn=0.0))


def test_runs_of_a_session_gone_longer_than_the_grace_are_released_and_freed():
    clock, tabs = Clock(), {"tab-1": True}
    reaper = Reaper(period=3600, clock=clock)
    bg = session()
    bg.step_once()
    trainers = [weakref.ref(r.trainer) for r in bg.runs]
    reaper.track(bg, "tab-1", lambda s: tabs[s], grace=150)
    clock.now += 1000
    assert reaper.reap() == 0 and bg.runs            # connected: kept however long
    tabs["tab-1"] = False
    assert reaper.reap() == 0                        # the tab closed just now (last seen connected at this look)
    clock.now += 149
    assert reaper.reap() == 0 and bg.released is None   # a reconnect is still possible
    clock.now += 1
    gc.disable()                                     # freed by their reference counts alone, at once
    try:
        assert reaper.reap() == 1
        assert [t() for t in trainers] == [None, None]   # nothing else holds the models, optimizers and histories
    finally:
        gc.enable()
    assert bg.runs == [] and bg.released == "its tab was closed 150 s ago"
    assert reaper.tracked() == 0 and not bg.running


def test_a_reconnect_restarts_the_grace():
    clock, tabs = Clock(), {"t": True}
    reaper = Reaper(period=3600, clock=clock)
    bg = session()
    reaper.track(bg, "t", lambda s: tabs[s], grace=10)
    tabs["t"] = False
    clock.now += 9
    reaper.reap()
    tabs["t"] = True                                 # back within the grace
    reaper.reap()
    tabs["t"] = False
    clock.now += 9
    assert reaper.reap() == 0 and bg.runs
    clock.now += 1
    assert reaper.reap() == 1


def test_only_the_gone_session_is_released_and_a_replaced_one_is_not_kept_alive():
    clock, tabs = Clock(), {"a": True, "b": True}
    reaper = Reaper(period=3600, clock=clock)
    a, b = session(), session()
    reaper.track(a, "a", lambda s: tabs[s], grace=5)
    reaper.track(b, "b", lambda s: tabs[s], grace=5)
    replaced = session()                             # Reset: the page makes a new Background, the old one goes
    reaper.track(replaced, "b", lambda s: tabs[s], grace=5)
    gone = weakref.ref(replaced)
    del replaced
    gc.collect()
    assert gone() is None                            # the reaper's table holds its Backgrounds weakly
    tabs["a"] = False
    clock.now += 5
    assert reaper.reap() == 1
    assert a.released and not a.runs and b.released is None and b.runs
    assert reaper.tracked() == 1                     # the dead entry was dropped, b is still watched


def test_release_stops_a_training_session_and_no_step_runs_after_it():
    s = Scheduler(1, turn=0.0, name="lifetime-train")
    bg = session(s)
    bg.start()
    deadline = time.monotonic() + 30
    while bg.runs[0].trainer.step_count < 2:
        assert time.monotonic() < deadline
        bg.beat()
        time.sleep(0.005)
    runs = bg.runs
    bg.release("gone")
    counts = [r.trainer.step_count for r in runs]
    assert not bg.running and bg.status().reason == "released"
    assert s.join(30)
    assert [r.trainer.step_count for r in runs] == counts


def test_the_reaper_thread_runs_only_while_something_is_tracked():
    tabs = {"t": False}
    reaper = Reaper(period=0.01)
    assert not reaper.running
    bg = session()
    reaper.track(bg, "t", lambda s: tabs[s], grace=0.0)
    deadline = time.monotonic() + 30
    while reaper.running or bg.released is None:
        assert time.monotonic() < deadline, "the reaper neither released the runs nor ended"
        time.sleep(0.01)
    assert not [t for t in threading.enumerate() if t.name == "gspo-viz-run-reaper" and t.is_alive()
                and t is reaper._thread]


@pytest.mark.usefixtures("navigation_mode")
def test_the_train_page_tracks_its_runs_and_drops_released_ones():
    from streamlit.testing.v1 import AppTest

    from gspo_viz.toy.lifetime import REAPER
    from gspo_viz.ui.sessions import connected, grace
    assert connected("no-such-session")              # no server (AppTest): nothing is ever released
    assert grace() == 120 + 30                       # Streamlit's default disconnectedSessionTTL, and a margin
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.run()
    at.switch_page("pages/5_train.py").run()
    before = REAPER.tracked()
    [b for b in at.button if b.label == "Single step"][0].click().run()
    assert not at.exception, at.exception
    bg = at.session_state["train_bg"]
    assert bg.runs and REAPER.tracked() == before + 1
    assert any("Sample viewer" in h.value for h in at.subheader)     # the page has drawn a run's answers
    trainers = [weakref.ref(r.trainer) for r in bg.runs]
    bg.release("gone")
    gc.collect()
    assert [t() for t in trainers] == [None] * 3   # the page keeps no run in its globals (its fragments hold them)
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["train_bg"] is None
    assert any("Press Start or Single step" in i.value for i in at.info)
