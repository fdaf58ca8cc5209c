"""Large groups in the Token Lab, in Chromium. Nothing here is asserted by a test; run it and read the numbers.

python benchmarks/bench_big_groups.py [--sizes 16x1024,256x256] [--edits 5] [--timeout 300]

For each size G×T (the README's limits allow 256 responses, 4,096 tokens per response, 65,536 in all): a seeded
group is imported through the sidebar's file uploader into a fresh server's Token Lab (GRPO, GSPO and Dual-Clip side
by side), then:

1. import → charts: the time until the Dual-Clip gradient chart holds the numbers the repository's own figure
   builder (gspo_viz.views.plots.heatmaps) puts there, and the websocket bytes the browser received meanwhile;
2. edit → chart: Dual-Clip c alternates 1.5 and 2.5; the time until the chart holds the new numbers, and the bytes;
3. "Show every number": the time until the table and its download button appear, and the bytes;
4. the server's resident memory at the end.

A step that does not finish within --timeout seconds is reported as such and the size's later steps are skipped.
"""
import argparse
import json
import math
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
import server  # noqa: E402  (benchmarks/server.py: the app on a free port)


def big_group(G: int, T: int, seed: int = 0, drift: float = 0.5) -> dict:
    """G responses of T tokens: p_old = σ(N(1, 1.5²)), log p_new = log p_old + drift·N(0, 1) (capped at 0),
    reward 1 or 0 at random. Six decimals per probability keep 256 × 256 under the 2 MB file limit."""
    rng = random.Random(seed)
    responses = []
    for _ in range(G):
        p_old = [round(max(1e-6, 1 / (1 + math.exp(-rng.gauss(1.0, 1.5)))), 6) for _ in range(T)]
        p_new = [round(min(1.0, max(1e-6, p * math.exp(drift * rng.gauss(0.0, 1.0)))), 6) for p in p_old]
        responses.append({"p_old": p_old, "p_new": p_new, "reward": float(rng.random() < 0.5)})
    return {"title": f"Large group {G} × {T}", "responses": responses, "settings": {}}


def expected_sum(data: dict, c: float) -> float:
    """Σ|z| of the Dual-Clip gradient chart (its first page) as this repository's figure builder draws it."""
    from gspo_viz import parse_scenario, run_scenario
    from gspo_viz.views.plots import heatmaps
    scn = dict(data, settings=dict(data["settings"], dual_clip_c=c))
    fig = heatmaps(run_scenario(parse_scenario(scn), "dual_clip"), 300)[1]
    return sum(abs(v) for row in fig.data[0].z for v in row if v is not None)


CHART_SUM = """(target) => {
    const gd = [...document.querySelectorAll('.js-plotly-plot')].find(
        g => g.layout && g.layout.title && g.layout.title.text.includes('Dual-Clip PPO: gradient'));
    if (!gd || !gd.data || !gd.data[0] || !gd.data[0].z) return false;
    let s = 0;
    for (const row of gd.data[0].z) for (const v of row) if (v !== null && v !== undefined) s += Math.abs(v);
    return Math.abs(s - target) <= 1e-7 * Math.max(1, target);
}"""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def run_size(G: int, T: int, edits: int, timeout: float) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    data = big_group(G, T)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"group_{G}x{T}.json"
        path.write_text(json.dumps(data, separators=(",", ":")))
        sums = {c: expected_sum(data, c) for c in (3.0, 1.5, 2.5)}
        assert abs(sums[1.5] - sums[2.5]) > 1e-6 * max(1.0, sums[1.5]), "the edit must change the chart"
        print(f"\n{G} × {T} = {G * T:,} tokens (file {path.stat().st_size / 1e6:.2f} MB)", flush=True)
        proc, url = server.start()
        received = [0]
        try:
            with sync_playwright() as p:
                b = p.chromium.launch(executable_path="/usr/bin/chromium", args=server.FLAGS)
                page = b.new_page(viewport={"width": 1500, "height": 2000})
                page.on("websocket", lambda ws: ws.on(
                    "framereceived", lambda payload: received.__setitem__(0, received[0] + len(payload))))
                page.goto(f"{url}/token_lab")
                page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 7",
                                       timeout=60_000)

                def step(label: str, act, wait) -> bool:
                    received[0] = 0
                    t0 = time.perf_counter()
                    act()
                    try:
                        wait()
                    except PlaywrightTimeout:
                        print(f"   {label}: not done within {timeout:.0f} s ({mb(received[0])} received so far)",
                              flush=True)
                        return False
                    ms = (time.perf_counter() - t0) * 1e3
                    print(f"   {label}: {ms:8.0f} ms, websocket {mb(received[0])}", flush=True)
                    step.times.append(ms)
                    step.bytes.append(received[0])
                    return True
                step.times, step.bytes = [], []

                def settle():
                    """Until the run is over: Streamlit re-mounts a widget whose place in the page moved (the
                    import's one-off message above it went away), and the old one lingers until the run ends."""
                    page.wait_for_function("""() => document.querySelectorAll('input[aria-label="Dual-Clip c"]')
                        .length === 1 && !document.querySelector('[data-testid="stStatusWidget"] button')""",
                                           timeout=timeout * 1e3, polling=100)

                def wait_sum(c):
                    return lambda: page.wait_for_function(CHART_SUM, arg=sums[c], timeout=timeout * 1e3, polling=50)

                ok = step("1. import → charts", lambda: page.locator('input[type="file"]').set_input_files(str(path)),
                          wait_sum(3.0))
                if ok:
                    step.times, step.bytes = [], []
                    box = page.get_by_role("spinbutton", name="Dual-Clip c")
                    for k in range(edits):
                        c = 1.5 if k % 2 == 0 else 2.5
                        settle()

                        def edit(c=c):
                            box.fill(f"{c:.2f}")
                            box.press("Enter")
                        if not step(f"2. edit c = {c} → chart", edit, wait_sum(c)):
                            ok = False
                            break
                        page.wait_for_timeout(200)
                    if step.times:
                        print(f"   edit → chart: median {statistics.median(step.times):.0f} ms, max "
                              f"{max(step.times):.0f} ms; websocket median {mb(statistics.median(step.bytes))} per "
                              f"edit (n = {len(step.times)})", flush=True)
                if ok:
                    settle()
                    toggle = page.get_by_text("Show every number", exact=False)
                    step("3. 'Show every number' → table", lambda: toggle.click(),
                         lambda: page.get_by_text("Download as CSV").wait_for(timeout=timeout * 1e3))
                print(f"   server RSS at the end: {rss_mb(proc.pid):.0f} MB", flush=True)
                b.close()
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except Exception:  # noqa: BLE001
                proc.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="16x1024,256x256")
    ap.add_argument("--edits", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()
    for size in args.sizes.split(","):
        G, T = (int(x) for x in size.lower().split("x"))
        run_size(G, T, args.edits, args.timeout)


if __name__ == "__main__":
    main()
