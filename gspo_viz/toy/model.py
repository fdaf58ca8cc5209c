"""A tiny causal transformer policy with an optional mixture-of-experts feed-forward and a KV cache.

Sequences are left-padded; positions count real tokens only, so a sequence gets the same numbers whether it is
run whole (training) or token by token with the cache (sampling). The MoE records each token's chosen experts and
can be forced to use given ones (Routing Replay).

Made for tiny tensors on one CPU thread, where each operation's fixed cost outweighs its arithmetic: activations are
time-major rows (position by position) and qkv's features head by head, so every (batch, head)'s queries, keys and
values are strided views that batched products read without copies; attention has a hand-written backward; the
MoE runs each expert on its own tokens only.
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
        routed = experts.reshape(-1)                                        # (N·k,) slot by slot
        counts = torch.bincount(routed, minlength=probs.shape[-1])          # (E,) slots per expert
        y = self.run_experts(x, routed, counts, gates.reshape(-1))
        # Switch Transformer's load-balancing loss: E · Σ_e (fraction routed to e) · (mean router prob of e)
        E = probs.shape[-1]
        frac = counts.to(x.dtype) / experts.numel()
        balance = E * (frac * probs.mean(0)).sum()
        return y, experts, balance

    def run_experts(self, x: Tensor, routed: Tensor, counts: Tensor, gates: Tensor) -> Tensor:
        """Σ over a token's k slots of gate · FFN_expert(token): (N, d). Each expert runs on the tokens routed to it
        only (grouped by a stable sort of the slots), not on every token."""
        order = routed.argsort(stable=True)                                 # (N·k,) slots grouped by expert
        token = order // (routed.numel() // x.shape[0])                     # each grouped slot's token
        sizes = counts.tolist()
        w1, w2 = self.w1.unbind(0), self.w2.unbind(0)
        xs = x.index_select(0, token).split(sizes)
        hidden = F.gelu(torch.cat([xe @ w1[e] for e, xe in enumerate(xs)]))          # (N·k, d_ff)
        out = torch.cat([he @ w2[e] for e, he in enumerate(hidden.split(sizes))])    # (N·k, d)
        out = out * gates.index_select(0, order).unsqueeze(-1)
        return x.new_zeros(x.shape, dtype=out.dtype).index_add_(0, token, out)   # (bf16 under autocast)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.ln1, self.ln2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        with torch.no_grad():       # store its outputs head by head, (H, 3, Dh): the same function, see split_heads
            H, Dh = cfg.n_heads, cfg.d_model // cfg.n_heads
            for t in (self.qkv.weight, self.qkv.bias):
                t.copy_(t.view(3, H, Dh, -1).transpose(0, 1).reshape(t.shape))
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        if cfg.moe:
            self.ff = MoE(cfg.d_model, cfg.d_ff, cfg.n_experts, cfg.top_k)
        else:
            self.ff = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_ff), nn.GELU(), nn.Linear(cfg.d_ff, cfg.d_model))

    def forward(self, x: Tensor, T: int, allowed: Tensor, cache: Optional[tuple[Tensor, Tensor]],
                forced: Optional[Tensor], start: int = 0
                ) -> tuple[Tensor, tuple[Tensor, Tensor], Optional[Tensor], Tensor]:
        """x (T·B, D): time-major rows, position by position; allowed (B·H, T, S): 0 where a query may attend to a
        key, -inf where not (see attention_mask). cache: key and value buffers (≥ S, B·H, Dh) whose first S − T
        rows hold the earlier tokens; this call writes its own T rows after them. start: only positions start.. go
        on past their keys and values (the output has (T − start)·B rows).
        Returns x, the keys and values (S, B·H, Dh) so far, and the MoE's experts (T·B, k) and load-balancing term
        (None, None when dense)."""
        D = x.shape[-1]
        B = x.shape[0] // T
        q, k, v = split_heads(self.qkv(self.ln1(x)).view(T, B, 3 * D), self.cfg.n_heads)  # (T, B·H, Dh) each
        if cache is not None:
            S = allowed.shape[-1]
            cache[0][S - T:S], cache[1][S - T:S] = k, v
            k, v = cache[0][:S], cache[1][:S]
        if start:                                  # later layers read nothing of these positions
            q, allowed, x = q[start:], allowed[:, start:], x[start * B:]
        att = attend(q, k, v, allowed)                                     # (B·H, T − start, Dh)
        x = x + self.proj(att.transpose(0, 1).reshape(-1, D))
        h = self.ln2(x)
        if self.cfg.moe:
            y, experts, balance = self.ff(h, forced)
            return x + y, (k, v), experts, balance
        return x + self.ff(h), (k, v), None, None


def split_heads(qkv: Tensor, heads: int) -> tuple[Tensor, Tensor, Tensor]:
    """(T, B, 3D) with its features head by head (H, 3, Dh) → q, k, v (T, B·H, Dh): views, no copy, that the batched
    products read as they are (time-major rows make (batch, head) one evenly strided dimension)."""
    T, B, _ = qkv.shape
    return qkv.view(T, B * heads, 3, -1).unbind(2)


def attention_probs(q: Tensor, k: Tensor, allowed: Tensor) -> Tensor:
    """softmax(q·kᵀ/√Dh + allowed) over the keys, (N, T, S), from q (T, N, Dh) and k (S, N, Dh). By hand, not
    torch.softmax, whose CPU kernel is slow on rows this short (a few keys)."""
    s = torch.baddbmm(allowed, q.transpose(0, 1), k.permute(1, 2, 0), alpha=q.shape[-1] ** -0.5)
    s = s.sub_(s.amax(-1, keepdim=True)).exp_()                # every row allows its own key: the max is finite
    return s.div_(s.sum(-1, keepdim=True))


class _Attention(torch.autograd.Function):
    """Attention with a hand-written backward: on these tiny shapes (a few keys per query) a few batched products on
    strided views cost less than scaled_dot_product_attention's CPU kernels, forward and backward."""

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, allowed: Tensor) -> Tensor:
        p = attention_probs(q, k, allowed)                         # (N, T, S)
        ctx.save_for_backward(q, k, v, p)
        return torch.bmm(p, v.transpose(0, 1))                     # (N, T, Dh)

    @staticmethod
    def backward(ctx, grad: Tensor):
        q, k, v, p = ctx.saved_tensors                             # grad (N, T, Dh)
        dv = torch.bmm(p.transpose(1, 2), grad)                    # (N, S, Dh)
        dp = torch.bmm(grad, v.permute(1, 2, 0))                   # (N, T, S)
        # softmax backward, times the 1/√Dh of the scores
        ds = dp.sub_((dp * p).sum(-1, keepdim=True)).mul_(p).mul_(q.shape[-1] ** -0.5)
        dq = torch.bmm(ds, k.transpose(0, 1))                      # (N, T, Dh)
        dk = torch.bmm(ds.transpose(1, 2), q.transpose(0, 1))      # (N, S, Dh)
        return dq.transpose(0, 1), dk.transpose(0, 1), dv.transpose(0, 1), None


