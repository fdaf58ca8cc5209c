"""Toy tasks with verifiable rewards: sort or reverse a string of digits; answers of varying length end with EOS."""
from __future__ import annotations

from dataclasses import dataclass

import torch

DIGITS = 10
PAD, BOS, SEP, EOS = 10, 11, 12, 13
VOCAB = 14
# plain names: Plotly and Markdown would read "<s>" and "</s>" as strike-through tags and hide them
NAMES = [str(d) for d in range(10)] + ["·", "BOS", "→", "EOS"]
TASKS = ("sort", "reverse")


@dataclass(frozen=True)
class Prompts:
    tokens: torch.Tensor    # (P, Tp) left-padded: PAD… BOS d1 … dn SEP
    digits: list[list[int]]


def sample_prompts(n: int, min_digits: int, max_digits: int, generator: torch.Generator) -> Prompts:
    """n prompts of min..max random digits, left-padded to the same length."""
    lengths = torch.randint(min_digits, max_digits + 1, (n,), generator=generator).tolist()
    digits = [torch.randint(0, DIGITS, (L,), generator=generator).tolist() for L in lengths]
    Tp = max_digits + 2
    tokens = torch.full((n, Tp), PAD, dtype=torch.long)
    for i, d in enumerate(digits):
        seq = [BOS] + d + [SEP]
        tokens[i, Tp - len(seq):] = torch.tensor(seq)
    return Prompts(tokens, digits)


def target(task: str, digits: list[int]) -> list[int]:
    if task == "sort":
        return sorted(digits)
    if task == "reverse":
        return digits[::-1]
    raise ValueError(f"unknown task {task!r}; valid: {', '.join(TASKS)}")


def reward(task: str, digits: list[int], response: list[int], kind: str = "partial") -> tuple[float, bool]:
    """(reward, exact) for one response (its tokens up to and including EOS, if any).

    exact: 1 if the answer equals the target and ends with EOS. partial: the fraction of the target's positions
    answered right, times max(0, 1 − extra/len(target)) for extra tokens, and 0 without EOS (truncated).
    """
    want = target(task, digits)
    ended = len(response) > 0 and response[-1] == EOS
    body = response[:-1] if ended else response
    exact = ended and body == want
    if kind == "exact":
        return float(exact), exact
    if not ended:
        return 0.0, False
    right = sum(1 for a, b in zip(body, want) if a == b)
    extra = max(0, len(body) - len(want))
    return right / len(want) * max(0.0, 1 - extra / len(want)), exact


def detokenize(tokens: list[int]) -> str:
    return " ".join(NAMES[t] for t in tokens if t != PAD)
