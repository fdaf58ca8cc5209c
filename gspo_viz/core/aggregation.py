"""Loss aggregation, a separate named step: the weights w with J = Σ w·term, named as verl names its loss_agg_mode."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

AGGREGATIONS = {
    "seq-mean-token-mean": "(1/G) Σ_i (1/|y_i|) Σ_t",
    "token-mean": "(1/Σ_i |y_i|) Σ_i Σ_t",
    "seq-mean-token-sum": "(1/G) Σ_i Σ_t",
    "seq-mean-token-sum-norm": "(1/(G·L_max)) Σ_i Σ_t",
    "seq-mean": "(1/G) Σ_i",
}
TOKEN_MODES = tuple(m for m in AGGREGATIONS if m != "seq-mean")   # the modes of per-token terms
# Which paper or library uses each mode (verl issue #957 lists the first two), for the pages' words.
WHO = {
    "seq-mean-token-mean": "the GRPO paper's (1/G)·(1/|o_i|)",
    "token-mean": "DAPO's token-level mean, verl's default",
    "seq-mean-token-sum": "a sum over each response's tokens: long answers weigh more",
    "seq-mean-token-sum-norm": "Dr.GRPO's constant 1/(G·L_max)",
    "seq-mean": "one term per response (GSPO, GMPO)",
}


def aggregation_weights(part: Tensor, mode: str, l_max: Optional[int] = None) -> Tensor:
    """w such that J = Σ w·term: (G, T) for token-level modes, (G,) for 'seq-mean'.

    part marks the tokens that take part in the loss; G counts the responses with at least one such token.
    l_max is Dr.GRPO's constant L_max ('seq-mean-token-sum-norm'): max_tokens, or the longest response of the batch
    whether or not it takes part (see `longest`); when None, the longest response that takes part.
    """
    lens = part.sum(-1)                                    # (G,)
    n_seq = (lens > 0).sum().clamp_min(1)
    if mode == "seq-mean":
        return (lens > 0).to(part.dtype) / n_seq           # (G,)
    if mode == "seq-mean-token-mean":
        return part / (lens.clamp_min(1).unsqueeze(-1) * n_seq)  # (G, T)
    if mode == "token-mean":
        return part / part.sum().clamp_min(1)
    if mode == "seq-mean-token-sum":
        return part / n_seq
    if mode == "seq-mean-token-sum-norm":
        if l_max is None:
            l_max = int(lens.max().item()) if lens.numel() else 1
        return part / (n_seq * max(l_max, 1))
    raise ValueError(f"unknown aggregation {mode!r}; valid: {', '.join(AGGREGATIONS)}")


def term_weights(part: Tensor, mode: str, l_max: Optional[int], per_sequence: bool) -> Tensor:
    """The weights w with J = Σ w·term for an objective's terms under loss_agg_mode `mode`.

    Per-token terms: aggregation_weights, (G, T); 'seq-mean' has no meaning for them.
    Per-sequence terms (GSPO, GMPO): (G,). Under 'seq-mean' each response's term counts once, (1/G) Σ_i. Under a
    token mode the term is broadcast to every token of its response and aggregated as verl aggregates its per-token
    GSPO loss, so a response weighs the sum of its tokens' weights: the same as seq-mean under seq-mean-token-mean,
    |y_i|/Σ_j |y_j| under token-mean (a long answer weighs more).
    """
    if per_sequence:
        if mode == "seq-mean":
            return aggregation_weights(part, mode)
        return aggregation_weights(part, mode, l_max).sum(-1)                  # (G,)
    if mode == "seq-mean":
        raise ValueError("'seq-mean' aggregates one term per response; per-token terms need a token mode: "
                         + ", ".join(TOKEN_MODES))
    return aggregation_weights(part, mode, l_max)                              # (G, T)


def longest(mask: Tensor, max_tokens: Optional[int] = None) -> int:
    """Dr.GRPO's L_max: max_tokens when set, else the longest response in the batch (filtered or not), as verl's
    seq-mean-token-sum-norm divides by the batch's padded length."""
    if max_tokens is not None:
        return max_tokens
    return max(int(mask.sum(-1).max().item()), 1) if mask.numel() else 1


def aggregate(value: Tensor, part: Tensor, mode: str, l_max: Optional[int] = None) -> Tensor:
    """J = Σ w·term with the weights of `aggregation_weights`."""
    w = aggregation_weights(part, mode, l_max)
    value = torch.where(w > 0, value, torch.zeros_like(value))
    return (value * w).sum()
