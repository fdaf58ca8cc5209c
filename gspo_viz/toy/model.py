"""A tiny causal transformer policy with an optional mixture-of-experts feed-forward and a KV cache.

Sequences are left-padded; positions count real tokens only, so a sequence gets the same numbers whether it is
run whole (training) or token by token with the cache (sampling). The MoE records each token's chosen experts and
can be forced to use given ones (Routing Replay).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class ModelConfig:
    vocab: int
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 128
    max_len: int = 40
    n_actions: int = 0   # tokens 0..n_actions-1 plus `eos` can be generated (0: every token)
    eos: int = -1
    moe: bool = False
    n_experts: int = 4
    top_k: int = 1

    def __post_init__(self):
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")
        if self.moe and not 1 <= self.top_k <= self.n_experts:
            raise ValueError(f"top_k must be in 1..n_experts ({self.n_experts}), got {self.top_k}")


class MoE(nn.Module):
    """Top-k routed experts (Switch/Mixtral style): gates = softmax(router) at the chosen experts, renormalised."""

    def __init__(self, d: int, d_ff: int, n_experts: int, top_k: int):
        super().__init__()
        self.router = nn.Linear(d, n_experts, bias=False)
        self.w1 = nn.Parameter(torch.randn(n_experts, d, d_ff) / math.sqrt(d))
        self.w2 = nn.Parameter(torch.randn(n_experts, d_ff, d) / math.sqrt(d_ff))
        self.top_k = top_k

    def forward(self, x: Tensor, forced: Optional[Tensor] = None) -> tuple[Tensor, Tensor, Tensor]:
        """x (N, d) → y (N, d), experts (N, k), load-balancing term (scalar).

        forced (N, k): use these experts instead of the router's choice (Routing Replay); the gates still come
        from the current router, so the router keeps learning.
        """
        probs = torch.softmax(self.router(x), dim=-1)                       # (N, E)
        experts = forced if forced is not None else probs.topk(self.top_k, dim=-1).indices  # (N, k)
        gates = probs.gather(-1, experts)
        gates = gates / gates.sum(-1, keepdim=True)                         # (N, k)
        hidden = F.gelu(torch.einsum("nd,edf->nef", x, self.w1))            # (N, E, d_ff): every expert (tiny E)
        out = torch.einsum("nef,efd->ned", hidden, self.w2)                 # (N, E, d)
        y = (out.gather(1, experts.unsqueeze(-1).expand(-1, -1, x.shape[-1])) * gates.unsqueeze(-1)).sum(1)
        # Switch Transformer's load-balancing loss: E · Σ_e (fraction routed to e) · (mean router prob of e)
        E = probs.shape[-1]
        frac = torch.zeros(E, dtype=x.dtype).scatter_add_(0, experts.reshape(-1),
                                                           torch.ones(experts.numel(), dtype=x.dtype)) / experts.numel()
        balance = E * (frac * probs.mean(0)).sum()
        return y, experts, balance


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.ln1, self.ln2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        if cfg.moe:
            self.ff = MoE(cfg.d_model, cfg.d_ff, cfg.n_experts, cfg.top_k)
        else:
            self.ff = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_ff), nn.GELU(), nn.Linear(cfg.d_ff, cfg.d_model))

    def forward(self, x: Tensor, allowed: Tensor, cache: Optional[tuple[Tensor, Tensor]],
                forced: Optional[Tensor]) -> tuple[Tensor, tuple[Tensor, Tensor], Optional[Tensor], Tensor]:
        """allowed (B, 1, T, S): 0 where a query may attend to a key, -inf where not (see attention_mask)."""
        B, T, D = x.shape
        H = self.cfg.n_heads
        q, k, v = self.qkv(self.ln1(x)).split(D, dim=-1)
        q, k, v = (t.view(B, T, H, D // H).transpose(1, 2) for t in (q, k, v))  # (B, H, T, Dh)
        if cache is not None:
            k = torch.cat([cache[0], k], dim=2)
            v = torch.cat([cache[1], v], dim=2)
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        x = x + self.proj(att.transpose(1, 2).reshape(B, T, D))
        h = self.ln2(x)
        if self.cfg.moe:
            y, experts, balance = self.ff(h.reshape(B * T, D), None if forced is None else forced.reshape(B * T, -1))
            x = x + y.view(B, T, D)
            experts = experts.view(B, T, -1)
        else:
            x = x + self.ff(h)
            experts, balance = None, x.new_zeros(())
        return x, (k, v), experts, balance


class ToyPolicy(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab, cfg.d_model)
        self.pos = nn.Embedding(cfg.max_len, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab, bias=False)
        allowed = torch.ones(cfg.vocab, dtype=torch.bool)
        if cfg.n_actions:
            allowed[:] = False
            allowed[:cfg.n_actions] = True
            allowed[cfg.eos] = True
        # added to the logits: -1e9 outside the action space (what the policy may output); -1e9, not -inf, so the
        # entropy stays finite
        self.register_buffer("outside", (~allowed).float() * -1e9, persistent=False)

    def forward(self, tokens: Tensor, key_mask: Tensor, positions: Tensor, cache: Optional[list] = None,
                forced: Optional[Tensor] = None) -> tuple[Tensor, list, Optional[Tensor], Tensor]:
        """tokens, positions (B, T); key_mask (B, S) marks real tokens among all keys (cached + new).

        forced (B, T, n_layers, k): experts to use per token and layer (Routing Replay).
        Returns logits (B, T, V), the new cache, experts (B, T, n_layers, k) or None, load-balancing term.
        """
        x = self.tok(tokens) + self.pos(positions.clamp(0, self.cfg.max_len - 1))
        allowed = attention_mask(key_mask, tokens.shape[1])                   # once for every layer
        new_cache, experts, balance = [], [], x.new_zeros(())
        for layer, block in enumerate(self.blocks):
            x, kv, e, b = block(x, allowed, None if cache is None else cache[layer],
                                None if forced is None else forced[:, :, layer])
            new_cache.append(kv)
            balance = balance + b
            if e is not None:
                experts.append(e)
        logits = self.head(self.ln(x)) + self.outside
        return logits, new_cache, torch.stack(experts, dim=2) if experts else None, balance / len(self.blocks)


def attention_mask(key_mask: Tensor, T: int) -> Tensor:
    """(B, 1, T, S) additive mask, 0 where allowed and -inf elsewhere: causal over the last T of S keys, real keys
    only; a padding query also sees itself (so no row is empty and no NaN appears)."""
    causal, itself = _mask_parts(T, key_mask.shape[1])
    allowed = (causal & key_mask[:, None, :]) | itself                         # (B, T, S)
    return torch.full(allowed.shape, float("-inf")).masked_fill_(allowed, 0.0).unsqueeze(1)


@functools.lru_cache(maxsize=64)
def _mask_parts(T: int, S: int) -> tuple[Tensor, Tensor]:
    """The (T, S) causal part and the query-sees-itself part of attention_mask (the same for every batch)."""
    causal = torch.ones(T, S, dtype=torch.bool).tril(S - T)
    itself = torch.zeros(T, S, dtype=torch.bool)
    itself[torch.arange(T), S - T + torch.arange(T)] = True
    return causal, itself


def positions_of(mask: Tensor) -> Tensor:
    """Position of each real token (0 for the first), for left-padded rows."""
    return (mask.long().cumsum(-1) - 1).clamp_min(0)
