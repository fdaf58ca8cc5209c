"""Sample a group to play with: random old probabilities and a new policy drifted from it by a chosen amount."""
from __future__ import annotations

import math
import random

WORDS = ("the", "answer", "is", "so", "we", "get", "x", "=", "2", "3", "5", "+", "then", "check", "wait", ",",
         "let", "me", "sum", "of", "digits", "total", "hence", "therefore", "7", "11", ".", "it", "equals", "42")


def sample_group(G: int = 8, min_len: int = 8, max_len: int = 32, drift: float = 0.1, seed: int = 0,
                 p_correct: float = 0.5) -> dict:
    """A scenario dict: G responses of min_len..max_len tokens, reward 1 (correct) or 0.

    p_old = σ(z), z ~ N(1, 1.5²) (most tokens likely, some rare); log p_new = log p_old + drift·N(0, 1), capped at 0.
    The same seed gives the same group.
    """
    if not 2 <= G <= 64 or not 1 <= min_len <= max_len <= 512 or not 0 <= drift <= 5:
        raise ValueError("G must be in 2..64, 1 <= min_len <= max_len <= 512, drift in [0, 5]")
    rng = random.Random(seed)
    responses = []
    for _ in range(G):
        n = rng.randint(min_len, max_len)
        logp_old = [-math.log1p(math.exp(-rng.gauss(1.0, 1.5))) for _ in range(n)]
        logp_new = [min(0.0, lp + drift * rng.gauss(0.0, 1.0)) for lp in logp_old]
        p_old = [round(math.exp(x), 6) for x in logp_old]
        p_new = [round(math.exp(x), 6) for x in logp_new]
        p_old = [max(p, 1e-6) for p in p_old]
        p_new = [max(p, 1e-6) for p in p_new]
        responses.append({"tokens": [rng.choice(WORDS) for _ in range(n)], "p_old": p_old, "p_new": p_new,
                          "reward": 1.0 if rng.random() < p_correct else 0.0})
    return {"title": f"Sampled group (G = {G}, drift {drift:g}, seed {seed})",
            "notes": f"A random group: {G} answers, old probabilities drawn at random, the new policy drifted by "
                     f"{drift:g}·N(0, 1) in log space, reward 1 for a correct answer and 0 otherwise.",
            "responses": responses, "settings": {}}
