"""Start-up cost of the command line against torch's own import, measured in one run.

Run: python benchmarks/bench_cli.py [--runs N]. Interleaves N runs (default 7) each of
  1. python -c "import torch"                                        (the floor: the CLI needs torch)
  2. python -m gspo_viz explain examples/movie_five_tokens.json       (one file)
  3. python -m gspo_viz explain examples/                             (every example in one call)
and prints the median wall time of each and the ratios to (1). Goal: (2) <= 1.3 x (1). Nothing is asserted by a
test. Interleaving spreads the machine's background load over all three alike.
"""
import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "import torch": [sys.executable, "-c", "import torch"],
    "explain one file": [sys.executable, "-m", "gspo_viz", "explain", "examples/movie_five_tokens.json"],
    "explain examples/ (all)": [sys.executable, "-m", "gspo_viz", "explain", "examples/"],
}


def wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    for cmd in COMMANDS.values():  # warm the file cache once, not measured
        wall(cmd)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.runs):
        for name, cmd in COMMANDS.items():
            times[name].append(wall(cmd))
    files = len(list((ROOT / "examples").glob("*.json")))
    base = statistics.median(times["import torch"])
    print(f"median of {args.runs} interleaved runs (wall time)")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"  {name:<26} {med:6.2f} s  ({med / base:.2f} x import torch; min {min(ts):.2f}, max {max(ts):.2f})")
    one = statistics.median(times["explain one file"])
    every = statistics.median(times["explain examples/ (all)"])
    print(f"  per extra file in one call: {(every - one) / (files - 1) * 1e3:.0f} ms ({files} files)")
    print(f"goal: explain one file <= 1.3 x import torch: {'met' if one <= 1.3 * base else 'NOT met'}")


if __name__ == "__main__":
    main()
