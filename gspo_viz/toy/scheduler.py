"""A server-wide limit on how many Train-page sessions train at once: a few worker slots, a FIFO line, turns.

One Scheduler per server process (`shared()`), whatever the number of viewers. A session that presses Start joins
the back of the line; each worker slot takes the first session in line and steps its runs, one round (one step of
every run) at a time. After a turn of `turn` seconds, if somebody is waiting, the session yields its slot and goes
to the back of the line. A session leaves (and holds no slot and no thread) when it is paused, when all its runs
have stopped, or when its page has not sent a heartbeat for `job.idle_stop` seconds (the tab was closed or went
quiet). The workers are threads started when a session needs a slot and ended when the line is empty, so an idle
server holds none; at most `slots` exist at any time. Before each round a worker lets the viewers' page runs in
progress finish first (`foreground`, toy/foreground.py; at most MAX_WAIT seconds). No Streamlit here.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Optional

import torch

from .foreground import FOREGROUND, Foreground

ENV_SLOTS = "GSPO_VIZ_TRAINING_SLOTS"
TURN_SECONDS = 3.0          # a session trains this long before it yields its slot to a waiting one
IDLE_STOP = 3.0             # seconds without a heartbeat (the page sends one every 0.25–1 s) before a session leaves

log = logging.getLogger(__name__)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, which containers set), else os.cpu_count()."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def configured_slots(environ=None) -> int:
    """How many sessions train at once: GSPO_VIZ_TRAINING_SLOTS, else the usable cores minus one, at least 1.

    A slot keeps one core busy (its worker steps with one intra-op thread), so with the default one core stays for
    the page reruns of every viewer (Streamlit runs each script in its own thread, and they all share the
    interpreter). Raises ValueError naming the variable when it is set to something else than a whole number >= 1.
    """
    raw = (os.environ if environ is None else environ).get(ENV_SLOTS, "").strip()
    if not raw:
        return max(1, usable_cores() - 1)
    try:
        slots = int(raw)
    except ValueError:
        slots = 0
    if slots < 1:
        raise ValueError(f"{ENV_SLOTS} must be a whole number >= 1 (the sessions that train at once), got {raw!r}")
    return slots


class Job:
    """What the scheduler trains: one session's runs. Subclasses implement round() and may override finished.

    The scheduler alone sets `ticket` and `reason` (under its lock). `lock` is held while a round runs, so a reader
    holding it sees no half-done step.
    """

    idle_stop: float = IDLE_STOP

    def __init__(self, idle_stop: Optional[float] = None):
        if idle_stop is not None:
            self.idle_stop = idle_stop
        self.lock = threading.Lock()
        self.heartbeat = time.monotonic()
        self.ticket = 0                  # bumped on every submit and withdraw: a worker holding an older one stops
        self.reason: Optional[str] = None  # why the job is idle: "paused", "quiet", "finished", "error: ..."
        self.once = False                # run_once: leave after one round

    def beat(self) -> None:
        """The page is still watching."""
        self.heartbeat = time.monotonic()

    def quiet(self, now: Optional[float] = None) -> bool:
        return (time.monotonic() if now is None else now) - self.heartbeat > self.idle_stop

    def round(self) -> None:
        """One step of every run (called by a worker, with self.lock held)."""
        raise NotImplementedError

    @property
    def finished(self) -> bool:
        """Nothing left to train."""
        return False


@dataclass(frozen=True)
class Status:
    state: str                 # "training", "waiting" or "idle"
    place: Optional[int]       # 1 for the first in line (waiting only)
    training: int              # sessions training now, server-wide
    waiting: int               # sessions in line, server-wide
    slots: int
    reason: Optional[str]      # idle only: "paused", "quiet", "finished" or "error: ..." (None: never started)


class Scheduler:
    def __init__(self, slots: int, turn: float = TURN_SECONDS, name: str = "gspo-viz-train",
                 foreground: Optional[Foreground] = FOREGROUND):
        if slots < 1:
            raise ValueError(f"slots must be >= 1, got {slots}")
        self.slots = slots
        self.turn = turn
        self.foreground = foreground      # page runs a round waits for (None: do not wait)
        self.name = name
        self._cv = threading.Condition()
        self._line: deque[Job] = deque()                       # waiting, first in line first
        self._holding: dict[threading.Thread, tuple[Job, int]] = {}   # worker → (its job, the ticket it took)
        self._workers: set[threading.Thread] = set()
        self._ended: list[threading.Thread] = []                 # workers that left, for join() to wait on
        self._count = 0

    # ---------------------------------------------------------------------------------------------- the page's calls
    def submit(self, job: Job) -> None:
        """Join the back of the line (nothing happens if the job is already in line or training)."""
        with self._cv:
            if job in self._line or self._training(job):
                return
            job.ticket += 1
            job.reason = None
            job.once = False
            self._line.append(job)
            self._spawn()

    def run_once(self, job: Job, timeout: float = 600.0) -> bool:
        """One round of the job on a slot, then it leaves (reason "paused"); blocks until the round is done. The job
        goes to the front of the line, being one round: a training session yields to it after its turn. True if
        the round ran within timeout."""
        self.withdraw(job)
        deadline = time.monotonic() + timeout
        with self._cv:
            job.ticket += 1
            job.reason = None
            job.once = True
            ticket = job.ticket
            self._line.appendleft(job)
            self._spawn()
            while job.once and job.ticket == ticket:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cv.wait(left)
            done = not job.once
            if not done:                          # gave up waiting: leave the line
                job.once = False
                job.ticket += 1
                if job in self._line:
                    self._line.remove(job)
                job.reason = "paused"
        with job.lock:
            pass
        return done

    def withdraw(self, job: Job, reason: str = "paused") -> None:
        """Leave the line or the slot. When this returns, no round of the job runs any more (a round in progress
        has ended)."""
        with self._cv:
            job.ticket += 1
            job.once = False
            if job in self._line:
                self._line.remove(job)
            job.reason = reason
            self._cv.notify_all()
        with job.lock:                    # wait for a round in progress
            pass

    def status(self, job: Job) -> Status:
        with self._cv:
            self._prune(time.monotonic())
            training = sum(1 for j, t in self._holding.values() if j.ticket == t)
            common = dict(training=training, waiting=len(self._line), slots=self.slots)
            if self._training(job):
                return Status("training", None, reason=None, **common)
            if job in self._line:
                return Status("waiting", self._line.index(job) + 1, reason=None, **common)
            return Status("idle", None, reason=job.reason, **common)

    def running(self, job: Job) -> bool:
        """In line or training."""
        with self._cv:
            return job in self._line or self._training(job)

    def workers(self) -> int:
        """Worker threads alive now."""
        with self._cv:
            return len(self._workers)

    def join(self, timeout: float = 30.0) -> bool:
        """Wait until no worker thread is alive (every job has left); True if so within timeout."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while self._workers:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(left)
            ended, self._ended = self._ended, []
        for worker in ended:
            worker.join(max(0.0, deadline - time.monotonic()))
        return not any(w.is_alive() for w in ended)

    # ---------------------------------------------------------------------------------------------- the workers
    def _training(self, job: Job) -> bool:
        return any(j is job and t == job.ticket for j, t in self._holding.values())

    def _prune(self, now: float) -> None:
        """Drop the sessions in line whose page went quiet: they hold no place."""
        for job in [j for j in self._line if j.quiet(now)]:
            self._line.remove(job)
            job.ticket += 1
            job.reason = "quiet"

    def _spawn(self) -> None:
        idle = len(self._workers) - len(self._holding)          # started, not yet holding a job
        self._ended = [w for w in self._ended if w.is_alive()]
        while self._line and len(self._workers) < self.slots and idle < len(self._line):
            self._count += 1
            worker = threading.Thread(target=self._work, name=f"{self.name}-{self._count}", daemon=True)
            self._workers.add(worker)
            idle += 1
            worker.start()

    def _work(self) -> None:
        torch.set_num_threads(1)    # the toy's tensors are tiny: one intra-op thread per slot, one core per slot
        me = threading.current_thread()
        while True:
            with self._cv:
                self._prune(time.monotonic())
                if not self._line:
                    self._workers.discard(me)
                    self._ended.append(me)
                    self._cv.notify_all()
                    return
                job = self._line.popleft()
                ticket = job.ticket
                self._holding[me] = (job, ticket)
            try:
                self._turn(job, ticket)
            except Exception as e:          # a bug, not a NaN (runs stop themselves on those): leave, say why
                log.exception("training round failed")
                with self._cv:
                    if job.ticket == ticket:
                        job.ticket += 1
                        job.reason = f"error: {e}"
            finally:
                with self._cv:
                    del self._holding[me]
                    self._cv.notify_all()

    def _turn(self, job: Job, ticket: int) -> None:
        start = time.monotonic()
        while True:
            if self.foreground is not None:
                self.foreground.wait_idle()                     # the viewers' page runs first
            with job.lock:
                with self._cv:
                    if job.ticket != ticket:                    # paused, or left and came back meanwhile
                        return
                    if job.quiet():
                        job.ticket += 1
                        job.reason = "quiet"
                        return
                job.round()
            with self._cv:
                if job.ticket != ticket:
                    return
                if job.once:                                     # one round asked (run_once): done
                    job.once = False
                    job.ticket += 1
                    job.reason = "paused"
                    self._cv.notify_all()
                    return
                if job.finished:
                    job.ticket += 1
                    job.reason = "finished"
                    return
                self._prune(time.monotonic())
                if self._line and time.monotonic() - start >= self.turn:
                    job.ticket += 1                              # yield: to the back of the line
                    self._line.append(job)
                    return


_shared: Optional[Scheduler] = None
_shared_note: Optional[str] = None
_shared_lock = threading.Lock()


def shared() -> Scheduler:
    """The server's one scheduler, made on first use with configured_slots()."""
    global _shared, _shared_note
    with _shared_lock:
        if _shared is None:
            try:
                slots = configured_slots()
            except ValueError as e:
                slots = max(1, usable_cores() - 1)
                _shared_note = f"{e}; using {slots}."
            _shared = Scheduler(slots)
        return _shared


def shared_note() -> Optional[str]:
    """Why the shared scheduler did not use GSPO_VIZ_TRAINING_SLOTS (a bad value), if it did not."""
    return _shared_note
