"""Invariants of the objectives, checked on random batches (hypothesis)."""
import math

import torch
from hypothesis import HealthCheck, assume, given, settings as hsettings, strategies as st

from gspo_viz import OBJECTIVES, Settings, clip_decisions, explain, objective_loss
from gspo_viz.core.objectives.base import NONE

ALL = list(OBJECTIVES)
PPO_FAMILY = [n for n, o in OBJECTIVES.items() if o.zeroes_clipped]
FAST = hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def batches(draw, max_abs_delta=3.0, per_token_adv=False):
    """(logp, logp_old, advantages, mask): G responses of 1..T tokens, random log-probs and advantages."""
    G = draw(st.integers(1, 4))
    T = draw(st.integers(1, 6))
    lengths = draw(st.lists(st.integers(1, T), min_size=G, max_size=G))
    f = st.floats(-5.0, -0.01, allow_nan=False)
    d = st.floats(-max_abs_delta, max_abs_delta, allow_nan=False)
    logp_old = torch.tensor(draw(st.lists(st.lists(f, min_size=T, max_size=T), min_size=G, max_size=G)),
                            dtype=torch.float64)
    delta = torch.tensor(draw(st.lists(st.lists(d, min_size=T, max_size=T), min_size=G, max_size=G)),
                         dtype=torch.float64)
    mask = torch.tensor([[1.0 if t < n else 0.0 for t in range(T)] for n in lengths], dtype=torch.float64)
    a = st.floats(-2.0, 2.0, allow_nan=False)
    if per_token_adv:
        adv = torch.tensor(draw(st.lists(st.lists(a, min_size=T, max_size=T), min_size=G, max_size=G)),
                           dtype=torch.float64)
    else:
        adv = torch.tensor(draw(st.lists(a, min_size=G, max_size=G)), dtype=torch.float64)
    return logp_old + delta, logp_old, adv, mask


def knobs():
    return st.fixed_dictionaries({
        "eps_low": st.sampled_from([0.0, 3e-4, 0.1, 0.2, 0.5]),
        "eps_high": st.sampled_from([4e-4, 0.2, 0.28, 1.0]),
        "dual_clip_c": st.sampled_from([1.5, 3.0, 10.0]),
        "gmpo_eps": st.sampled_from([0.1, 0.4]),
        "tau_pos": st.sampled_from([0.5, 1.0, 4.0]),
        "tau_neg": st.sampled_from([1.05, 2.0]),
    })


@FAST
@given(batch=batches(), name=st.sampled_from(ALL), k=knobs(), beta=st.sampled_from([0.0, 0.04]),
       kl=st.sampled_from(["k1", "k2", "k3"]))
def test_autograd_equals_closed_form(batch, name, k, beta, kl):
    logp, logp_old, adv, mask = batch
    ref = logp_old - 0.3  # any reference policy
    ex = explain(name, logp, logp_old, adv, mask, Settings(beta=beta, kl=kl, **k), ref)
    assert torch.allclose(ex.grad_weight, ex.closed_grad, rtol=1e-9, atol=1e-12), (name, ex.grad_weight, ex.closed_grad)


@FAST
@given(batch=batches(), name=st.sampled_from(PPO_FAMILY), k=knobs())
def test_clipped_tokens_have_zero_gradient(batch, name, k):
    logp, logp_old, adv, mask = batch
    ex = explain(name, logp, logp_old, adv, mask, Settings(**k))
    clipped = (ex.clip != NONE) & (mask > 0)
    assert (ex.grad_weight[clipped] == 0).all()
    # and the unclipped ones with a nonzero advantage do have a gradient (the test would pass vacuously otherwise)
    free = (ex.clip == NONE) & (mask > 0) & (adv.abs().unsqueeze(-1) > 1e-6)
    assert (ex.grad_weight[free] != 0).all()


@FAST
@given(batch=batches(), k=knobs())
def test_dual_clip_equals_grpo_for_nonnegative_advantages(batch, k):
    logp, logp_old, adv, mask = batch
    adv = adv.abs()
    a = explain("dual_clip", logp, logp_old, adv, mask, Settings(**k))
    b = explain("grpo", logp, logp_old, adv, mask, Settings(**k))
    assert math.isclose(a.J, b.J, rel_tol=1e-12, abs_tol=1e-15)
    assert torch.equal(a.grad_weight, b.grad_weight)


@FAST
@given(batch=batches(), k=knobs())
def test_dual_clip_never_below_c_times_a(batch, k):
    logp, logp_old, adv, mask = batch
    a = explain("dual_clip", logp, logp_old, adv, mask, Settings(**k))
    b = explain("grpo", logp, logp_old, adv, mask, Settings(**k))
    assert a.J >= b.J - 1e-12  # the floor c·A only ever raises a term


