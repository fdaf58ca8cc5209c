"""Speed of the loss core: fast-path forward+backward on 64 × 4096 tokens, and the explain path on 8 × 64.

Run: python benchmarks/bench_core.py [--repeats N]. Prints medians; nothing here is asserted by a test.
Targets on the 2-core machine: <= 12 ms for grpo and gspo (fast path); <= 20 ms for the explain path of all
objectives together on 8 responses × 64 tokens.
"""
import argparse
import statistics
import time

import torch

from gspo_viz import OBJECTIVES, Settings, explain, objective_loss


def median_ms(fn, repeats: int, warmup: int = 3) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def batch(G: int, T: int, dtype, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logp_old = -torch.rand(G, T, generator=g, dtype=dtype) * 5
    logp = logp_old + torch.randn(G, T, generator=g, dtype=dtype) * 0.1
    lengths = torch.randint(T // 4, T + 1, (G,), generator=g)
    mask = (torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)).to(dtype)
    adv = torch.randn(G, generator=g, dtype=dtype)
    return logp, logp_old, adv, mask


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    logp, logp_old, adv, mask = batch(64, 4096, torch.float32)
    print("\nfast path, forward + backward, 64 x 4096 tokens, float32 (median / p95 ms):")
    for name in OBJECTIVES:
        cfg = Settings(objective=name).resolved()
        lp = logp.clone().requires_grad_(True)

        def step():
            lp.grad = None
            objective_loss(name, lp, logp_old, adv, mask, cfg).backward()

        med, p95 = median_ms(step, args.repeats)
        target = "  (target <= 12 ms)" if name in ("grpo", "gspo") else ""
        print(f"  {name:<11} {med:7.2f} / {p95:7.2f}{target}")

    logp, logp_old, adv, mask = batch(8, 64, torch.float64, seed=1)
    ref = logp_old - 0.2
    settings = Settings(beta=0.01)

    def explain_all():
        for name in OBJECTIVES:
            explain(name, logp, logp_old, adv, mask, settings, ref)

    med, p95 = median_ms(explain_all, args.repeats)
    print(f"\nexplain path, all {len(OBJECTIVES)} objectives, 8 x 64 tokens, with KL: "
          f"{med:.2f} / {p95:.2f} ms (median / p95; target <= 20 ms)")


if __name__ == "__main__":
    main()
