"""Test-wide settings: torch runs one intra-op thread (on a busy 2-core machine the suite took 437 s with torch's
default threads and 212 s pinned), and hypothesis keeps no example database in the checkout and draws the same
examples on every run, so CI passes or fails on the code alone; `pytest --hypothesis-profile=explore` draws fresh
ones (a case it finds goes beside its test as an @example)."""
import torch
from hypothesis import settings

torch.set_num_threads(1)
settings.register_profile("repeatable", database=None, derandomize=True, print_blob=True)
settings.register_profile("explore", database=None, derandomize=False, print_blob=True)
settings.load_profile("repeatable")


import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def navigation_mode(monkeypatch):
    """AppTest runs the app as a live server does after its first request: in st.navigation mode.

    Streamlit 1.67 treats an app with a pages/ folder as a legacy multipage app until a run calls st.navigation, and
    AppTest resets that flag (PagesManager.uses_pages_directory) before every run, so each page would first run
    alone and be rerun through app.py by gspo_viz.ui.state.require_app (the app's one workaround); the discarded
    first pass swallows one-shot button clicks. The first-request path itself is covered by the browser test, which
    opens a page link on a fresh server.
    """
    from streamlit.runtime.pages_manager import PagesManager
    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


CHROMIUM = "/usr/bin/chromium"   # Debian's Chromium: Playwright cannot download its own browser here
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    """Headless system Chromium driven by Playwright, one per test module; skips with the install hint when missing."""
    from pathlib import Path
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -r requirements-test.txt (playwright)")
    if not Path(CHROMIUM).exists():
        pytest.skip("no Chromium at /usr/bin/chromium: install it with `apt-get install -y chromium`")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield b
        b.close()


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server():
    """`streamlit run app.py` on a free localhost port, one for the whole session: every browser test module shares
    it (a server per module cost each one a torch import and a cold first page). tests/test_browser.py, the first
    module to use it, opens a page link first: the first-request path of a fresh server."""
    port = free_port()
    (_ROOT / "artifacts").mkdir(exist_ok=True)
    log = open(_ROOT / "artifacts" / "streamlit-test.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true",
                             "--browser.gatherUsageStats", "false"], cwd=_ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("streamlit did not start within 60 s; see artifacts/streamlit-test.log")
    yield url
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


