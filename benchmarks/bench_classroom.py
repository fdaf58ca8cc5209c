"""Edits stay fast under load: a class of viewers editing the Token Lab while others train. Nothing here is
asserted by a test; run it and read the numbers.

python benchmarks/bench_classroom.py [--quick] [--n 1,10,20] [--trainers 0,3] [--seconds 40] [--interval 3]
                                     [--browsers 2] [--after 60,130] [--pymalloc] [--server-env NAME=VALUE]

Starts one `streamlit run app.py` on a free loopback port, with GSPO_VIZ_RUN_LOG set so that app.py appends each
run's page and milliseconds to a file. For each number of training sessions T (default 0, then 3) and each number of
editing viewers N (default 1, 10, 20), N viewers open the Token Lab and each changes "Dual-Clip c" about every
`--interval` seconds (jittered ±50 %, every value new, so every edit recomputes the charts) for `--seconds`:

- `--browsers` of the N (default 2; N = 1 is one) are real Chromium pages: edit → the Dual-Clip chart's hover holds
  the new c·A (the time a person waits for the updated chart). Browsers run on the same cores as the server.
- the others are light clients: the frontend's protocol over ws://127.0.0.1:PORT/_stcore/stream, built on
  Streamlit's own protobufs (BackMsg rerun_script with the widget's new value; the run's ForwardMsgs back, until
  script_finished). Their edit → script_finished time is printed too. The websocket client is the `websockets`
  package, which streamlit 1.67 itself requires (nothing to install beyond requirements.txt).
- the server's own rerun time per edit: app.py's timer for every Token Lab run in the window (the run log).
- the T training sessions are light clients on the Train page: they press "Start", follow the live chart's
  auto-rerun like a browser tab, and read the page's "… steps in all …, X steps/s" caption.

Then p50/p95 per phase against N = 1 (same T, and T = 0), each training session's steps/s, and the server's RSS and
thread count (/proc/PID/status): after a warm-up session (the baseline), the peak in each phase, and `--after` seconds
after every page closed (training sessions closed without pressing Pause, like closed tabs), each time before and
after one GET / (Starlette's thread pool retires its idle workers only when it is next used). Goal (issue 9): with 20
viewers editing while 3 sessions train, p95 at most 2× the single viewer's; after the pages close, every extra thread
gone and RSS within 20 % of the baseline. Streamlit keeps a closed tab's session for `server.disconnectedSessionTTL`
(120 s) in case it reconnects, hence the default 130 s sample.

The server starts with gspo_viz.ui.memory.SERVER_ENV (PYTHONMALLOC=malloc, MALLOC_ARENA_MAX=1; that module says
why), the environment a class's server processes get. `--pymalloc` starts it with CPython's and glibc's defaults
instead, to compare; `--server-env NAME=VALUE` adds or overrides a variable. The RSS lines after the pages close also
give the anonymous part (heap and allocator arenas), where memory kept after a class is.

All traffic goes to 127.0.0.1. Every wait has a timeout; the whole run stops after `--budget` seconds.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import server  # noqa: E402  (benchmarks/server.py: the app on a free port)
from gspo_viz.ui.memory import SERVER_ENV  # noqa: E402

C_LABEL = "Dual-Clip c"
TIMEOUT = 30.0                                  # any single page load, edit or rerun
PLOTS = "() => document.querySelectorAll('.js-plotly-plot').length >= 7"
# true once some chart's hover text (customdata) holds `target` (the Dual-Clip hover: "c·A = <value>")
HAS_TEXT = """(target) => [...document.querySelectorAll('.js-plotly-plot')].some(gd => (gd.data || []).some(
    t => Array.isArray(t.customdata) && t.customdata.some(row => Array.isArray(row) && row.some(
        s => typeof s === 'string' && s.includes(target)))))"""
CAPTION = re.compile(r"([\d,]+) steps in all.*?([\d.]+) steps/s")


def thread_names(pid: int) -> str:
    """The server's threads by name (/proc/PID/task/*/comm), e.g. "python × 4, pt_main_thread × 1"."""
    from collections import Counter
    names = Counter()
    for comm in Path(f"/proc/{pid}/task").glob("*/comm"):
        try:
            names[comm.read_text().strip()] += 1
        except OSError:                     # the thread ended meanwhile
            pass
    return ", ".join(f"{n} × {k}" for n, k in names.most_common())


