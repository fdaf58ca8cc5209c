"""Frees the toy runs of sessions whose viewer has gone for good: the trainers do not outlive a closed tab.

The web server keeps a closed tab's session for a while so that a reconnect finds it (Streamlit: the setting
`server.disconnectedSessionTTL`, 120 s by default) and only drops it on a later change to its store, so after the
last viewer of a class leaves, every session's state, and the Trainers in it, stayed in memory for good (measured:
3 Trainers per closed Train tab, still there minutes later). Here each Background is tracked with the session that
owns it; a reaper thread releases the runs of a Background whose session has not been connected for `grace`
seconds, longer than the server keeps a session for a reconnect, so no viewer who can still come back loses a run.
The thread starts with the first tracked Background and ends when none is left. No Streamlit here: the glue passes
`connected` (is this session's tab connected now?).
"""
from __future__ import annotations

import threading
import time
import weakref
from typing import Callable, Optional

from .session import Background

REAP_PERIOD = 15.0          # seconds between the reaper's looks


class Reaper:
    def __init__(self, period: float = REAP_PERIOD, clock: Callable[[], float] = time.monotonic):
        self.period, self.clock = period, clock
        self._lock = threading.Lock()
        # id(Background) → (a weak reference to it, its session, its grace, its connected(), when it was last seen
        # connected). Weak: a Background its session replaced (Reset) or dropped is not kept alive by this table.
        self._tracked: dict[int, tuple[weakref.ref, str, float, Callable[[str], bool], float]] = {}
        self._thread: Optional[threading.Thread] = None

    def track(self, bg: Background, session: str, connected: Callable[[str], bool], grace: float) -> None:
        """Release bg's runs once `session` has not been connected for `grace` seconds."""
        with self._lock:
            self._tracked[id(bg)] = (weakref.ref(bg), session, grace, connected, self.clock())
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="gspo-viz-run-reaper", daemon=True)
                self._thread.start()

    def tracked(self) -> int:
        with self._lock:
            return len(self._tracked)

    def reap(self) -> int:
        """One look: release the runs of every tracked Background whose session has been away for its grace;
        returns how many were released."""
        now, due = self.clock(), []
        with self._lock:
            for key, (ref, session, grace, connected, seen) in list(self._tracked.items()):
                bg = ref()
                if bg is None or bg.released:
                    del self._tracked[key]
                elif connected(session):
                    self._tracked[key] = (ref, session, grace, connected, now)
                elif now - seen >= grace:
                    del self._tracked[key]
                    due.append((bg, now - seen))
        for bg, away in due:                       # outside the lock: release waits for a round in progress
            bg.release(f"its tab was closed {away:.0f} s ago")
        return len(due)

    def _run(self) -> None:
        while True:
            time.sleep(self.period)
            self.reap()
            with self._lock:
                if not self._tracked:
                    self._thread = None
                    return

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


REAPER = Reaper()
