"""Speed and learning of the toy policy. Nothing here is asserted by a test; run it and read the numbers.

python benchmarks/bench_toy.py [--quick] [--cap SECONDS]

- steps/s of the dense and MoE defaults (16 prompts × 8 answers, 4 minibatches), 2 threads. Target (dense): >= 20.
- per objective, the median wall-clock seconds over 3 seeds until the mean partial reward over the last 5 steps
  reaches 0.9 on the default task (sort, 2–3 digits). Target: GSPO <= 15 s.
- three objectives trained side by side as on the Train page (two runs stepping at a time on the 2 cores, one
  intra-op thread each): seconds until all three reach 0.9. Target: <= 45 s. Also the mean clip fractions of GSPO
  and GRPO.
--quick: one seed and a 15 s cap per run (under a minute in all).
"""
import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gspo_viz.toy.session import make_runs, train_for  # noqa: E402
from gspo_viz.toy.train import TrainConfig, Trainer  # noqa: E402

OBJECTIVES = ("grpo", "gspo", "dual_clip")


def steps_per_second(cfg: TrainConfig, blocks: int = 5, steps: int = 20) -> list[float]:
    """steps/s of `blocks` consecutive blocks of `steps` steps each, after 3 warm-up steps (the speed changes a
    little as the policy learns: answers get shorter or longer)."""
    tr = Trainer(cfg)
    for _ in range(3):
        tr.step()
    rates = []
    for _ in range(blocks):
        t0 = time.perf_counter()
        for _ in range(steps):
            tr.step()
        rates.append(steps / (time.perf_counter() - t0))
    return rates


def spread(rates: list[float]) -> str:
    return f"median {statistics.median(rates):.1f} (blocks {min(rates):.1f}–{max(rates):.1f})"


def time_to(trainer: Trainer, target: float, cap: float) -> tuple[float, int]:
    """Seconds (and steps) until the mean reward of the last 5 steps reaches target; inf if not within cap."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < cap:
        trainer.step()
        h = trainer.history[-5:]
        if len(h) == 5 and sum(m["reward"] for m in h) / 5 >= target:
            return time.perf_counter() - t0, trainer.step_count
    return float("inf"), trainer.step_count


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--cap", type=float, default=None, help="seconds per run before giving up")
    args = ap.parse_args()
    torch.set_num_threads(2)
    cap = args.cap or (15.0 if args.quick else 60.0)
    seeds = [0] if args.quick else [0, 1, 2]
    base = TrainConfig()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; default: {base.prompts} prompts × "
          f"{base.group} answers, {base.minibatches} minibatches, task {base.task} {base.min_digits}–{base.max_digits}"
          " digits")
    for threads in (2, 1):
        torch.set_num_threads(threads)
        print(f"steps/s with {threads} intra-op thread(s): dense {spread(steps_per_second(base))} (target >= 20); "
              f"MoE {spread(steps_per_second(base.with_(moe=True)))}")
    torch.set_num_threads(2)

    print(f"time to mean partial reward >= 0.9 (cap {cap:.0f} s per run; seeds {seeds}):")
    clip = {}
    for name in OBJECTIVES:
        times, steps = [], []
        for seed in seeds:
            tr = Trainer(base.with_(objective=name, seed=seed))
            t, n = time_to(tr, 0.9, cap)
            times.append(t)
            steps.append(n)
            clip.setdefault(name, []).extend(m["clip_fraction"] for m in tr.history)
        med = statistics.median(times)
        shown = f"{med:.1f} s" if med != float("inf") else f"not within {cap:.0f} s"
        print(f"   {name:<10} median {shown}  (per seed: {', '.join(f'{t:.1f}' if t != float('inf') else '—' for t in times)}"
              f"; steps {steps})")
    for name in ("gspo", "grpo"):
        print(f"   mean clip fraction over those runs, {name}: {sum(clip[name]) / len(clip[name]):.3f}")

    torch.set_num_threads(1)
    runs = make_runs(base, [(n, {"objective": n}) for n in OBJECTIVES])
    pool = ThreadPoolExecutor(2, initializer=torch.set_num_threads, initargs=(1,))
    t0 = time.perf_counter()
    reached = {}
    while time.perf_counter() - t0 < 3 * cap and len(reached) < len(runs):
        train_for(runs, 0.0, max_steps=len(runs), pool=pool)
        for r in runs:
            h = r.trainer.history[-5:]
            if r.label not in reached and len(h) == 5 and sum(m["reward"] for m in h) / 5 >= 0.9:
                reached[r.label] = time.perf_counter() - t0
    if len(reached) == len(runs):
        print(f"three side by side: all reach 0.9 after {max(reached.values()):.1f} s (target <= 45 s)")
    else:
        last = {r.label: round(sum(m['reward'] for m in r.trainer.history[-5:]) / 5, 3) for r in runs}
        print(f"three side by side: not all reach 0.9 within {3 * cap:.0f} s; reached {reached}; last rewards {last}")


if __name__ == "__main__":
    main()