def anon_mb(pid: int) -> float:
    """The server's anonymous resident memory (heap, arenas, stacks; RssAnon in /proc/PID/status), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    """The nearest-rank percentile (p95 of 20 values: the 19th smallest)."""
    v = sorted(values)
    return v[max(0, math.ceil(q * len(v)) - 1)] if v else float("nan")


def summary(values: list[float]) -> str:
    if not values:
        return "no samples"
    return f"p50 {statistics.median(values):7.1f} ms, p95 {pct(values, 0.95):7.1f} ms (n = {len(values)})"


class Values:
    """A new Dual-Clip c for every edit (2 decimals, as a person types them): each edit is a cache miss."""

    def __init__(self):
        self.j = 0

    def next(self) -> float:
        self.j += 1
        return round(1.5 + 0.01 * self.j, 2)


def negative_advantage() -> float:
    """A < 0 of the default scenario's group: the Dual-Clip hover then reads f"c·A = {c * A:.6g}"."""
    from gspo_viz import parse_scenario, run_scenario
    data = json.loads((ROOT / "examples/default_group.json").read_text())
    res = run_scenario(parse_scenario(data), "dual_clip")
    return float(min(a for a in res.advantages.tolist() if a < 0))


# ------------------------------------------------------------------------------------------------ light client
class Viewer:
    """One browser session without a browser: the frontend's side of Streamlit's protocol over its websocket.

    Sends BackMsg.rerun_script (the page, the query string, the widget states this viewer set, a trigger for a
    button, or a fragment's auto-rerun) and reads the ForwardMsgs of the run until script_finished."""

    def __init__(self, url: str, page: str):
        self.ws_url = "ws" + url[len("http"):] + "/_stcore/stream"
        self.page = page
        self.page_hash = ""
        self.query = ""
        self.widgets: dict[str, str] = {}       # label -> widget id, from the latest full run
        self.state: dict[str, object] = {}      # widget id -> WidgetState this viewer set (sent with every rerun)
        self.fragments: dict[str, float] = {}   # auto-rerun fragment id -> interval (s)
        self.texts: list[str] = []              # markdown bodies of the current run
        self.specs: list[str] = []              # plotly specs of the current run
        self.errors: list[str] = []
        self.cache: dict[str, int] = {}         # hashes of cacheable messages -> the run that last sent them
        self.runs = 0
        self.status: int | None = None
        self.done = asyncio.Event()
        self.lock = asyncio.Lock()
        self.closed = False
        self.ws = None
        self.reader = None

    async def open(self) -> None:
        import websockets
        self.ws = await asyncio.wait_for(websockets.connect(
            self.ws_url, subprotocols=["streamlit"], max_size=2 ** 26, open_timeout=TIMEOUT), TIMEOUT)
        self.reader = asyncio.create_task(self._read())
        await self.rerun()

    async def close(self) -> None:
        self.closed = True
        if self.ws is not None:
            try:
                await asyncio.wait_for(self.ws.close(), 5)
            except Exception:  # noqa: BLE001 (closing a socket the server already dropped)
                pass
        if self.reader is not None:
            self.reader.cancel()

    async def _read(self) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
        async for raw in self.ws:
            msg = ForwardMsg()
            msg.ParseFromString(raw)
            kind = msg.WhichOneof("type")
            if msg.metadata.cacheable and msg.hash:
                self.cache[msg.hash] = self.runs
            elif kind == "ref_hash":
                self.cache[msg.ref_hash] = self.runs
            if kind == "navigation":        # with st.navigation, the page that ran (what the frontend sends back)
                self.page_hash = msg.navigation.page_script_hash
            elif kind == "page_info_changed":
                self.query = msg.page_info_changed.query_string
            elif kind == "auto_rerun":
                self.fragments[msg.auto_rerun.fragment_id] = msg.auto_rerun.interval
            elif kind == "stop_auto_rerun":
                for fid in msg.stop_auto_rerun.fragment_ids:
                    self.fragments.pop(fid, None)
            elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                el = msg.delta.new_element
                what = el.WhichOneof("type")
                inner = getattr(el, what) if what else None
                if what == "markdown":
                    self.texts.append(inner.body)
                elif what == "plotly_chart":
                    self.specs.append(inner.spec)
                elif what == "exception":
                    self.errors.append(f"{inner.type}: {inner.message}")
                elif inner is not None and hasattr(inner, "label") and getattr(inner, "id", ""):
                    self.widgets[inner.label] = inner.id
            elif kind == "script_finished":
                self.status = msg.script_finished
                self.done.set()

    async def rerun(self, trigger: str | None = None, fragment: str | None = None) -> float:
        """One rerun, as the frontend asks for it; returns send → script_finished in ms."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.WidgetStates_pb2 import WidgetState
        async with self.lock:
            back = BackMsg()
            cs = back.rerun_script
            cs.query_string = self.query
            if self.page_hash:
                cs.page_script_hash = self.page_hash
            else:
                cs.page_name = self.page
            states = list(self.state.values())
            if trigger is not None:
                states.append(WidgetState(id=trigger, trigger_value=True))
            cs.widget_states.widgets.extend(states)
            # like the frontend's message cache: large messages it already holds come back as references
            self.runs += 1
            self.cache = {h: run for h, run in self.cache.items() if self.runs - run <= 2}
            cs.cached_message_hashes.extend(self.cache)
            if fragment is not None:
                cs.fragment_id = fragment
                cs.is_auto_rerun = True
            else:
                self.fragments.clear()      # a full run registers its fragments again
            self.texts, self.specs = [], []
            self.done.clear()
            t0 = time.perf_counter()
            await self.ws.send(back.SerializeToString())
            deadline = time.monotonic() + TIMEOUT
            while True:                     # a run that ends early for a rerun (st.rerun) is followed by another
                await asyncio.wait_for(self.done.wait(), max(0.1, deadline - time.monotonic()))
                self.done.clear()
                if self.status != 2:        # FINISHED_EARLY_FOR_RERUN
                    break
                self.texts, self.specs = [], []
            if self.status == 1:
                raise RuntimeError(f"{self.page}: the script did not compile")
            return 1e3 * (time.perf_counter() - t0)

    def set_number(self, label: str, value: float) -> None:
        from streamlit.proto.WidgetStates_pb2 import WidgetState
        wid = self.widgets[label]
        self.state[wid] = WidgetState(id=wid, double_value=value)


# ------------------------------------------------------------------------------------------------ editors
class LightEditor:
    kind = "light"

    def __init__(self, url: str, A: float):
        self.viewer = Viewer(url, "token_lab")
        self.A = A
        self.verified = 0

    async def open(self) -> None:
        await self.viewer.open()
        if C_LABEL not in self.viewer.widgets:
            raise RuntimeError(f"no '{C_LABEL}' input on the Token Lab (errors: {self.viewer.errors})")

    async def edit(self, c: float) -> float:
        self.viewer.set_number(C_LABEL, c)
        ms = await self.viewer.rerun()
        want = f"{c * self.A:.6g}"
        self.verified += any(want in s for s in self.viewer.specs)
        return ms

    async def close(self) -> None:
        await self.viewer.close()


class BrowserEditor:
    kind = "browser"

    def __init__(self, browser, url: str, A: float):
        self.browser, self.url, self.A = browser, url, A
        self.verified = 0
        self.ctx = self.page = None

    async def open(self) -> None:
        self.ctx = await self.browser.new_context(viewport={"width": 1500, "height": 2000})
        self.page = await self.ctx.new_page()
        await self.page.goto(f"{self.url}/token_lab", timeout=60_000)
        await self.page.wait_for_function(PLOTS, timeout=60_000)
        self.box = self.page.get_by_role("spinbutton", name=C_LABEL)

    async def edit(self, c: float) -> float:
        await self.box.fill(f"{c:.2f}", timeout=TIMEOUT * 1e3)
        t0 = time.perf_counter()
        await self.box.press("Enter", timeout=TIMEOUT * 1e3)
        await self.page.wait_for_function(HAS_TEXT, arg=f"c·A = {c * self.A:.6g}", polling=10,
                                          timeout=TIMEOUT * 1e3)
        self.verified += 1
        return 1e3 * (time.perf_counter() - t0)

    async def close(self) -> None:
        if self.ctx is not None:
            await self.ctx.close()


# ------------------------------------------------------------------------------------------------ trainers
class Trainer:
    """A Train page session: presses Start, then follows the live chart's auto-rerun like an open tab."""

    def __init__(self, url: str):
        self.viewer = Viewer(url, "train")
        self.readings: list[tuple[float, int, float]] = []   # (time, steps in all, the page's steps/s)
        self.caption = ""
        self.task = None

    async def start(self) -> None:
        await self.viewer.open()
        if "Start" not in self.viewer.widgets:
            raise RuntimeError(f"no Start button on the Train page (errors: {self.viewer.errors})")
        await self.viewer.rerun(trigger=self.viewer.widgets["Start"])
        self._read_caption()
        self.task = asyncio.create_task(self._follow())

    def _read_caption(self) -> None:
        for text in self.viewer.texts:
            if "steps/s" in text:
                self.caption = text
                m = CAPTION.search(text)
                if m:
                    self.readings.append((time.monotonic(), int(m.group(1).replace(",", "")), float(m.group(2))))

    async def _follow(self) -> None:
        while not self.viewer.closed:
            t0 = time.monotonic()
            interval = 1.0
            for fid, every in list(self.viewer.fragments.items()):
                interval = max(0.05, every)
                try:
                    await self.viewer.rerun(fragment=fid)
                except Exception:  # noqa: BLE001 (closed while a rerun was under way)
                    if self.viewer.closed:
                        return
                    raise
                self._read_caption()
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - t0)))

    def rate(self, t0: float, t1: float) -> tuple[float, float]:
        """(steps in all per wall-clock second, the page's own steps/s) over [t0, t1]."""
        inside = [r for r in self.readings if t0 <= r[0] <= t1]
        if len(inside) < 2:
            return float("nan"), (inside[-1][2] if inside else float("nan"))
        (a, sa, _), (b, sb, page_rate) = inside[0], inside[-1]
        return (sb - sa) / (b - a), page_rate

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        await self.viewer.close()


