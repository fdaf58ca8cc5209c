"""Serve a class: several `streamlit run app.py` processes behind nginx, with sticky sessions.

    python deploy/serve.py --processes 2 --port 8080

Starts N app processes on free loopback ports, writes nginx's configuration from deploy/nginx.conf.template into a
work directory (a new temporary one unless --workdir is given) and runs nginx in the foreground as a child. Every
browser gets a route cookie from nginx on its first request, and all its requests (the websocket, file uploads)
go to the process that cookie hashes to. Ctrl-C or SIGTERM stops nginx and every app process.

Needs nginx (`apt-get install -y nginx`); runs as any user (nothing is written outside the work directory).
Exit codes: 0 after Ctrl-C/SIGTERM, 1 when a child stops on its own or does not start, 3 when nginx is missing or
refuses its configuration.
"""
from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from gspo_viz.ui.memory import SERVER_ENV  # noqa: E402  (the allocators a server should start with: issue 9)
TEMPLATE = Path(__file__).resolve().parent / "nginx.conf.template"
NO_NGINX = 3


def find_nginx() -> str | None:
    """nginx on PATH, or in /usr/sbin (not on a normal user's PATH on Debian)."""
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
                                          if os.access(p, os.X_OK)), None)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def render(workdir: Path, listen: str, ports: list[int]) -> str:
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=0;" for p in ports)
    text = TEMPLATE.read_text(encoding="utf-8")
    for key, value in {"workdir": str(workdir), "listen": listen, "servers": servers}.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def wait_healthy(url: str, procs: list[subprocess.Popen], timeout: float, stopping: list) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stopping:
        if healthy(url):
            return True
        if any(p.poll() is not None for p in procs):
            return False
        time.sleep(0.2)
    return False


def stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM to every child (nginx first: it is the last in the list), then SIGKILL after 15 s."""
    for p in reversed(procs):
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + 15
    for p in reversed(procs):
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--processes", type=int, default=2, help="streamlit processes (1 to 16; default 2)")
    ap.add_argument("--port", type=int, default=8080, help="the port nginx listens on (default 8080)")
    ap.add_argument("--host", default="127.0.0.1", help="the address nginx listens on (0.0.0.0: every interface)")
    ap.add_argument("--workdir", default=None, help="where the nginx config and the logs go (default: a new "
                                                    "temporary directory, removed on exit)")
    args = ap.parse_args(argv)
    if not 1 <= args.processes <= 16:
        ap.error("--processes must be 1 to 16")
    nginx = find_nginx()
    if nginx is None:
        print("serve: nginx is not installed (Debian: apt-get install -y nginx)", file=sys.stderr)
        return NO_NGINX

    own_dir = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="gspo-viz-serve-") if own_dir else args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o755)       # nginx's workers run as nobody when nginx starts as root
    stopping = []

    def on_signal(signum, frame):
        stopping.append(signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    procs: list[subprocess.Popen] = []
    # one cookie secret for all processes, so a cookie one of them signed is valid at the others
    env = dict(os.environ, STREAMLIT_SERVER_COOKIE_SECRET=secrets.token_hex(32), PYTHONUNBUFFERED="1", **SERVER_ENV)
    try:
        ports = [free_port() for _ in range(args.processes)]
        conf = workdir / "nginx.conf"
        conf.write_text(render(workdir, f"{args.host}:{args.port}", ports), encoding="utf-8")
        cmd = [nginx, "-p", str(workdir), "-e", str(workdir / "error.log"), "-c", str(conf)]
        try:                       # before anything starts: can nginx run here, and does it take the config?
            check = subprocess.run(cmd + ["-t"], capture_output=True, text=True, timeout=30)
        except OSError as e:
            print(f"serve: nginx ({nginx}) cannot run: {e}", file=sys.stderr)
            return NO_NGINX
        if check.returncode != 0:
            print(f"serve: nginx refused the configuration {conf}:\n{check.stderr.strip()}", file=sys.stderr)
            return NO_NGINX
        for port in ports:
            log = open(workdir / f"streamlit-{port}.log", "w", encoding="utf-8")
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                 "--server.address", "127.0.0.1", "--server.headless", "true"],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True))
            log.close()
        for port in ports:
            if not wait_healthy(f"http://127.0.0.1:{port}", procs, 120, stopping) or stopping:
                if not stopping:
                    print(f"serve: streamlit on port {port} did not start; see {workdir}/streamlit-{port}.log",
                          file=sys.stderr)
                return 0 if stopping else 1
        with open(workdir / "nginx.stderr", "w", encoding="utf-8") as err:
            procs.append(subprocess.Popen(cmd + ["-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=err,
                                          start_new_session=True))
        shown = "localhost" if args.host in ("127.0.0.1", "0.0.0.0") else args.host
        url = f"http://{'127.0.0.1' if args.host == '0.0.0.0' else args.host}:{args.port}"
        if not wait_healthy(url, procs, 30, stopping):
            if stopping:
                return 0
            err = (workdir / "nginx.stderr").read_text(errors="replace").strip()
            print(f"serve: nginx did not answer on {args.host}:{args.port}: {err or 'see ' + str(workdir)}",
                  file=sys.stderr)
            return NO_NGINX if procs[-1].poll() is not None else 1
        print(f"serve: http://{shown}:{args.port} → nginx (sticky route cookie) → "
              f"{len(ports)} streamlit processes on 127.0.0.1:{', '.join(map(str, ports))}; "
              f"config and logs in {workdir}. Ctrl-C stops everything.", flush=True)
        while not stopping:
            dead = [p for p in procs if p.poll() is not None]
            if dead:
                print(f"serve: {' '.join(dead[0].args[:1])} (pid {dead[0].pid}) exited with {dead[0].returncode}; "
                      "stopping", file=sys.stderr)
                return 1
            time.sleep(0.5)
        return 0
    finally:
        stop(procs)
        if own_dir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
