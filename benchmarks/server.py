"""`streamlit run app.py` on a free localhost port for the browser benchmarks, and the Chromium flags."""
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(env: dict | None = None, port: int | None = None,
          timeout: float = 120.0) -> tuple[subprocess.Popen, str]:
    """Start the app and return (process, url) once its health check answers. Stop it with proc.terminate().

    env: extra environment variables for the server (e.g. GSPO_VIZ_RUN_LOG); port: a given loopback port."""
    port = port or free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ) | (env or {}))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1):
                return proc, url
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {proc.returncode} before it answered") from None
            if time.monotonic() > deadline:
                proc.terminate()
                proc.wait(timeout=20)
                raise RuntimeError(f"streamlit did not answer within {timeout:.0f} s") from None
            time.sleep(0.05)


def proc_status(pid: int) -> dict:
    """The process's resident memory (MB) and thread count, from /proc/PID/status (Linux)."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == "VmRSS":
            out["rss_mb"] = int(value.split()[0]) / 1024
        elif key == "Threads":
            out["threads"] = int(value)
    return out