# ------------------------------------------------------------------------------------------------ the server
class Monitor:
    """Samples the server's RSS and threads every 0.5 s."""

    def __init__(self, pid: int):
        self.pid = pid
        self.samples: list[tuple[float, float, int]] = []
        self.task = None

    def now(self) -> dict:
        return server.proc_status(self.pid)

    async def run(self) -> None:
        while True:
            s = self.now()
            self.samples.append((time.monotonic(), s["rss_mb"], s["threads"]))
            await asyncio.sleep(0.5)

    def peak(self, t0: float, t1: float) -> tuple[float, int]:
        inside = [s for s in self.samples if t0 <= s[0] <= t1] or self.samples[-1:]
        return max(s[1] for s in inside), max(s[2] for s in inside)


class RunLog:
    def __init__(self, path: Path):
        self.path = path
        path.write_text("")

    def offset(self) -> int:
        return self.path.stat().st_size

    def since(self, offset: int, page: str) -> list[float]:
        with open(self.path, encoding="utf-8") as f:
            f.seek(offset)
            lines = f.read().splitlines()
        return [float(ms) for p, ms in (line.split("\t") for line in lines if "\t" in line) if p == page]


# ------------------------------------------------------------------------------------------------ one phase
async def gather_bounded(coros, limit: int = 4):
    sem = asyncio.Semaphore(limit)

    async def one(c):
        async with sem:
            return await c
    return await asyncio.gather(*(one(c) for c in coros))


