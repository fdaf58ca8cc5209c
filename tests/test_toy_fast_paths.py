"""The toy's fast paths compute what the plain code computes: the time-major model with its hand-written attention
backward and routed MoE (against the straightforward model with scaled_dot_product_attention and every expert on
every token), decoding token by token with the cache (against the whole sequence), the trimmed log-probs, the
sampler (against torch.multinomial), the batched rewards and prompts (against the per-answer code), the clipping
and the flat parameters (against torch's clip_grad_norm_ and per-parameter Adam), identical answers computed once
(against every row computed)."""
import copy
import random

import pytest
import torch
import torch.nn.functional as F

from gspo_viz.toy import tasks, train
from gspo_viz.toy.model import ModelConfig, ToyPolicy, _Attention, positions_of
from gspo_viz.toy.train import (TrainConfig, Trainer, clip_grad_norm, flatten_parameters, model_config,
                                response_start, rollout, row_logp, sample, sequence_logp)


def plain_forward(model: ToyPolicy, tokens, key_mask, positions, forced=None):
    """The model as written plainly, batch-major: scaled_dot_product_attention with a (B, 1, T, S) mask and every
    expert on every token. Reads the model's own parameters (qkv's rows put back in (3, H, Dh) order)."""
    cfg = model.cfg
    B, T = tokens.shape
    D, H = cfg.d_model, cfg.n_heads
    x = model.tok(tokens) + model.pos(positions.clamp(0, cfg.max_len - 1))
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    allowed = (causal & key_mask[:, None, :]) | torch.eye(T, dtype=torch.bool)
    mask = torch.zeros(B, 1, T, T).masked_fill(~allowed.unsqueeze(1), float("-inf"))
    experts_all, balance = [], 0.0
    for layer, block in enumerate(model.blocks):
        w = block.qkv.weight.view(H, 3, D // H, D).transpose(0, 1).reshape(3 * D, D)
        b = block.qkv.bias.view(H, 3, D // H).transpose(0, 1).reshape(3 * D)
        q, k, v = F.linear(block.ln1(x), w, b).split(D, dim=-1)
        q, k, v = (t.view(B, T, H, D // H).transpose(1, 2) for t in (q, k, v))
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + block.proj(att.transpose(1, 2).reshape(B, T, D))
        h = block.ln2(x)
        if cfg.moe:
            moe, hh = block.ff, h.reshape(B * T, D)
            probs = torch.softmax(moe.router(hh), dim=-1)
            experts = (forced[:, :, layer].reshape(B * T, -1) if forced is not None
                       else probs.topk(moe.top_k, dim=-1).indices)
            gates = probs.gather(-1, experts)
            gates = gates / gates.sum(-1, keepdim=True)
            out = torch.einsum("nef,efd->ned", F.gelu(torch.einsum("nd,edf->nef", hh, moe.w1)), moe.w2)
            y = (out.gather(1, experts.unsqueeze(-1).expand(-1, -1, D)) * gates.unsqueeze(-1)).sum(1)
            E = probs.shape[-1]
            frac = torch.zeros(E).scatter_add_(0, experts.reshape(-1), torch.ones(experts.numel())) / experts.numel()
            balance = balance + E * (frac * probs.mean(0)).sum()
            x = x + y.view(B, T, D)
            experts_all.append(experts.view(B, T, -1))
        else:
            x = x + block.ff(h)
    logits = model.head(model.ln(x)) + model.outside
    experts = torch.stack(experts_all, dim=2) if experts_all else None
    return logits, experts, balance / len(model.blocks)


def batch(seed: int, B: int = 12, T: int = 9):
    """Left-padded token rows with a few padding positions inside too (as after EOS)."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, tasks.VOCAB, (B, T), generator=g)
    lead = torch.randint(0, 4, (B,), generator=g)
    tokens[torch.arange(T) < lead.unsqueeze(-1)] = tasks.PAD
    tokens[:, -1][torch.rand(B, generator=g) < 0.3] = tasks.PAD
    real = tokens != tasks.PAD
    return tokens, real, positions_of(real)


@pytest.mark.parametrize("moe,top_k", [(False, 1), (True, 1), (True, 2)])
def test_the_model_computes_what_the_plain_model_computes_forward_and_backward(moe, top_k):
    torch.manual_seed(0)
    model = ToyPolicy(ModelConfig(vocab=tasks.VOCAB, max_len=12, n_actions=tasks.DIGITS, eos=tasks.EOS, moe=moe,
                                  top_k=top_k))
    tokens, real, pos = batch(1)
    weights = torch.randn(tokens.shape[0], tokens.shape[1], tasks.VOCAB)
    outs = []
    for forward in (lambda: model(tokens, real, pos), lambda: plain_forward(model, tokens, real, pos)):
        model.zero_grad()
        logits, *rest = forward()
        experts, balance = rest[-2], rest[-1]
        ((logits.masked_fill(logits < -1e8, 0) * weights).sum() + balance).backward()
        outs.append((logits.detach(), experts, float(balance.detach()) if moe else 0.0,
                     [p.grad.clone() for p in model.parameters()]))
    (fast, e1, b1, g1), (plain, e2, b2, g2) = outs
    actions = plain > -1e8
    assert torch.equal(actions, fast > -1e8) and torch.allclose(fast[actions], plain[actions], atol=2e-6, rtol=0)
    assert b1 == pytest.approx(b2, rel=1e-5, abs=1e-7)
    if moe:
        assert torch.equal(e1, e2)
    for a, b in zip(g1, g2, strict=True):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4), (a - b).abs().max()


def test_attention_backward_is_the_gradient():
    g = torch.Generator().manual_seed(3)
    T, S, N, Dh = 3, 5, 4, 6
    q = torch.randn(T, N, Dh, generator=g, dtype=torch.float64, requires_grad=True)
    k = torch.randn(S, N, Dh, generator=g, dtype=torch.float64, requires_grad=True)
    v = torch.randn(S, N, Dh, generator=g, dtype=torch.float64, requires_grad=True)
    allowed = torch.zeros(N, T, S, dtype=torch.float64)
    allowed[:, 0, :2] = float("-inf")                                    # some keys hidden
    assert torch.autograd.gradcheck(_Attention.apply, (q, k, v, allowed))


@pytest.mark.parametrize("moe", [False, True])
def test_decoding_with_the_cache_gives_the_logits_of_the_whole_sequence(moe):
    torch.manual_seed(2)
    model = ToyPolicy(ModelConfig(vocab=tasks.VOCAB, max_len=12, n_actions=tasks.DIGITS, eos=tasks.EOS, moe=moe))
    tokens, real, pos = batch(4, T=8)
    with torch.no_grad():
        whole, _, experts, _ = model(tokens, real, pos)
        Tp = 4
        logits, kv, e0, _ = model(tokens[:, :Tp], real[:, :Tp], pos[:, :Tp], start=Tp - 1)
        cache = model.new_cache_buffers(tokens.shape[0], tokens.shape[1])
        for buffers, prompt in zip(cache, kv):
            for buf, t in zip(buffers, prompt):
                buf[:Tp] = t
        steps, chosen = [logits[:, -1]], [e0] if moe else []
        for S in range(Tp + 1, tokens.shape[1] + 1):
            out, _, e, _ = model(tokens[:, S - 1:S], real[:, :S], pos[:, S - 1:S], cache)
            steps.append(out[:, -1])
            chosen += [e] if moe else []
    actions = whole[:, Tp - 1:] > -1e8                                   # the -1e9 outside the action space aside
    assert torch.allclose(torch.stack(steps, dim=1)[actions], whole[:, Tp - 1:][actions], atol=2e-6, rtol=0)
    if moe:
        assert torch.equal(torch.cat(chosen, dim=1)[real], experts[real])


@pytest.mark.parametrize("moe", [False, True])
def test_log_probs_start_at_the_prompts_last_token_and_equal_the_untrimmed_ones(moe):
    tr = Trainer(TrainConfig(moe=moe, seed=5))
    tr.step()
    seq = tr.last_rollout.seq.clone()
    start = response_start(seq)
    assert start == tr.cfg.max_digits + 1 and (seq[:, start] == tasks.SEP).all()
    with torch.no_grad():
        logp, experts, balance, entropy = sequence_logp(tr.model, seq)
        inp = seq[:, :-1]
        real = inp != tasks.PAD
        logits, _, all_experts, all_balance = tr.model(inp, real, positions_of(real))
        full = torch.log_softmax(logits, dim=-1)
    assert (logp[:, :start] == 0).all() and (entropy[:, :start] == 0).all()
    assert torch.equal(logp[:, start:], full.gather(-1, seq[:, 1:].unsqueeze(-1)).squeeze(-1)[:, start:])
    assert torch.equal(entropy[:, start:], -(full.exp() * full).sum(-1)[:, start:])
    if moe:
        assert torch.equal(experts, all_experts) and torch.equal(balance, all_balance)


def test_the_sampler_draws_what_multinomial_draws():
    for seed in range(20):
        logits = torch.randn(64, tasks.VOCAB, generator=torch.Generator().manual_seed(seed)) * 3
        logits[:, tasks.PAD:tasks.EOS] = -1e9
        probs = torch.softmax(logits, dim=-1)
        g1, g2 = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
        for _ in range(3):
            assert torch.equal(torch.multinomial(probs, 1, generator=g1).squeeze(-1), sample(probs.clone(), g2))
        assert torch.equal(g1.get_state(), g2.get_state())


def test_batched_rewards_equal_the_per_answer_rewards():
    rnd = random.Random(0)
    for _ in range(300):
        task, kind = rnd.choice(tasks.TASKS), rnd.choice(["partial", "exact"])
        P, G, n = rnd.randint(1, 4), rnd.randint(1, 4), rnd.randint(1, 6)
        digits = [[rnd.randrange(10) for _ in range(rnd.randint(1, 5))] for _ in range(P)]
        rows, expected = [], []
        for i in range(P * G):
            want = tasks.target(task, digits[i // G])
            r = []
            while len(r) < n and (not r or r[-1] != tasks.EOS):
                r.append(rnd.choice(list(range(10)) + [tasks.EOS] * 3 + want * 3))
            rows.append(r + [tasks.PAD] * (n - len(r)))
            value, ok = tasks.reward(task, digits[i // G], r, kind)
            expected.append((value, ok, len(r) == 0 or r[-1] != tasks.EOS, len(r)))
        rewards, exact, truncated, lengths = tasks.batch_rewards(task, digits, torch.tensor(rows), kind)
        value, ok, cut, length = zip(*expected)
        assert torch.equal(rewards, torch.tensor(value))              # float32 from the same float64 numbers
        assert exact.tolist() == list(ok) and truncated.tolist() == list(cut) and lengths.tolist() == list(length)


def test_prompts_are_drawn_as_one_prompt_at_a_time():
    for seed in range(20):
        for n, lo, hi in [(16, 2, 3), (1, 1, 1), (40, 1, 12)]:
            g1, g2 = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
            lengths = torch.randint(lo, hi + 1, (n,), generator=g1).tolist()
            digits = [torch.randint(0, tasks.DIGITS, (L,), generator=g1).tolist() for L in lengths]
            p = tasks.sample_prompts(n, lo, hi, g2)
            assert p.digits == digits and torch.equal(g1.get_state(), g2.get_state())
            for row, d in zip(p.tokens.tolist(), digits):
                assert row == [tasks.PAD] * (hi - len(d)) + [tasks.BOS] + d + [tasks.SEP]


def test_clipping_and_adam_on_the_flat_parameters_equal_torchs_per_parameter_ones():
    torch.manual_seed(0)
    model = ToyPolicy(ModelConfig(vocab=tasks.VOCAB, max_len=12))
    twin = copy.deepcopy(model)
    flat = flatten_parameters(model)
    params = list(twin.parameters())
    opt_flat = torch.optim.Adam([flat], lr=1e-2, fused=True)
    opt = torch.optim.Adam(params, lr=1e-2, fused=True)
    tokens, real, pos = batch(7)
    for scale in (1e-3, 10.0, 1.0):                                    # below and above the clipping threshold
        flat.grad.zero_()
        (model(tokens, real, pos)[0].masked_fill(real.unsqueeze(-1) < 1, 0).sum() * scale).backward()
        opt.zero_grad(set_to_none=True)
        (twin(tokens, real, pos)[0].masked_fill(real.unsqueeze(-1) < 1, 0).sum() * scale).backward()
        assert torch.allclose(flat.grad, torch.cat([p.grad.reshape(-1) for p in params]), rtol=1e-5, atol=1e-6)
        flat.grad.copy_(torch.cat([p.grad.reshape(-1) for p in params]))     # the same gradients from here on
        one = torch.nn.Parameter(torch.zeros_like(flat))
        one.grad = flat.grad.clone()
        norm = clip_grad_norm(flat.grad, 1.0)
        assert torch.equal(norm, torch.nn.utils.clip_grad_norm_(one, 1.0)) and torch.equal(flat.grad, one.grad)
        # over the parameters one by one torch sums the squares in another order: the last bit may differ
        assert float(norm) == pytest.approx(float(torch.nn.utils.clip_grad_norm_(params, 1.0)), rel=1e-6)
        assert torch.allclose(flat.grad, torch.cat([p.grad.reshape(-1) for p in params]), rtol=1e-6, atol=0)
        for p, g in zip(params, flat.grad.split([p.numel() for p in params])):
            p.grad.copy_(g.view_as(p))
        opt_flat.step()
        opt.step()
        assert all(torch.equal(a, b) for a, b in zip(model.parameters(), twin.parameters()))


def test_a_rollouts_answers_end_at_eos_and_match_the_per_answer_rewards():
    tr = Trainer(TrainConfig(seed=1))
    for _ in range(3):
        tr.step()
    prompts = tasks.sample_prompts(8, 2, 3, torch.Generator().manual_seed(2))
    ro = rollout(tr.model, tr.cfg, prompts, torch.Generator().manual_seed(3))
    Tp = prompts.tokens.shape[1]
    for i, row in enumerate(ro.seq[:, Tp:].tolist()):
        r = [t for t in row if t != tasks.PAD]
        assert row == r + [tasks.PAD] * (len(row) - len(r)) and tasks.EOS not in r[:-1]
        value, ok = tasks.reward(tr.cfg.task, ro.digits[i], r, tr.cfg.reward)
        assert float(ro.rewards[i]) == torch.tensor(value).item() and bool(ro.exact[i]) == ok
        assert int(ro.lengths[i]) == len(r) and bool(ro.truncated[i]) == (not r or r[-1] != tasks.EOS)


def test_identical_answers_are_computed_once_with_the_same_log_probs_and_gradients(monkeypatch):
    cfg = TrainConfig(seed=6)
    torch.manual_seed(6)
    model = ToyPolicy(model_config(cfg))
    ro = rollout(model, cfg, tasks.sample_prompts(4, 2, 3, torch.Generator().manual_seed(1)), torch.Generator())
    seq = torch.cat([ro.seq[:20], ro.seq[:12]])                         # 12 answers twice, maybe more alike
    weights = torch.randn(seq.shape[0], seq.shape[1] - 1)
    rows_run = []
    monkeypatch.setattr(train, "row_logp", lambda m, s, f=None: rows_run.append(len(s)) or row_logp(m, s, f))
    results = []
    for fn in (sequence_logp, row_logp):
        model.zero_grad()
        logp, _, _, entropy = fn(model, seq)
        (logp * weights).sum().backward()
        results.append((logp.detach(), entropy, [p.grad.clone() for p in model.parameters()]))
    assert rows_run[0] == len(torch.unique(seq, dim=0)) <= 20
    (a, ent_a, grads_a), (b, ent_b, grads_b) = results
    assert torch.allclose(a, b, atol=1e-6, rtol=0) and torch.allclose(ent_a, ent_b, atol=1e-6, rtol=0)
    for ga, gb in zip(grads_a, grads_b, strict=True):
        assert torch.allclose(ga, gb, atol=1e-5, rtol=1e-5)
