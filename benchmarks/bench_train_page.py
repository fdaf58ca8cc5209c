"""How often the Train page's charts refresh while training. Nothing here is asserted by a test; run it and read it.

python benchmarks/bench_train_page.py [--seconds 20] [--preset NAME]

Starts `streamlit run app.py`, opens the Train page in Chromium, presses Start, and records in the page itself every
time the reward chart's data changes (one refresh = the chart redrawn with new steps). Prints refreshes per second
(target: >= 2), the gaps between refreshes, the training speed the page reports, then presses Pause.
"""
import argparse
import re
import statistics

import server  # benchmarks/server.py: the app on a free port

# Polls the training chart (its panel 'mean reward') every 10 ms and notes the time whenever its number of plotted steps changes.
WATCH = """() => {
    window.__refresh = [];
    let last = null;
    setInterval(() => {
        const gd = [...document.querySelectorAll('.js-plotly-plot')].find(
            g => g.layout && (g.layout.annotations || []).some(a => String(a.text).includes('mean reward')));
        if (!gd || !gd.data || !gd.data.length) return;
        const n = gd.data.map(t => (t.x || []).length).join(',');
        if (n !== last) { last = n; window.__refresh.push(performance.now()); }
    }, 10);
}"""


def main():
    from playwright.sync_api import sync_playwright

    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--preset", default=None, help="a Train preset's name (default: the page's default)")
    args = ap.parse_args()
    proc, url = server.start()
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path="/usr/bin/chromium", args=server.FLAGS)
            page = b.new_page(viewport={"width": 1500, "height": 1600})
            page.goto(f"{url}/train")
            page.get_by_role("button", name="Start").wait_for(timeout=60_000)
            if args.preset:
                page.get_by_label("Training preset").click()
                page.get_by_role("option", name=args.preset).click()
                page.wait_for_timeout(1500)
            page.evaluate(WATCH)
            page.get_by_role("button", name="Start").click()
            # the first refresh marks the start; count from there
            page.wait_for_function("() => window.__refresh.length >= 2", timeout=60_000)
            t0 = page.evaluate("() => window.__refresh[window.__refresh.length - 1]")
            page.wait_for_timeout(args.seconds * 1000)
            marks = [t for t in page.evaluate("() => window.__refresh") if t >= t0]
            caption = page.get_by_text(re.compile(r"steps in all")).first.inner_text()
            page.get_by_role("button", name="Pause").click()
            page.wait_for_timeout(500)
            b.close()
        gaps = [b_ - a for a, b_ in zip(marks, marks[1:])]
        span = (marks[-1] - marks[0]) / 1e3 if len(marks) > 1 else float("nan")
        print(f"Train page ({args.preset or 'default preset'}), {args.seconds:.0f} s of training watched:")
        print(f"   chart refreshes: {len(gaps)} in {span:.1f} s = {len(gaps) / span:.2f} per second (target >= 2)")
        if gaps:
            gaps.sort()
            print(f"   gap between refreshes: median {statistics.median(gaps):.0f} ms, "
                  f"p95 {gaps[int(0.95 * (len(gaps) - 1))]:.0f} ms, max {gaps[-1]:.0f} ms")
        print(f"   the page says: {caption}")
    finally:
        proc.terminate()
        proc.wait(timeout=20)


if __name__ == "__main__":
    main()
