"""Hand-derived values and gradient weights for every objective on one small batch.

The batch (G = 2, padded to T = 3):
    response 0, A = +1: p_old (0.2, 0.4)      → p_new (0.3, 0.2)        token ratios r = (1.5, 0.5)
    response 1, A = −1: p_old (0.2, 0.4, 0.5) → p_new (0.3, 0.2, 0.5)   token ratios r = (1.5, 0.5, 1.0)
grad_weight is ∂J/∂log π_θ(y_{i,t}); every expected number below is derived by hand in the comment beside it
and written as arithmetic with the math module, never computed by gspo_viz.
"""
import math

import pytest
import torch

from gspo_viz import Settings, explain

P_OLD = [[0.2, 0.4, 1.0], [0.2, 0.4, 0.5]]
P_NEW = [[0.3, 0.2, 1.0], [0.3, 0.2, 0.5]]
MASK = [[1, 1, 0], [1, 1, 1]]
ADV = [1.0, -1.0]


def run(name, adv=ADV, logp_ref=None, **knobs):
    lp = torch.log(torch.tensor(P_NEW, dtype=torch.float64))
    lo = torch.log(torch.tensor(P_OLD, dtype=torch.float64))
    ex = explain(name, lp, lo, torch.tensor(adv, dtype=torch.float64), torch.tensor(MASK, dtype=torch.float64),
                 Settings(objective=name, **knobs), logp_ref)
    return ex


def grads(ex):
    return [[float(ex.grad_weight[0, 0]), float(ex.grad_weight[0, 1])],
            [float(ex.grad_weight[1, t]) for t in range(3)]]


def clips(ex):
    return [[ex.clip_name(0, 0), ex.clip_name(0, 1)], [ex.clip_name(1, t) for t in range(3)]]


def close(a, b, tol=1e-9):
    return all(x == pytest.approx(y, abs=tol) for ra, rb in zip(a, b) for x, y in zip(ra, rb))


def test_grpo():
    ex = run("grpo")  # ε = 0.2: clip range [0.8, 1.2]
    # response 0 (A=+1): min(1.5, 1.2) = 1.2 (upper);  min(0.5, 0.8) = 0.5 (A>0 is never clipped below)
    # response 1 (A=−1): min(−1.5, −1.2) = −1.5 (A<0 is never clipped above); min(−0.5, −0.8) = −0.8 (lower); −1
    J = 0.5 * ((1.2 + 0.5) / 2 + (-1.5 - 0.8 - 1.0) / 3)
    assert ex.J == pytest.approx(J) and ex.loss == pytest.approx(-J)
    assert clips(ex) == [["upper", "none"], ["none", "lower", "none"]]
    # unclipped tokens: (1/G)(1/|y_i|)·r·A
    assert close(grads(ex), [[0, 0.5 / 4], [-1.5 / 6, 0, -1.0 / 6]])


def test_dapo_token_mean_and_clip_higher():
    ex = run("dapo")  # ε_low 0.2, ε_high 0.28: 1.5 is still above 1.28
    J = (1.28 + 0.5 - 1.5 - 0.8 - 1.0) / 5  # one sum over all 5 tokens, divided by Σ|y_i| = 5
    assert ex.J == pytest.approx(J)
    assert clips(ex) == [["upper", "none"], ["none", "lower", "none"]]
    assert close(grads(ex), [[0, 0.5 / 5], [-1.5 / 5, 0, -1.0 / 5]])


def test_dr_grpo_constant_normaliser():
    ex = run("dr_grpo", max_tokens=4)  # (1/(G·L_max)) = 1/8 for every token
    J = (1.2 + 0.5 - 1.5 - 0.8 - 1.0) / 8
    assert ex.J == pytest.approx(J)
    assert close(grads(ex), [[0, 0.5 / 8], [-1.5 / 8, 0, -1.0 / 8]])