async def phase(args, url, browser, A, values, log, monitor, trainers, n) -> dict:
    n_browsers = min(n, args.browsers)
    editors = [BrowserEditor(browser, url, A) for _ in range(n_browsers)] + \
              [LightEditor(url, A) for _ in range(n - n_browsers)]
    try:
        await gather_bounded([e.open() for e in editors])
        await gather_bounded([e.edit(values.next()) for e in editors])    # warm-up: one edit each
        lat = {e: [] for e in editors}
        offset = log.offset()
        t0 = time.monotonic()
        end = t0 + args.seconds

        async def loop(i, e):
            rng = random.Random(1000 * n + i)
            nxt = t0 + rng.uniform(0, args.interval)
            for _ in range(10_000):
                if nxt >= end:
                    return
                await asyncio.sleep(max(0.0, nxt - time.monotonic()))
                start = time.monotonic()
                lat[e].append(await e.edit(values.next()))
                nxt = start + args.interval * rng.uniform(0.5, 1.5)

        await asyncio.wait_for(asyncio.gather(*(loop(i, e) for i, e in enumerate(editors))),
                               args.seconds + 2 * TIMEOUT)
        t1 = time.monotonic()
        runs = log.since(offset, "token_lab")
        rss, threads = monitor.peak(t0, t1)
        out = {"n": n, "T": len(trainers), "server": runs,
               "browser": [x for e in editors if e.kind == "browser" for x in lat[e]],
               "light": [x for e in editors if e.kind == "light" for x in lat[e]],
               "edits": sum(len(v) for v in lat.values()),
               "verified": sum(e.verified for e in editors),
               "sent": sum(len(v) for v in lat.values()) + len(editors),
               "browsers": n_browsers, "rss": rss, "threads": threads,
               "train": [t.rate(t0, t1) for t in trainers],
               "captions": [t.caption for t in trainers]}
        return out
    finally:
        await asyncio.gather(*(e.close() for e in editors), return_exceptions=True)


