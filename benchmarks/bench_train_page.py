"""How often the Train page's charts refresh while training, and how viewers share the training slots. Nothing here
is asserted by a test; run it and read it.

python benchmarks/bench_train_page.py [--seconds 20] [--preset NAME] [--viewers N] [--slots S]

Starts `streamlit run app.py` (with GSPO_VIZ_TRAINING_SLOTS=S when --slots is given), opens the Train page in N
Chromium pages (default 1) and presses Start in each, one after the other. Records in each page every time its
reward chart's data changes (one refresh = the chart redrawn with new steps) and, once a second, what its status line
says (training, or its place in line). Prints per page: refreshes per second (target with one viewer: >= 2), the
gaps between refreshes, the share of the time it trained and waited, the places in line it was told, the training
speed its page reports. Then presses Pause everywhere and prints the server's threads and resident memory
(/proc/PID/status) before Start, while training, and after Pause (the training workers end with the last session).
"""
import argparse
import os
import re
import statistics
import time
from pathlib import Path

import server  # benchmarks/server.py: the app on a free port

# Polls the training chart (its panel 'mean reward') every 10 ms and notes the time whenever its number of plotted
# steps changes.
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
# the page's status line: "Waiting: 2nd in line; …" (an info box) or "Training on the server's …" (a caption)
STATUS = """() => {
    const text = document.body.innerText;
    const wait = text.match(/Waiting: (\\d+)\\w\\w in line/);
    if (wait) return 'waiting ' + wait[1];
    if (/Training on (the|one of the) server's/.test(text)) return 'training';
    return 'other';
}"""


def proc(pid: int) -> str:
    """Threads and resident memory of the server process."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return f"{int(fields['Threads'])} threads, {int(fields['VmRSS'].split()[0]) / 1024:.0f} MB resident"


def main():
    from playwright.sync_api import sync_playwright

    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--preset", default=None, help="a Train preset's name (default: the page's default)")
    ap.add_argument("--viewers", type=int, default=1, help="Chromium pages that press Start")
    ap.add_argument("--slots", type=int, default=None, help="GSPO_VIZ_TRAINING_SLOTS for the server")
    args = ap.parse_args()
    if args.slots is not None:
        os.environ["GSPO_VIZ_TRAINING_SLOTS"] = str(args.slots)
    proc_, url = server.start()
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path="/usr/bin/chromium", args=server.FLAGS)
            pages = []
            for _ in range(args.viewers):
                page = b.new_page(viewport={"width": 1500, "height": 1600})
                page.goto(f"{url}/train")
                page.get_by_role("button", name="Start").wait_for(timeout=60_000)
                if args.preset:
                    page.get_by_label("Training preset").click()
                    page.get_by_role("option", name=args.preset).click()
                    page.wait_for_timeout(1500)
                page.evaluate(WATCH)
                pages.append(page)
            before = proc(proc_.pid)
            for page in pages:
                page.get_by_role("button", name="Start").click()
            # the first refresh of the first page marks the start; count from there
            pages[0].wait_for_function("() => window.__refresh.length >= 2", timeout=60_000)
            t0 = time.time()
            statuses = [[] for _ in pages]
            during = before
            while time.time() - t0 < args.seconds:
                for k, page in enumerate(pages):
                    statuses[k].append(page.evaluate(STATUS))
                during = proc(proc_.pid)
                time.sleep(max(0.0, 1.0 - 0.05 * len(pages)))
            marks = [page.evaluate("() => window.__refresh") for page in pages]
            captions = []
            for page in pages:
                found = page.get_by_text(re.compile(r"steps in all"))
                captions.append(found.first.inner_text() if found.count() else "(no steps yet)")
            for page in pages:
                pause = page.get_by_role("button", name="Pause")
                if pause.is_enabled():
                    pause.click()
            time.sleep(2)
            after = proc(proc_.pid)
            b.close()
        print(f"Train page ({args.preset or 'default preset'}), {args.viewers} viewer(s) pressing Start, "
              f"{args.seconds:.0f} s watched; slots: {args.slots or 'the default'}")
        for k, (m, seen, caption) in enumerate(zip(marks, statuses, captions)):
            m = m[1:] if k == 0 else m            # page 1's first refresh marked the start
            gaps = sorted(b_ - a for a, b_ in zip(m, m[1:]))
            span = (m[-1] - m[0]) / 1e3 if len(m) > 1 else float("nan")
            training = sum(s == "training" for s in seen) / max(1, len(seen))
            places = sorted({int(s.split()[1]) for s in seen if s.startswith("waiting")})
            line = f"   viewer {k + 1}: trained {training:.0%} of the samples"
            if places:
                line += f", waited the rest (told places {places})"
            if gaps:
                line += (f"; {len(gaps)} chart refreshes in {span:.1f} s, gaps median {statistics.median(gaps):.0f} "
                         f"ms, max {gaps[-1]:.0f} ms")
            print(line + f"; its page says: {caption}")
        if args.viewers == 1 and len(marks[0]) > 2:
            m = marks[0][1:]
            print(f"   chart refreshes per second: {(len(m) - 1) / ((m[-1] - m[0]) / 1e3):.2f} (target >= 2)")
        print(f"   server: before Start {before}; while training {during}; 2 s after Pause {after}")
    finally:
        proc_.terminate()
        proc_.wait(timeout=20)


if __name__ == "__main__":
    main()
