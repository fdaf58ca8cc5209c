"""Speed and learning of the toy policy. Nothing here is asserted by a test; run it and read the numbers.

python benchmarks/bench_toy.py [--quick] [--cap SECONDS]

- steps/s of the dense and MoE defaults (16 prompts × 8 answers, 4 minibatches) with one intra-op thread, as the
  server's training slots run (gspo_viz/toy/scheduler.py). Target (dense): >= 20. Also steps per CPU-second of the
  training thread (what the step costs, whatever else the machine runs) and, for comparison, two intra-op threads
  (not used by the app: on a shared 2-core machine OpenMP's second thread waits for a core at every kernel).
- per objective, the median wall-clock seconds over 3 seeds until the mean partial reward over the last 5 steps
  reaches 0.9 on the default task (sort, 2–3 digits), one intra-op thread. Target: GSPO <= 15 s.
- three objectives trained side by side as on the Train page: one session on the server's scheduler with its
  default slots; seconds until all three reach 0.9. Also the mean clip fractions of GSPO and GRPO.
- three sessions (three runs each) sharing the scheduler's slots for a while: each one's steps, the fairness.
--quick: one seed, a 15 s cap per run and fewer blocks.
--profile: instead, where a step's time goes (thread CPU ms per phase of Trainer.step, dense and MoE), then exit.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gspo_viz.toy import scheduler, train  # noqa: E402
from gspo_viz.toy.session import Background, make_runs  # noqa: E402
from gspo_viz.toy.train import TrainConfig, Trainer  # noqa: E402

OBJECTIVES = ("grpo", "gspo", "dual_clip")


def steps_per_second(cfg: TrainConfig, blocks: int = 5, steps: int = 20) -> tuple[list[float], list[float]]:
    """(steps/s, steps per CPU-second of this thread) of `blocks` consecutive blocks of `steps` steps each, after 3
    warm-up steps (the speed changes a little as the policy learns: answers get shorter or longer)."""
    tr = Trainer(cfg)
    for _ in range(3):
        tr.step()
    rates, cpu = [], []
    for _ in range(blocks):
        t0, c0 = time.perf_counter(), time.thread_time()
        for _ in range(steps):
            tr.step()
        rates.append(steps / (time.perf_counter() - t0))
        cpu.append(steps / (time.thread_time() - c0))
    return rates, cpu


PHASES = {"rollout": "rollout", "sequence_logp": "log-probs (forward)", "objective_loss": "loss",
          "clip_grad_norm": "clip", "update_metrics": "metrics"}


def step_profile(cfg: TrainConfig, steps: int = 100) -> tuple[float, dict]:
    """Thread CPU ms per step, and per phase: the functions Trainer.step calls (PHASES, backward, Adam's step) timed
    in place over `steps` steps after 10 warm-up steps; "rest" is the step's own code between them."""
    tr = Trainer(cfg)
    for _ in range(10):
        tr.step()
    spent = dict.fromkeys(list(PHASES.values()) + ["backward", "Adam"], 0.0)

    def timed(fn, name):
        def run(*args, **kwargs):
            t0 = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] += time.thread_time() - t0
        return run

    originals = {name: getattr(train, name) for name in PHASES}
    backward = torch.Tensor.backward
    try:
        for name, label in PHASES.items():
            setattr(train, name, timed(originals[name], label))
        torch.Tensor.backward = timed(backward, "backward")
        tr.optimizer.step = timed(tr.optimizer.step, "Adam")
        t0 = time.thread_time()
        for _ in range(steps):
            tr.step()
        total = time.thread_time() - t0
    finally:
        for name, fn in originals.items():
            setattr(train, name, fn)
        torch.Tensor.backward = backward
    spent["rest"] = total - sum(spent.values())
    return 1000 * total / steps, {k: 1000 * v / steps for k, v in spent.items()}


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