def report(r: dict, base_same: dict | None, base_alone: dict | None) -> None:
    def ratio(key, base):
        if base is None or not r[key] or not base[key]:
            return ""
        return (f"  (× N=1: p50 {statistics.median(r[key]) / statistics.median(base[key]):.2f}, "
                f"p95 {pct(r[key], 0.95) / pct(base[key], 0.95):.2f})")
    print(f"\n  N = {r['n']:>2} editing ({r['browsers']} Chromium, {r['n'] - r['browsers']} light), "
          f"T = {r['T']} training: {r['edits']} edits, {r['verified']}/{r['sent']} checked against the core's c·A")
    print(f"    server rerun per edit (app.py's timer): {summary(r['server'])}{ratio('server', base_same)}")
    if base_alone is not None and base_alone is not base_same:
        print(f"      against N = 1 without training:{'':10}{ratio('server', base_alone)}")
    print(f"    Chromium, edit → updated chart:          {summary(r['browser'])}{ratio('browser', base_same)}")
    if base_alone is not None and base_alone is not base_same:
        print(f"      against N = 1 without training:{'':10}{ratio('browser', base_alone)}")
    if r["light"]:
        print(f"    light clients, edit → script_finished:  {summary(r['light'])}")
    for k, ((wall, page), cap) in enumerate(zip(r["train"], r["captions"])):
        print(f"    training session {k + 1}: {wall:5.1f} steps/s (steps in all, wall clock in this phase); "
              f"the page says {page:.1f} steps/s ({cap.split(':')[0] or 'no caption'})")
    print(f"    server peak: RSS {r['rss']:.0f} MB, {r['threads']} threads")


