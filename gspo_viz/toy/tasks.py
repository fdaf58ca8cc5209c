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
    lengths = torch.randint(min_digits, max_digits + 1, (n,), generator=generator)
    # every prompt's digits in one draw: the same numbers as drawing them prompt by prompt
    flat = torch.randint(0, DIGITS, (int(lengths.sum()),), generator=generator)
    Tp = max_digits + 2
    tokens = torch.full((n, Tp), PAD, dtype=torch.long)
    ends = lengths.cumsum(0)
    row = torch.repeat_interleave(torch.arange(n), lengths)                 # each digit's prompt
    tokens[row, Tp - 1 - ends[row] + torch.arange(len(flat))] = flat        # right-aligned before SEP
    tokens[torch.arange(n), Tp - 2 - lengths] = BOS
    tokens[:, -1] = SEP
    values, starts = flat.tolist(), [0] + ends.tolist()
    return Prompts(tokens, [values[a:b] for a, b in zip(starts, starts[1:])])


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


def batch_rewards(task: str, digits: list[list[int]], responses: torch.Tensor, kind: str = "partial"
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """`reward` for a batch at once: digits, each prompt's; responses (len(digits)·G, n): G answers per prompt,
    prompt by prompt, each its tokens up to its first EOS and PAD after it. Returns rewards (B,) float32 (the same
    numbers as `reward`), exact (B,), truncated (B,): no EOS, and the lengths (B,): tokens up to and including EOS."""
    targets = [target(task, d) for d in digits]
    L = max(len(t) for t in targets)
    G = responses.shape[0] // len(digits)
    want = torch.tensor([t + [-1] * (L - len(t)) for t in targets]).repeat_interleave(G, 0)  # (B, L), -1 after
    want_len = torch.tensor([len(t) for t in targets]).repeat_interleave(G)                # (B,)
    lengths = (responses != PAD).sum(-1)
    ended = (responses == EOS).any(-1)
    body_len = lengths - ended.long()                                       # the digits before EOS
    n = min(L, responses.shape[1])
    hits = (responses[:, :n] == want[:, :n]) & (torch.arange(n) < body_len.unsqueeze(-1))  # (B, n)
    right = hits.sum(-1)
    exact = ended & (body_len == want_len) & (right == want_len)
    if kind == "exact":
        return exact.float(), exact, ~ended, lengths
    extra = (body_len - want_len).clamp_min(0)
    # in float64, operation for operation as `reward`, then rounded to float32 as torch.tensor(list of floats) does
    value = right.double() / want_len * (1 - extra.double() / want_len).clamp_min(0.0)
    return torch.where(ended, value, 0.0).float(), exact, ~ended, lengths


def detokenize(tokens: list[int]) -> str:
    return " ".join(NAMES[t] for t in tokens if t != PAD)
