"""What the toy shows about a rollout/trainer mismatch (issue 11). Not asserted by a test; run it and read it.

python benchmarks/bench_mismatch.py [--steps 150]

Runs from the same seed: the dense model with a float32 rollout, a bfloat16 rollout, and a bfloat16 rollout with
token-level rollout correction; the MoE with a bfloat16 rollout and Routing Replay of the rollout's routes (R3) or
the trainer's own routes for π_old (R2). Prints, per run, the mean of the last 30 steps' reward, the mismatch
(mean |log π_old − log π_rollout|), the truncated fraction, the share of tokens routed differently, and the clip
fraction, plus seconds per step.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gspo_viz.toy.train import TrainConfig, Trainer  # noqa: E402

RUNS = {
    "dense, float32 rollout": {},
    "dense, bf16 rollout": {"rollout_dtype": "bfloat16"},
    "dense, bf16 rollout + token correction (C = 2)": {"rollout_dtype": "bfloat16", "rollout_is": "token"},
    "MoE, bf16 rollout, no replay": {"moe": True, "rollout_dtype": "bfloat16"},
    "MoE, bf16 rollout, replay the rollout's routes (R3)": {"moe": True, "rollout_dtype": "bfloat16",
                                                            "routing_replay": True},
    "MoE, bf16 rollout, replay the trainer's old routes (R2)": {"moe": True, "rollout_dtype": "bfloat16",
                                                                "routing_replay": True, "replay_routes": "old"},
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--objective", default="grpo")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for name, over in RUNS.items():
        tr = Trainer(TrainConfig(objective=args.objective, seed=0, **over))
        t0 = time.perf_counter()
        rows = [tr.step() for _ in range(args.steps)]
        per = (time.perf_counter() - t0) / args.steps
        last = rows[-30:]

        def mean(key):
            vals = [r[key] for r in last if key in r]
            return statistics.fmean(vals) if vals else float("nan")
        print(f"{name:<58} reward {mean('reward'):.3f}  gap {mean('rollout_logp_gap'):.5f}  "
              f"truncated {mean('rollout_truncated_fraction'):.4f}  routes differ {mean('rollout_route_mismatch'):.4f}"
              f"  experts changed {mean('expert_change_fraction'):.4f}  clip {mean('clip_fraction'):.4f}  "
              f"{per * 1e3:.0f} ms/step")


if __name__ == "__main__":
    main()
