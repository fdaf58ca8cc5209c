"""Speed of the pages. Nothing here is asserted by a test; run it and read the numbers.

python benchmarks/bench_pages.py [--edits 20] [--loads 3] [--no-apptest] [--no-browser] [--ports LAB TRIVIAL]

1. Server-side rerun time after a control change, per page (AppTest, default scenario: 8 responses × up to 28
   tokens, 3 objectives): median and p95 over N edits.
2. In Chromium, side by side in one run: a trivial one-chart Streamlit app (benchmarks/trivial_app.py: one number box,
   one 8 × 28 heatmap) and the Token Lab. Edit → updated chart: the time from pressing Enter in a number box (the
   trivial app's c; the Token Lab's Dual-Clip c, alternating 3 and 5) until the chart holds the new numbers (the
   Token Lab: Dual-Clip's map in the gradient figure holds the core's weights for the new c); the two pages are edited
   in turn, so load on the machine falls on both. Goal: the Token Lab's median at most 1.5 × the trivial app's.
3. First load: `streamlit run` of each app on a fresh process (the browser already running), then its page opened
   until every chart is drawn, from the process start; each app `--loads` times, in turn. Also a new session's load
   on the warm server. Goal: the Token Lab's at most 1.3 × the trivial app's.
The machine's load average is printed with the figures (the numbers are noisy on a shared machine).
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 720}     # the projector's; the sidebar open, as a first visitor sees it


def stats(ms: list[float]) -> str:
    return f"median {median(ms):6.1f} ms, p95 {p95(ms):6.1f} ms (n = {len(ms)})"


def median(ms: list[float]) -> float:
    return statistics.median(ms)


def p95(ms: list[float]) -> float:
    ms = sorted(ms)
    return ms[int(0.95 * (len(ms) - 1))]


def loadavg() -> str:
    try:
        return "load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "load average unknown"


# ------------------------------------------------------------------------------------------------ 1. AppTest
def apptest_reruns(edits: int) -> None:
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import AppTest

    original = PagesManager.__init__

    def init(self, *args, **kwargs):  # a live server after its first request runs in st.navigation mode
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    PagesManager.__init__ = init

    def edit_probability(at, k):
        if not at.session_state["ctl"].get("edit"):
            at.toggle(key="ctl_edit_0").set_value(True).run()
        at.session_state[f"tok_ed_{at.session_state['version']}_p"] = {
            "edited_rows": {2: {"p_new": 0.2 + 0.05 * (k % 6)}}, "added_rows": [], "deleted_rows": []}

    cases = {
        "Token Lab (Dual-Clip c)": ("pages/1_token_lab.py", lambda at, k: at.number_input(
            key=f"c_{at.session_state['version']}").set_value(3.0 + (k % 4) * 0.5)),
        "Token Lab (a p_new cell)": ("pages/1_token_lab.py", edit_probability),
        "Clip Explorer": ("pages/2_clip_explorer.py", lambda at, k: at.slider(key="ctl_ce_grpo_eps_high_0")
                          .set_value(0.1 + (k % 5) * 0.05)),
        "Length & Aggregation": ("pages/3_length_aggregation.py", lambda at, k: at.slider(key="ctl_la_G_0")
                                 .set_value(4 + k % 8)),
        "Formula Checker": ("pages/4_formula_checker.py", lambda at, k: at.selectbox(key="ctl_fc_token_0")
                            .select(k % 8)),
    }
    print("1. rerun after a control change: the script's own run time (app.py's timer) | AppTest's wall time "
          "(AppTest compiles the page on every run; a live server does not)")
    for name, (page, edit) in cases.items():
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.run()
        at.switch_page(page).run()
        script, wall = [], []
        for k in range(edits + 2):
            edit(at, k + 1)
            t0 = time.perf_counter()
            at.run()
            if k >= 2:  # the first two reruns warm caches
                wall.append((time.perf_counter() - t0) * 1e3)
                script.append(at.session_state["last_run_ms"])
            assert not at.exception, at.exception
        print(f"   {name:<26} {stats(script)} | {stats(wall)}")


# ------------------------------------------------------------------------------------------------ the two apps
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PORTS: dict[str, int] = {}   # script → the port to serve it on (--ports); a free port otherwise


def start(script: str) -> tuple[subprocess.Popen, str, float]:
    """`streamlit run script` on its port: (process, url, seconds from the process start to its health check)."""
    port = PORTS.get(script) or free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", script, "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true",
                             "--browser.gatherUsageStats", "false"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1):
                return proc, url, time.perf_counter() - t0
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"streamlit run {script} did not start") from None
            time.sleep(0.02)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


# every chart drawn: each Plotly div has its data laid out and its SVG (or heatmap image) in place
DRAWN = """(n) => { const g = [...document.querySelectorAll('.js-plotly-plot')];
    return g.length >= n && g.every(d => d._fullLayout && d.querySelector('.main-svg') &&
        d.querySelectorAll('.trace, image').length > 0); }"""


class App:
    """One app in the comparison: its script, its page, how many charts it draws, and its edit."""

    def __init__(self, name: str, script: str, path: str, charts: int, box: str, values: tuple, check: str, expect):
        self.name, self.script, self.path, self.charts = name, script, path, charts
        self.box, self.values, self.check, self.expect = box, values, check, expect


def trivial_app() -> App:
    def expect(c: float) -> float:
        return sum(c * (1 + i) * (1 + t) / 100 for t in range(28) for i in range(8))
    check = """(target) => { const gd = document.querySelector('.js-plotly-plot');
        if (!gd || !gd.data) return false; let s = 0;
        for (const row of gd.data[0].z) for (const v of row) s += v;
        return Math.abs(s - target) <= 1e-9 * Math.max(1, Math.abs(target)); }"""
    return App("trivial one-chart app", "benchmarks/trivial_app.py", "", 1, "c", (3.5, 3.0), check, expect)


def token_lab() -> App:
    from gspo_viz import parse_scenario, run_scenario
    base = json.loads((ROOT / "examples/default_group.json").read_text())

    def expect(c: float) -> float:
        scn = dict(base, settings=dict(base["settings"], dual_clip_c=c))
        return float(run_scenario(parse_scenario(scn), "dual_clip").explanation.grad_weight.abs().sum())
    assert abs(expect(3.0) - expect(5.0)) > 1e-6  # each edit really changes the chart
    # Dual-Clip's map in the gradient figure (the trace whose meta names the objective)
    check = """(target) => {
        const gd = [...document.querySelectorAll('.js-plotly-plot')].find(
            g => g.layout && g.layout.title && g.layout.title.text.startsWith('Gradient weight'));
        if (!gd) return false;
        const tr = gd.data.find(t => t.type === 'heatmap' && t.meta === 'dual_clip');
        if (!tr) return false; let s = 0;
        for (const row of tr.z) for (const v of row) if (v !== null) s += Math.abs(v);
        return Math.abs(s - target) <= 1e-9 * Math.max(1, target); }"""
    return App("Token Lab", "app.py", "/token_lab", 3, "Dual-Clip c", (5.0, 3.0), check, expect)


def first_loads(browser, apps: list[App], loads: int) -> dict:
    """Per app: process start → every chart drawn on the first page opened, and a new session's load after."""
    out = {a.name: {"first": [], "health": [], "again": []} for a in apps}
    for k in range(loads):
        for app in apps:
            page = browser.new_page(viewport=VIEWPORT)
            t0 = time.perf_counter()
            proc, url, health = start(app.script)
            try:
                page.goto(url + app.path)
                page.wait_for_function(DRAWN, arg=app.charts, timeout=120_000, polling=10)
                first = time.perf_counter() - t0
                other = browser.new_page(viewport=VIEWPORT)
                t1 = time.perf_counter()
                other.goto(url + app.path)
                other.wait_for_function(DRAWN, arg=app.charts, timeout=60_000, polling=10)
                again = time.perf_counter() - t1
                other.close()
            finally:
                page.close()
                stop(proc)
            out[app.name]["first"].append(1e3 * first)
            out[app.name]["health"].append(1e3 * health)
            out[app.name]["again"].append(1e3 * again)
    return out