@FAST
@given(batch=batches(), k=knobs())
def test_gspo_token_equals_gspo_with_constant_advantages(batch, k):
    logp, logp_old, adv, mask = batch
    a = explain("gspo", logp, logp_old, adv, mask, Settings(**k))
    b = explain("gspo_token", logp, logp_old, adv.unsqueeze(-1).expand_as(logp).clone(), mask, Settings(**k))
    assert math.isclose(a.J, b.J, rel_tol=1e-12, abs_tol=1e-14)
    assert torch.allclose(a.grad_weight, b.grad_weight, rtol=1e-12, atol=1e-14)
    assert torch.equal(a.clip, b.clip)


@FAST
@given(batch=batches(), k=knobs())
def test_gspo_equals_grpo_when_token_ratios_are_equal_within_a_response(batch, k):
    logp, logp_old, adv, mask = batch
    delta = (logp - logp_old)[:, :1]                  # one log-ratio per response ...
    logp = logp_old + delta.expand_as(logp_old)       # ... shared by all its tokens, so r_{i,t} = s_i
    a = explain("gspo", logp, logp_old, adv, mask, Settings(**k))
    b = explain("grpo", logp, logp_old, adv, mask, Settings(**k))
    assert math.isclose(a.J, b.J, rel_tol=1e-9, abs_tol=1e-12)
    assert torch.allclose(a.grad_weight, b.grad_weight, rtol=1e-9, atol=1e-12)


@FAST
@given(batch=batches(), name=st.sampled_from(ALL), k=knobs(), extra_t=st.integers(1, 3), extra_g=st.integers(0, 2),
       junk=st.floats(-40.0, 0.0))
def test_padding_never_changes_a_result(batch, name, k, extra_t, extra_g, junk):
    logp, logp_old, adv, mask = batch
    G, T = logp.shape
    pad = lambda x, v: torch.cat([torch.cat([x, torch.full((G, extra_t), v, dtype=x.dtype)], 1),  # noqa: E731
                                  torch.full((extra_g, T + extra_t), v, dtype=x.dtype)], 0)
    a = explain(name, logp, logp_old, adv, mask, Settings(**k))
    b = explain(name, pad(logp, junk), pad(logp_old, -1.0), torch.cat([adv, torch.full((extra_g,), 1.5, dtype=adv.dtype)]),
                pad(mask, 0.0), Settings(**k))
    assert math.isclose(a.J, b.J, rel_tol=1e-12, abs_tol=1e-14)
    assert torch.allclose(a.grad_weight, b.grad_weight[:G, :T], rtol=1e-12, atol=1e-14)
    assert (b.grad_weight[:, T:] == 0).all() and (b.grad_weight[G:] == 0).all()


@FAST
@given(batch=batches(max_abs_delta=50.0), name=st.sampled_from(ALL), k=knobs(),
       dtype=st.sampled_from([torch.float32, torch.float64]))
def test_finite_for_log_ratios_within_50(batch, name, k, dtype):
    logp, logp_old, adv, mask = batch
    assume(((logp - logp_old).abs() * mask).max() > 10)  # make sure large log-ratios are really exercised
    lp = logp.to(dtype).requires_grad_(True)
    loss = objective_loss(name, lp, logp_old.to(dtype), adv.to(dtype), mask.to(dtype), Settings(objective=name, **k)
                          .resolved(), logp_old.to(dtype) - 0.5)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(lp.grad).all()


@FAST
@given(batch=batches(per_token_adv=True), name=st.sampled_from(["grpo", "dapo", "gspo_token", "cispo", "sapo"]),
       k=knobs())
def test_fast_float32_path_equals_explain_path(batch, name, k):
    logp, logp_old, adv, mask = batch
    cfg = Settings(objective=name, **k).resolved()
    # a ratio within float32's rounding of a clip bound may fall on either side of it in the two precisions
    # (e.g. r = 1 − 2e-16 with ε_low = 0 is clipped in float64 and exactly 1 in float32): compare the paths elsewhere
    assume(torch.equal(clip_decisions(name, logp, logp_old, adv, mask, cfg),
                       clip_decisions(name, logp.float(), logp_old.float(), adv.float(), mask.float(), cfg)))
    lp = logp.float().requires_grad_(True)
    loss = objective_loss(name, lp, logp_old.float(), adv.float(), mask.float(), cfg)
    loss.backward()
    ex = explain(name, logp, logp_old, adv, mask, cfg)
    assert math.isclose(float(loss.detach()), ex.loss, rel_tol=1e-4, abs_tol=1e-5)
    # the fast path's gradient is ∂loss/∂log π = −grad_weight
    assert torch.allclose(-lp.grad.double() * mask, ex.grad_weight, rtol=1e-4, atol=1e-6)
