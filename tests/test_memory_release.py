"""gspo_viz.ui.memory: a server started with SERVER_ENV gives a finished class's memory back (issue 9).

Each case runs in a fresh interpreter (the allocators are chosen when the process starts). A thread fills the heap
with 1.5 million small strings and keeps a few (long-lived objects among short-lived ones, as a class leaves behind):
every 250th of them ("spread"), or every 125th of the first 750,000 only, so that the top of the heap is all free
("low"). It drops the rest; the process's resident memory (VmRSS) is read before, after the drop and after
release_memory(). Linux with glibc only (malloc_trim).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gspo_viz.ui import memory

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or memory._glibc() is None,
                                reason="needs Linux with glibc (VmRSS, malloc_trim)")

SCRIPT = """
import gc, json, sys, threading
from pathlib import Path
from gspo_viz.ui.memory import pymalloc_in_use, release_memory

def rss_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

kept = []

def work(survivors):
    keep = [None] * 6000                  # made first: nothing of the test's own sits above the strings
    junk = [str(i) * 3 for i in range(1_500_000)]
    step = 250 if survivors == "spread" else 125
    for i in range(6000):
        keep[i] = junk[i * step]
    kept.append(keep)
    del junk
    gc.collect()

base = rss_mb()
worker = threading.Thread(target=work, args=(sys.argv[1],))
worker.start()
worker.join()
held = rss_mb()
released = release_memory()
print(json.dumps({"pymalloc": pymalloc_in_use(), "base": base, "held": held, "after": rss_mb(),
                  "released": released}))
"""


def run(extra_env: dict, survivors: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONMALLOC", "MALLOC_ARENA_MAX")} | extra_env
    out = subprocess.run([sys.executable, "-c", SCRIPT, survivors], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("survivors", ["spread", "low"])
def test_server_env_gives_the_memory_back(survivors):
    r = run(memory.SERVER_ENV, survivors)
    assert not r["pymalloc"], "SERVER_ENV does not switch Python's small objects to the C library's malloc"
    assert r["released"]
    grown = r["held"] - r["base"]
    assert grown > 50, f"the setup did not hold memory after the drop ({r}): this test would prove nothing"
    assert r["after"] - r["base"] < 0.4 * grown, f"release_memory gave back too little: {r}"


def test_pymalloc_keeps_it():
    """The premise of SERVER_ENV: under CPython's default allocator the same drop and release give (almost)
    nothing back. If this fails, pymalloc now returns partly used arenas and SERVER_ENV may be unnecessary."""
    r = run({}, "spread")
    assert r["pymalloc"]
    grown = r["held"] - r["base"]
    assert grown > 50, r
    assert r["after"] - r["base"] > 0.8 * grown, f"pymalloc gave the memory back: {r}"
