"""Page runs first, training second: the server's page runs in progress, which the training slots wait out.

A Streamlit server runs every viewer's page in one interpreter. A training slot that steps while a viewer's edit is
being recomputed slows that edit (they share the cores and the interpreter lock), and the viewer is the one waiting.
So app.py counts each page run (`with FOREGROUND.page_run():`) and a slot, before each training round, waits until no
page run is in progress (`FOREGROUND.wait_idle`), but never longer than `max_wait` seconds (`max_wait`): training always moves.
No torch, no Streamlit here (app.py imports it on every run, the landing page included).
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Iterator

MAX_WAIT = 0.25      # a training round waits at most this long for the page runs to finish


class Foreground:
    """A count of page runs in progress, and a wait for it to reach 0."""

    def __init__(self, max_wait: float = MAX_WAIT):
        self.max_wait = max_wait
        self._cv = threading.Condition()
        self._running = 0
        self.waited = 0.0          # seconds training rounds spent waiting, in all (for benchmarks)

    @property
    def running(self) -> int:
        with self._cv:
            return self._running

    @contextmanager
    def page_run(self) -> Iterator[None]:
        """Count this page run while the block runs."""
        with self._cv:
            self._running += 1
        try:
            yield
        finally:
            with self._cv:
                self._running -= 1
                if not self._running:
                    self._cv.notify_all()

    def wait_idle(self) -> bool:
        """Block until no page run is in progress, or `max_wait` seconds; True if none was (or is) in progress."""
        start = time.monotonic()
        with self._cv:
            while self._running:
                left = self.max_wait - (time.monotonic() - start)
                if left <= 0:
                    break
                self._cv.wait(left)
            idle = not self._running
        self.waited += time.monotonic() - start
        return idle


FOREGROUND = Foreground()