def edit_times(browser, apps: list[App], edits: int) -> dict:
    """Per app: Enter in its number box → its chart holds the new numbers; the apps are edited in turn."""
    servers, pages, expected = {}, {}, {}
    try:
        for app in apps:
            proc, url, _ = start(app.script)
            servers[app.name] = proc
            page = browser.new_page(viewport={"width": 1500, "height": 2000})
            page.goto(url + app.path)
            page.wait_for_function(DRAWN, arg=app.charts, timeout=120_000, polling=10)
            pages[app.name] = page
            expected[app.name] = {c: app.expect(c) for c in app.values}
        times = {a.name: [] for a in apps}
        for k in range(edits + 2):
            for app in apps:
                page = pages[app.name]
                c = app.values[k % 2]
                box = page.get_by_role("spinbutton", name=app.box)
                box.fill(f"{c:.2f}")
                t0 = time.perf_counter()
                box.press("Enter")
                page.wait_for_function(app.check, arg=expected[app.name][c], timeout=20_000, polling=5)
                if k >= 2:   # the first two edits warm caches
                    times[app.name].append(1e3 * (time.perf_counter() - t0))
                page.wait_for_timeout(150)
        return times
    finally:
        for proc in servers.values():
            stop(proc)


def browser_comparison(edits: int, loads: int) -> None:
    from playwright.sync_api import sync_playwright
    apps = [trivial_app(), token_lab()]
    trivial, lab = (a.name for a in apps)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
        print(f"2. Chromium, edit → updated chart ({loadavg()}):")
        times = edit_times(b, apps, edits)
        for name, ms in times.items():
            print(f"   {name:<24} {stats(ms)}")
        ratio = median(times[lab]) / median(times[trivial])
        print(f"   Token Lab / trivial: median {ratio:.2f}× (goal <= 1.5×), p95 "
              f"{p95(times[lab]) / p95(times[trivial]):.2f}× — {'met' if ratio <= 1.5 else 'not met'} ({loadavg()})")
        print(f"3. first load: process start → every chart drawn on the first page opened ({loads} each, in turn; "
              f"{loadavg()}):")
        loads_ms = first_loads(b, apps, loads)
        for name, d in loads_ms.items():
            print(f"   {name:<24} median {median(d['first']):6.0f} ms (each: "
                  f"{', '.join(f'{x:.0f}' for x in d['first'])}; process start → healthy {median(d['health']):.0f} ms)"
                  f"; a new session on the warm server: median {median(d['again']):.0f} ms")
        ratio = median(loads_ms[lab]["first"]) / median(loads_ms[trivial]["first"])
        warm = median(loads_ms[lab]["again"]) / median(loads_ms[trivial]["again"])
        print(f"   Token Lab / trivial: first load {ratio:.2f}× (goal <= 1.3×) — {'met' if ratio <= 1.3 else 'not met'}; "
              f"a new session on a warm server {warm:.2f}× ({loadavg()})")
        b.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--edits", type=int, default=20)
    ap.add_argument("--loads", type=int, default=3)
    ap.add_argument("--no-apptest", action="store_true")
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--ports", type=int, nargs=2, metavar=("LAB", "TRIVIAL"),
                    help="serve the app and the trivial app on these ports (default: free ones)")
    args = ap.parse_args()
    if args.ports:
        PORTS.update({"app.py": args.ports[0], "benchmarks/trivial_app.py": args.ports[1]})
    if not args.no_apptest:
        apptest_reruns(args.edits)
    if not args.no_browser:
        browser_comparison(args.edits, args.loads)


if __name__ == "__main__":
    main()