def reached(run, target: float = 0.9) -> bool:
    h = run.trainer.history[-5:]
    return len(h) == 5 and sum(m["reward"] for m in h) / 5 >= target


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--cap", type=float, default=None, help="seconds per run before giving up")
    ap.add_argument("--profile", action="store_true", help="where a step's time goes, then exit")
    args = ap.parse_args()
    if args.profile:
        torch.set_num_threads(1)
        for name, cfg in (("dense", TrainConfig()), ("MoE", TrainConfig(moe=True))):
            total, parts = step_profile(cfg)
            ranked = sorted(parts.items(), key=lambda kv: -kv[1])
            shares = ", ".join(f"{k} {v:.1f} ({100 * v / total:.0f}%)" for k, v in ranked)
            print(f"{name}: {total:.1f} ms of thread CPU per step: {shares}")
        return
    cap = args.cap or (15.0 if args.quick else 60.0)
    seeds = [0] if args.quick else [0, 1, 2]
    blocks = 3 if args.quick else 5
    base = TrainConfig()
    slots = scheduler.configured_slots()
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"
    print(f"torch {torch.__version__}; {scheduler.usable_cores()} usable cores (load average {load}: other processes "
          f"slow the wall-clock figures, not the per-CPU-second ones), {slots} training slot(s); default: "
          f"{base.prompts} prompts × {base.group} answers, {base.minibatches} minibatches, task {base.task} "
          f"{base.min_digits}–{base.max_digits} digits")
    torch.set_num_threads(1)
    for name, cfg in (("dense", base), ("MoE", base.with_(moe=True))):
        rates, cpu = steps_per_second(cfg, blocks)
        print(f"steps/s, one intra-op thread (as the app trains), {name}: {spread(rates)}"
              f"{' (target >= 20)' if name == 'dense' else ''}; per CPU-second of the thread: {spread(cpu)}")
    torch.set_num_threads(2)
    rates, _ = steps_per_second(base, blocks=1, steps=10)
    print(f"   for comparison, two intra-op threads (not used by the app), dense: {rates[0]:.1f} steps/s")
    torch.set_num_threads(1)

    print(f"time to mean partial reward >= 0.9, one intra-op thread (cap {cap:.0f} s per run; seeds {seeds}):")
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

    # as on the Train page: one session, its three runs stepped in rounds by the scheduler's worker
    sched = scheduler.Scheduler(slots)
    bg = Background(make_runs(base, [(n, {"objective": n}) for n in OBJECTIVES]), scheduler=sched)
    t0 = time.perf_counter()
    bg.start()
    at = {}
    while time.perf_counter() - t0 < 3 * cap and len(at) < len(bg.runs):
        bg.beat()                                        # the page's heartbeat
        time.sleep(0.05)
        for r in bg.runs:
            if r.label not in at and reached(r):
                at[r.label] = time.perf_counter() - t0
    bg.pause()
    steps = sum(r.trainer.step_count for r in bg.runs)
    if len(at) == len(bg.runs):
        print(f"three side by side in one session ({slots} slot(s)): all reach 0.9 after {max(at.values()):.1f} s "
              f"({steps} steps, {steps / (time.perf_counter() - t0):.1f} steps/s)")
    else:
        last = {r.label: round(sum(m['reward'] for m in r.trainer.history[-5:]) / 5, 3) for r in bg.runs}
        print(f"three side by side in one session: not all reach 0.9 within {3 * cap:.0f} s; reached {at}; last "
              f"rewards {last}")

    # three viewers at once: the slots are shared in turns
    seconds = 10.0 if args.quick else 30.0
    sessions = [Background(make_runs(base.with_(seed=k), [(n, {"objective": n}) for n in OBJECTIVES]),
                           scheduler=sched) for k in range(3)]
    t0 = time.perf_counter()
    for s in sessions:
        s.start()
    while time.perf_counter() - t0 < seconds:
        for s in sessions:
            s.beat()
        time.sleep(0.05)
    for s in sessions:
        s.pause()
    wall = time.perf_counter() - t0
    counts = [sum(r.trainer.step_count for r in s.runs) for s in sessions]
    print(f"three sessions × three runs sharing {slots} slot(s) (turns of {sched.turn:.0f} s) for {wall:.0f} s: steps "
          f"{counts} ({sum(counts) / wall:.1f} steps/s in all; fewest/most {min(counts) / max(counts):.2f})")
    sched.join()


if __name__ == "__main__":
    main()