def attend(q: Tensor, k: Tensor, v: Tensor, allowed: Tensor) -> Tensor:
    """q (T, N, Dh), k and v (S, N, Dh), allowed (N, T, S) additive → (N, T, Dh), N = batch · heads."""
    if torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad):
        return _Attention.apply(q, k, v, allowed)
    if q.shape[0] == 1:
        return attend_one(q, k, v, allowed)
    return torch.bmm(attention_probs(q, k, allowed), v.transpose(0, 1))


def attend_one(q: Tensor, k: Tensor, v: Tensor, allowed: Tensor) -> Tensor:
    """attend for one query per row (decoding a token), without gradients: elementwise products and sums over the
    keys, cheaper here than batched products of 1-row matrices, which the CPU kernel takes one by one."""
    N, _, S = allowed.shape
    s = (q * k).sum(-1).mul_(q.shape[-1] ** -0.5).add_(allowed.view(N, S).t())  # (S, N)
    p = torch.softmax(s, dim=0)                                    # over the keys: a fast kernel along dim 0
    return (p.unsqueeze(-1) * v).sum(0).unsqueeze(1)               # (N, 1, Dh)


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
                forced: Optional[Tensor] = None, start: int = 0) -> tuple[Tensor, list, Optional[Tensor], Tensor]:
        """tokens, positions (B, T); key_mask (B, S) marks real tokens among all keys (cached + new).

        cache: per layer, key and value buffers from new_cache_buffers; the call writes its tokens into them.
        forced (B, T, n_layers, k): experts to use per token and layer (Routing Replay).
        start: logits only for positions start.. (the earlier ones still give their keys and values; the dense
        model's last block then skips the rest of their computation, which nothing reads).
        Returns logits (B, T − start, V), per layer the keys and values so far (S, B·H, Dh), experts
        (B, T, n_layers, k) or None, load-balancing term. Inside, activations are time-major rows (T·B, D).
        """
        B, T = tokens.shape
        x = self.tok(tokens.t().reshape(-1)) + self.pos(positions.t().reshape(-1).clamp(0, self.cfg.max_len - 1))
        allowed = attention_mask(key_mask, T, self.cfg.n_heads)             # once for every layer
        L = len(self.blocks)
        if forced is not None:
            forced = forced.transpose(0, 1).reshape(T * B, L, -1)           # (T·B, n_layers, k)
        new_cache, experts, balances = [], [], []
        for layer, block in enumerate(self.blocks):
            trim = start if layer == L - 1 and not self.cfg.moe else 0
            x, kv, e, b = block(x, T, allowed, None if cache is None else cache[layer],
                                None if forced is None else forced[:, layer], trim)
            new_cache.append(kv)
            experts.append(e)
            balances.append(b)
        if self.cfg.moe:                   # its last block ran every position: the load balance reads them all
            x = x[start * B:]
            experts = torch.stack(experts, dim=1).view(T, B, L, -1).transpose(0, 1)  # (B, T, L, k)
            balance = sum(balances) / L
        else:
            experts, balance = None, x.new_zeros(())
        logits = (self.head(self.ln(x)) + self.outside).view(T - start, B, -1)
        return logits.transpose(0, 1), new_cache, experts, balance

    def new_cache_buffers(self, batch: int, length: int) -> list[tuple[Tensor, Tensor]]:
        """Empty key and value buffers (length, batch·H, Dh) per layer for decoding up to `length` tokens."""
        H = self.cfg.n_heads
        shape = (length, batch * H, self.cfg.d_model // H)
        return [(torch.empty(shape), torch.empty(shape)) for _ in self.blocks]


def attention_mask(key_mask: Tensor, T: int, heads: int = 1) -> Tensor:
    """(B·heads, T, S) additive mask, 0 where allowed and -inf elsewhere: causal over the last T of S keys, real keys
    only; a padding query also sees itself (so no row is empty and no NaN appears)."""
    causal, itself = _mask_parts(T, key_mask.shape[1])
    allowed = (causal & key_mask[:, None, :]) | itself                         # (B, T, S)
    B, _, S = allowed.shape
    return torch.where(allowed.unsqueeze(1).expand(B, heads, T, S), 0.0, float("-inf")).view(B * heads, T, S)


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