async def main_async(args) -> None:
    from playwright.async_api import async_playwright

    A = negative_advantage()
    tmp = Path(tempfile.mkdtemp(prefix="gspo_classroom_"))
    log = RunLog(tmp / "runs.tsv")
    proc, url = server.start(env={"GSPO_VIZ_RUN_LOG": str(log.path)} | args.server_env)
    monitor = Monitor(proc.pid)
    fresh = monitor.now()
    monitor.task = asyncio.create_task(monitor.run())
    values = Values()
    print(f"server {url} (pid {proc.pid}) on {os.cpu_count()} cores; fresh: RSS {fresh['rss_mb']:.0f} MB, "
          f"{fresh['threads']} threads; started with {' '.join(f'{k}={v}' for k, v in args.server_env.items())}")
    print(f"each phase: {args.seconds:.0f} s of edits, each viewer editing every {args.interval:g} s (±50 %); "
          f"Chromium pages among the N: {args.browsers}")
    trainers: list[Trainer] = []
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=server.FLAGS)
            # warm-up: one session loads the Token Lab and one the Train page (imports torch, builds a model)
            warm = [LightEditor(url, A), Viewer(url, "train")]
            await warm[0].open()
            await warm[0].edit(values.next())
            await warm[1].open()
            if "Single step" in warm[1].widgets:
                await warm[1].rerun(trigger=warm[1].widgets["Single step"])
            for w in warm:
                await w.close()
            await asyncio.sleep(2)
            await asyncio.to_thread(lambda: urllib.request.urlopen(f"{url}/", timeout=10).read())  # as at the end
            await asyncio.sleep(0.5)
            base = monitor.now()
            base_anon = anon_mb(proc.pid)
            print(f"after a warm-up session on the Token Lab and the Train page (the baseline): "
                  f"RSS {base['rss_mb']:.0f} MB (anonymous {base_anon:.0f} MB), {base['threads']} threads "
                  f"({thread_names(proc.pid)})")
            results: dict[tuple[int, int], dict] = {}
            for T in args.trainers:
                if T:
                    trainers = [Trainer(url) for _ in range(T)]
                    await gather_bounded([t.start() for t in trainers])
                    await asyncio.sleep(5)             # let training settle
                print(f"\n=== {T} training session(s)" + (f"; their page says: {trainers[0].caption}" if T else ""))
                for n in args.n:
                    try:
                        r = results[(T, n)] = await phase(args, url, browser, A, values, log, monitor, trainers, n)
                    except Exception as e:  # noqa: BLE001 (report the phase and go on with the next)
                        print(f"\n  N = {n:>2}, T = {T}: the phase failed: {type(e).__name__}: {e}")
                        continue
                    report(r, results.get((T, args.n[0])) if n != args.n[0] else None,
                           results.get((args.trainers[0], args.n[0])) if (T, n) != (args.trainers[0], args.n[0])
                           else None)
                if T and T != args.trainers[-1]:       # the last group closes without Pause, like closed tabs
                    for t in trainers:
                        if "Pause" in t.viewer.widgets:
                            await t.viewer.rerun(trigger=t.viewer.widgets["Pause"])
                        await t.close()
                    trainers = []
            during = monitor.now()
            await asyncio.gather(*(t.close() for t in trainers), return_exceptions=True)
            trainers = []
            await browser.close()
        closed = time.monotonic()
        print(f"\nevery page closed (training sessions without Pause): RSS {during['rss_mb']:.0f} MB, "
              f"{during['threads']} threads just before")
        for after in args.after:
            await asyncio.sleep(max(0.0, closed + after - time.monotonic()))
            s = monitor.now()
            anon = anon_mb(proc.pid)
            # Starlette's thread pool (anyio) retires workers idle for 10 s only when it is next used: one GET /
            await asyncio.to_thread(lambda: urllib.request.urlopen(f"{url}/", timeout=10).read())
            await asyncio.sleep(0.5)
            g = monitor.now()
            print(f"  {after:>4.0f} s later: RSS {s['rss_mb']:.0f} MB ({100 * (s['rss_mb'] / base['rss_mb'] - 1):+.0f} % "
                  f"against the baseline; anonymous {anon:.0f} MB, {anon - base_anon:+.0f}), {s['threads']} threads, "
                  f"{g['threads']} after one GET / "
                  f"(baseline {base['threads']})")
        print(f"  threads left: {thread_names(proc.pid)}")
        verdict(args, results, base, monitor.now())
    finally:
        for t in trainers:
            await t.close()
        if monitor.task is not None:
            monitor.task.cancel()
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except Exception:  # noqa: BLE001
            proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def verdict(args, results, base, last) -> None:
    T, n = max(args.trainers), max(args.n)
    one, many, alone = results.get((T, args.n[0])), results.get((T, n)), results.get((min(args.trainers), args.n[0]))
    print("\ngoals (issue 9):")
    if one and many and args.n[0] == 1:
        for key, what in (("server", "server rerun"), ("browser", "Chromium edit → chart")):
            if many[key] and one[key]:
                same = pct(many[key], 0.95) / pct(one[key], 0.95)
                line = f"  {what}: p95 with N = {n}, T = {T} is {same:.2f}× N = 1's with T = {T}"
                if alone and alone[key] and alone is not one:
                    line += f", {pct(many[key], 0.95) / pct(alone[key], 0.95):.2f}× N = 1's alone"
                print(line + f" (goal ≤ 2×: {'met' if same <= 2 else 'not met'})")
    print(f"  threads {last['threads']} against {base['threads']} at the baseline "
          f"({'all gone' if last['threads'] <= base['threads'] else 'not all gone'}); RSS "
          f"{100 * (last['rss_mb'] / base['rss_mb'] - 1):+.0f} % ("
          f"{'within' if abs(last['rss_mb'] / base['rss_mb'] - 1) <= 0.2 else 'outside'} 20 %)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="N = 1, 10; 15 s per phase; one sample 20 s after")
    ap.add_argument("--n", default=None, help="editing viewers per phase, e.g. 1,10,20 (start with 1)")
    ap.add_argument("--trainers", default="0,3", help="training sessions, e.g. 0,3")
    ap.add_argument("--seconds", type=float, default=None, help="edits per phase last this long (≤ 60)")
    ap.add_argument("--interval", type=float, default=3.0, help="seconds between one viewer's edits (mean)")
    ap.add_argument("--browsers", type=int, default=2, help="Chromium pages among the N editing viewers")
    ap.add_argument("--after", default=None, help="seconds after the pages close to read RSS and threads")
    ap.add_argument("--pymalloc", action="store_true",
                    help="start the server with the default allocators, not gspo_viz.ui.memory.SERVER_ENV")
    ap.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                    help="one more environment variable for the server (repeatable), e.g. MALLOC_ARENA_MAX=2")
    ap.add_argument("--budget", type=float, default=1500, help="stop the whole run after this many seconds")
    args = ap.parse_args()
    args.n = [int(x) for x in (args.n or ("1,10" if args.quick else "1,10,20")).split(",")]
    args.trainers = [int(x) for x in args.trainers.split(",")]
    args.seconds = min(60.0, args.seconds or (15.0 if args.quick else 40.0))
    args.after = [float(x) for x in (args.after or ("20" if args.quick else "60,130")).split(",")]
    if not all("=" in kv for kv in args.server_env):
        ap.error("--server-env needs NAME=VALUE")
    defaults = {"PYTHONMALLOC": "pymalloc"} if args.pymalloc else dict(SERVER_ENV)   # explicit: not inherited
    args.server_env = defaults | dict(kv.split("=", 1) for kv in args.server_env)
    if not all(n >= 1 for n in args.n) or not all(0 <= t <= 16 for t in args.trainers) or args.interval <= 0:
        ap.error("--n needs counts ≥ 1, --trainers counts 0..16, --interval > 0")
    asyncio.run(asyncio.wait_for(main_async(args), args.budget))


if __name__ == "__main__":
    main()