def test_dual_clip_caps_negative_advantage():
    ex = run("dual_clip", dual_clip_c=1.4)
    # response 1 token 1: A<0 and r = 1.5 > c = 1.4 → max(−1.5, 1.4·(−1)) = −1.4, gradient 0
    J = 0.5 * ((1.2 + 0.5) / 2 + (-1.4 - 0.8 - 1.0) / 3)
    assert ex.J == pytest.approx(J)
    assert clips(ex) == [["upper", "none"], ["dual", "lower", "none"]]
    assert close(grads(ex), [[0, 0.5 / 4], [0, 0, -1.0 / 6]])


def test_gspo_sequence_ratio_and_uniform_weights():
    ex = run("gspo", eps_low=0.2, eps_high=0.2)
    s0 = math.sqrt(1.5 * 0.5)          # exp(mean(log 1.5, log 0.5)) = 0.8660
    s1 = (1.5 * 0.5 * 1.0) ** (1 / 3)  # 0.9086
    assert [float(x) for x in ex.seq_ratio] == pytest.approx([s0, s1])
    # neither is clipped: A>0 with s0 < 1.2; A<0 with s1 > 0.8
    assert ex.J == pytest.approx(0.5 * (s0 - s1))
    # every token of response i: (1/G)·s_i·A_i/|y_i|
    assert close(grads(ex), [[0.5 * s0 / 2] * 2, [-0.5 * s1 / 3] * 3])


def test_gspo_lower_clip_zeroes_the_whole_sequence():
    ex = run("gspo", eps_low=0.05, eps_high=0.2)  # lower bound 0.95 > s1 = 0.9086 with A < 0
    s0 = math.sqrt(0.75)
    assert ex.J == pytest.approx(0.5 * (s0 - 0.95))
    assert clips(ex)[1] == ["lower"] * 3
    assert close(grads(ex), [[0.5 * s0 / 2] * 2, [0, 0, 0]])


def test_gspo_default_band_is_tiny():
    ex = run("gspo")  # ε 3e-4/4e-4: s0 = 0.866 with A>0 is not clipped (A>0 clips only above); s1 is
    assert clips(ex) == [["none", "none"], ["lower"] * 3]
    assert ex.J == pytest.approx(0.5 * (math.sqrt(0.75) - (1 - 3e-4)))


def test_gspo_token_per_token_advantages():
    ex = run("gspo_token", adv=[[1.0, 1.0, 0.0], [-1.0, -2.0, -1.0]], eps_low=0.2, eps_high=0.2)
    s0, s1 = math.sqrt(0.75), 0.75 ** (1 / 3)
    # value s_i·A_{i,t} per token (no clip), aggregated (1/G)(1/|y_i|)Σ_t
    assert ex.J == pytest.approx(0.5 * ((s0 + s0) / 2 + s1 * (-1 - 2 - 1) / 3))
    # gradient of s_{i,t} = sg[s_i]·π/sg[π] w.r.t. log π(y_{i,t}) is s_i: weight (1/G)(1/|y_i|)·s_i·A_{i,t}
    assert close(grads(ex), [[s0 / 4, s0 / 4], [-s1 / 6, -2 * s1 / 6, -s1 / 6]])


def test_cispo_caps_weight_but_keeps_gradient():
    ex = run("cispo")  # ε_high 0.2, no lower bound: weights sg[clip(r)] = (1.2, 0.5), (1.2, 0.5, 1.0)
    J = (1.2 * math.log(0.3) + 0.5 * math.log(0.2) - 1.2 * math.log(0.3) - 0.5 * math.log(0.2)
         - 1.0 * math.log(0.5)) / 5
    assert ex.J == pytest.approx(J)
    assert clips(ex) == [["upper", "none"], ["upper", "none", "none"]]
    assert close(grads(ex), [[1.2 / 5, 0.5 / 5], [-1.2 / 5, -0.5 / 5, -1.0 / 5]])  # the capped token still learns


