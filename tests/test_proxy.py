"""Serving a class: `python deploy/serve.py` (nginx in front of two `streamlit run app.py` processes, sticky by a
route cookie nginx sets) on loopback, driven by Playwright with the system Chromium.

Separate browser contexts (separate cookies) stand for separate viewers. nginx's access log names, per request, the
route cookie and the process that served it: each viewer's requests (page, websocket, file upload) all reach one
process, and the viewers use both. A scenario link opened through the proxy shows that scenario."""
import copy
import importlib.util
import json
import os
import random
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from gspo_viz import parse_scenario, run_scenario
from gspo_viz.scenarios.urlstate import encode_scenario
from gspo_viz.views.style import fmt

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
LINE = re.compile(r"route=(\S+) upstream=(\S+) status=(\d+) upgrade=(\S+) \"(\S+) (\S+)")

playwright = pytest.importorskip("playwright.sync_api", reason="pip install -r requirements-test.txt (playwright)")
if not Path(CHROMIUM).exists():
    pytest.skip("no Chromium at /usr/bin/chromium: install it with `apt-get install -y chromium` to run the "
                "browser tests", allow_module_level=True)

_spec = importlib.util.spec_from_file_location("serve", ROOT / "deploy" / "serve.py")
serve = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(serve)

if serve.find_nginx() is None:
    pytest.skip("nginx is not installed: `apt-get install -y nginx` to run the proxy test (.ci/run installs it)",
                allow_module_level=True)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    """deploy/serve.py with two processes on a free loopback port; yields (url, workdir)."""
    workdir = tmp_path_factory.mktemp("serve")
    port = serve.free_port()
    out = open(workdir.parent / "serve.out", "w+", encoding="utf-8")
    proc = subprocess.Popen([sys.executable, str(ROOT / "deploy" / "serve.py"), "--processes", "2", "--port",
                             str(port), "--workdir", str(workdir)], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            out.seek(0)
            if "serve: http" in out.read():
                break
            time.sleep(0.2)
        out.seek(0)
        said = out.read().strip()
        if proc.poll() == serve.NO_NGINX:
            pytest.skip(f"nginx is not runnable here: {said}")
        assert proc.poll() is None and "serve: http" in said, f"deploy/serve.py did not start: {said}"
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as r:
            assert r.status == 200
        yield url, workdir
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        out.close()
    # serve.py stops its children: nothing listens on the proxy's port any more
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)


def access_log(workdir: Path) -> list[dict]:
    rows = []
    for line in (workdir / "access.log").read_text(encoding="utf-8").splitlines():
        m = LINE.search(line)
        if m:
            rows.append(dict(zip(("route", "upstream", "status", "upgrade", "method", "uri"), m.groups())))
    return rows


def route_of(context) -> str:
    return next(c["value"] for c in context.cookies() if c["name"] == "route")


def big_scenario(path: Path) -> dict:
    """A valid scenario file of about 50 KB: larger than nginx's in-memory request buffer (16 KB)."""
    rng = random.Random(0)
    data = {"title": "Uploaded through the proxy", "responses": [
        {"tokens": [f"t{t}" for t in range(300)], "p_old": [round(rng.uniform(0.05, 0.95), 6) for _ in range(300)],
         "p_new": [round(rng.uniform(0.05, 0.95), 6) for _ in range(300)], "reward": float(i % 2)}
        for i in range(6)]}
    path.write_text(json.dumps(data), encoding="utf-8")
    assert path.stat().st_size > 32_000
    return data


def test_sessions_stick_to_one_process_and_spread(proxy, browser, tmp_path):
    url, workdir = proxy
    upload = big_scenario(tmp_path / "uploaded.json")
    viewers = {}                                   # route cookie -> did this viewer upload a file
    for k in range(16):                            # until the viewers used both processes (each: about 1/2)
        ctx = browser.new_context(viewport={"width": 1400, "height": 1200})
        page = ctx.new_page()
        page.goto(url)
        page.get_by_text("Three ways in").wait_for(timeout=30_000)
        uploaded = k == 0
        if uploaded:                               # an HTTP upload must reach the process that holds the websocket
            page.locator("input[type=file]").first.set_input_files(str(tmp_path / "uploaded.json"))
            page.get_by_text(upload["title"]).first.wait_for(timeout=30_000)
        viewers[route_of(ctx)] = uploaded
        ctx.close()                                # nginx logs a websocket when it closes
        if k >= 2 and len({r["upstream"] for r in access_log(workdir) if r["route"] in viewers}) >= 2:
            break
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:             # every viewer's websocket is in the log
        streams = {r["route"] for r in access_log(workdir) if r["uri"].startswith("/_stcore/stream")}
        if set(viewers) <= streams:
            break
        time.sleep(0.2)
    rows = access_log(workdir)
    used = {}
    for route, uploaded in viewers.items():
        mine = [r for r in rows if r["route"] == route]
        ws = [r for r in mine if r["uri"].startswith("/_stcore/stream")]
        assert ws and all(r["status"] == "101" and r["upgrade"] == "websocket" for r in ws), mine
        ups = {r["upstream"] for r in mine}
        assert len(ups) == 1, f"viewer {route} reached several processes: {mine}"
        assert any(r["uri"] == "/" for r in mine)
        if uploaded:
            assert any("/_stcore/upload_file/" in r["uri"] and r["status"].startswith("2") for r in mine), mine
        used[route] = ups.pop()
    assert len(set(used.values())) >= 2, f"every viewer went to one process: {used}"
    trouble = [line for line in (workdir / "error.log").read_text(encoding="utf-8").splitlines()
               if any(f"[{level}]" in line for level in ("crit", "alert", "emerg"))]
    assert not trouble, trouble                    # e.g. a temporary file the workers could not write


def test_link_through_the_proxy(proxy, browser):
    url, _ = proxy
    data = copy.deepcopy(json.loads((ROOT / "examples" / "movie_five_tokens.json").read_text()))
    data["title"] = "Opened through the proxy"
    data["responses"][0]["p_new"][2] = 0.61         # numbers no preset has
    loss = fmt(run_scenario(parse_scenario(data), "grpo").explanation.loss)
    ctx = browser.new_context(viewport={"width": 1500, "height": 2000})
    try:
        page = ctx.new_page()
        page.goto(f"{url}/token_lab?s={encode_scenario(data)}")
        page.get_by_text(data["title"]).first.wait_for(timeout=30_000)
        # the Token Lab's two map figures (one per kind, a map per objective); the group gives its advantages, so no
        # advantages chart
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .heatmaplayer').length >= 2",
                               timeout=60_000)
        # the metrics come after the maps in the page's run: wait for them (under load they arrive later)
        try:
            page.wait_for_function("(loss) => [...document.querySelectorAll('[data-testid=\"stMetricValue\"]')]"
                                   ".some(m => m.innerText === loss)", arg=loss, timeout=30_000)
        finally:
            metrics = page.locator('[data-testid="stMetricValue"]').all_inner_texts()
        assert loss in metrics, (loss, metrics)
    finally:
        ctx.close()
