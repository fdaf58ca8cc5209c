"""Server memory while one person edits a large group. Nothing here is asserted by a test; run it and read the numbers.

python benchmarks/bench_memory.py [--size 16x1024] [--edits 30]

The Token Lab runs in this process (Streamlit's AppTest, as a live server runs it after its first request) with a
seeded G×T group (benchmarks/bench_big_groups.big_group) and GRPO, GSPO and Dual-Clip side by side. Each edit types
a new value into one p_new cell of the tokens table, so every edit is a new scenario and a new set of cached views
(the caches are process-wide, shared by every session of a server). After each edit: the process's resident memory
(VmRSS). Printed: the memory before the first edit, after every 5th edit, the growth per edit over the last 20, and
what gspo_viz.ui.cache says it holds (when the cache reports its size). Then the cache is emptied and
gspo_viz.ui.memory.release_memory() runs (as the cache's janitor does once the class has gone home): the memory
printed then is what the process keeps, with this one session still open. The allocator of Python's small objects
decides how much: run it once as it is and once with gspo_viz.ui.memory.SERVER_ENV's variables
(PYTHONMALLOC=malloc MALLOC_ARENA_MAX=1 python benchmarks/bench_memory.py).
"""
import argparse
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_big_groups import big_group  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="16x1024")
    ap.add_argument("--edits", type=int, default=30)
    args = ap.parse_args()
    G, T = (int(x) for x in args.size.lower().split("x"))

    import torch
    torch.set_num_threads(2)
    from streamlit import logger
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import AppTest
    logger.set_log_level("ERROR")   # AppTest's "missing ScriptRunContext" warnings
    logging.disable(logging.WARNING)  # and "Ignoring query string …": a large group's link is over Streamlit's limit

    original = PagesManager.__init__

    def init(self, *a, **k):  # a live server after its first request runs in st.navigation mode
        original(self, *a, **k)
        PagesManager.uses_pages_directory = False
    PagesManager.__init__ = init

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.run()
    at.switch_page("pages/1_token_lab.py").run()
    at.session_state["scenario"] = big_group(G, T)
    at.session_state["version"] = at.session_state["version"] + 1
    at.toggle(key="ctl_edit_0").set_value(True).run()
    assert not at.exception, at.exception
    from gspo_viz.ui.memory import pymalloc_in_use, release_memory
    start = rss_mb()
    print(f"{G} × {T} tokens, GRPO + GSPO + Dual-Clip; Python's small objects from "
          f"{'pymalloc' if pymalloc_in_use() else 'the C library (PYTHONMALLOC=malloc)'}; "
          f"RSS after loading the group: {start:.0f} MB", flush=True)
    series, times = [], []
    for k in range(args.edits):
        key = f"tok_ed_{at.session_state['version']}_p"
        at.session_state[key] = {"edited_rows": {2: {"p_new": round(0.2 + 0.01 * (k + 1), 4)}}, "added_rows": [],
                                 "deleted_rows": []}
        t0 = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t0)
        assert not at.exception, at.exception
        assert at.session_state["scenario"]["responses"][0]["p_new"][2] == round(0.2 + 0.01 * (k + 1), 4)
        series.append(rss_mb())
        if (k + 1) % 5 == 0:
            print(f"   after edit {k + 1:2d}: RSS {series[-1]:6.0f} MB (this edit's rerun {times[-1]:.1f} s)",
                  flush=True)
    tail = series[-21:]
    per_edit = (tail[-1] - tail[0]) / (len(tail) - 1) if len(tail) > 1 else float("nan")
    print(f"RSS {start:.0f} → {series[-1]:.0f} MB over {args.edits} edits; growth over the last {len(tail) - 1} "
          f"edits: {per_edit:+.1f} MB per edit; median rerun {sorted(times)[len(times) // 2]:.1f} s")
    try:
        from gspo_viz.ui.cache import CACHE
        print(f"gspo_viz.ui.cache.CACHE: {len(CACHE)} entries, {CACHE.bytes / 2**20:.1f} MB estimated of a "
              f"{CACHE.budget / 2**20:.0f} MB budget")
    except ImportError:
        return
    CACHE.clear()
    release_memory()
    kept = rss_mb()
    print(f"after emptying the cache and release_memory(): RSS {kept:.0f} MB ({kept - start:+.0f} MB against the "
          f"memory before the first edit)")


if __name__ == "__main__":
    main()