def test_gmpo_log_space_clip():
    ex = run("gmpo")  # ε = 0.4 on the log-ratio
    # response 0 (A>0): Δ = (log 1.5 = 0.405, log 0.5 = −0.693): 0.405 > 0.4 → 0.4 (upper); −0.693 kept
    rho0 = math.exp((0.4 + math.log(0.5)) / 2)
    # response 1 (A<0): Δ = (0.405, −0.693, 0): −0.693 < −0.4 → −0.4 (lower); 0.405 kept
    rho1 = math.exp((math.log(1.5) - 0.4 + 0.0) / 3)
    assert [float(x) for x in ex.seq_ratio] == pytest.approx([rho0, rho1])
    assert ex.J == pytest.approx(0.5 * (rho0 - rho1))
    assert clips(ex) == [["upper", "none"], ["none", "lower", "none"]]
    assert close(grads(ex), [[0, 0.5 * rho0 / 2], [-0.5 * rho1 / 3, 0, -0.5 * rho1 / 3]])


def test_sapo_soft_gate():
    ex = run("sapo")  # τ_pos = 1, τ_neg = 1.05; f(r) = σ(τ(r−1))·4/τ
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    f0 = [sig(0.5) * 4, sig(-0.5) * 4]                       # σ(0.5) + σ(−0.5) = 1, so these sum to 4
    f1 = [sig(1.05 * 0.5) * 4 / 1.05, sig(-1.05 * 0.5) * 4 / 1.05, 0.5 * 4 / 1.05]
    J = 0.5 * (sum(f0) / 2 - sum(f1) / 3)                   # = 0.5·(2 − (4/1.05 + 2/1.05)/3) = 0.5·(2 − 2/1.05)
    assert ex.J == pytest.approx(J) and J == pytest.approx(0.5 * (2 - 2 / 1.05))
    # weight 4σ(1−σ)·r·A per token, times (1/G)(1/|y_i|)
    w = lambda tau, r: 4 * sig(tau * (r - 1)) * (1 - sig(tau * (r - 1))) * r  # noqa: E731
    assert close(grads(ex), [[w(1, 1.5) / 4, w(1, 0.5) / 4], [-w(1.05, 1.5) / 6, -w(1.05, 0.5) / 6, -w(1.05, 1.0) / 6]])
    assert w(1.05, 1.0) == 1.0  # at r = 1 the gate passes the plain policy gradient
    assert clips(ex) == [["none", "none"], ["none"] * 3]


@pytest.mark.parametrize("kind,k,dk", [
    # d = log π − log π_ref = log 0.5 − log 0.25 = log 2
    ("k1", math.log(2), 1.0),
    ("k2", 0.5 * math.log(2) ** 2, math.log(2)),
    ("k3", 0.5 + math.log(2) - 1, 1 - 0.5),  # π_ref/π − log(π_ref/π) − 1 = 0.5 + log 2 − 1; ∂/∂log π = 1 − π_ref/π
])
def test_kl_term(kind, k, dk):
    lp = torch.log(torch.tensor([[0.5]], dtype=torch.float64))
    ref = torch.log(torch.tensor([[0.25]], dtype=torch.float64))
    ex = explain("grpo", lp, lp.clone(), torch.zeros(1, dtype=torch.float64), torch.ones(1, 1),
                 Settings(beta=0.1, kl=kind), ref)
    # A = 0: only the KL term is left, J = −β·k, grad = −β·∂k/∂log π
    assert ex.J == pytest.approx(-0.1 * k)
    assert float(ex.grad_weight[0, 0]) == pytest.approx(-0.1 * dk)
    assert float(ex.closed_grad[0, 0]) == pytest.approx(-0.1 * dk)


@pytest.mark.parametrize("name", ["grpo", "dual_clip", "dapo", "dr_grpo", "gspo", "gspo_token", "cispo", "gmpo", "sapo"])
def test_closed_form_matches_autograd_on_the_hand_batch(name):
    ex = run(name, logp_ref=torch.log(torch.tensor([[0.25, 0.3, 1.0], [0.2, 0.25, 0.6]], dtype=torch.float64)),
             beta=0.05)
    assert torch.allclose(ex.grad_weight, ex.closed_grad, atol=1e-12)
