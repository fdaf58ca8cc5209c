"""Every number in the notes of the seed examples (shared/seeds/003 and 004), checked against the core.

Each example's notes quote the article's numbers, say which hold and give the corrected ones. For every file the
test below
1. derives the right values by hand with `math` (the derivation is in the comments) and holds the core's result to
   them, and recomputes the article's own (wrong) arithmetic from the article's formula;
2. reads every number written in the notes, in order, and compares that list with the one it expects: the core's
   values rounded as the notes round them, the article's numbers, and the plain numbers of the prose (response and
   token indices, the constants in a formula such as the 1 of 1/|y_i|, citations), each commented.
Editing, adding or removing a number in a note, or changing the scenario, makes a test fail.

Numbering in the notes follows the app: responses and tokens from 1.
"""
import json
import math
import re
from pathlib import Path

import pytest

from gspo_viz import parse_scenario, run_scenario

EX = Path(__file__).resolve().parents[1] / "examples"
EPS = 1e-6  # the core's adv_eps: A = (R − mean)/(std + 1e-6), sample std (G − 1)

# A number as the notes write it: an optional sign (−, + or -) right before the digits, decimals, an exponent (3e-4).
# Digits glued to a word or a subscript (seed003, G_5, k3) and digits after a closing bracket are not read.
NUM = re.compile(r"(?<![\w.)\]])[−+-]?\d+(?:\.\d+)?(?:e[−-]?\d+)?")


def numbers(text: str) -> list[str]:
    """The numbers of a text in order; a leading ASCII minus is read as −."""
    return [re.sub(r"^-", "−", m.group()) for m in NUM.finditer(text)]


def f(x: float, k: int) -> str:
    """x to k decimals as the notes write it: minus as −, no sign on a zero."""
    s = f"{x:.{k}f}"
    if not s.lstrip("-").strip("0."):
        return s.lstrip("-")
    return s.replace("-", "−")


def sf(x: float, k: int) -> str:
    """Signed: +0.801 / −1.121."""
    return ("+" if x >= 0 else "") + f(x, k)


def assert_numbers(notes: str, expected: list):
    found = numbers(notes)
    expected = [re.sub(r"^-", "−", str(x)) for x in expected]
    for k, (a, b) in enumerate(zip(found, expected)):
        assert a == b, f"number {k + 1} of the notes is {a!r}, expected {b!r}; the notes read {found[max(0, k - 6):k + 3]}"
    assert len(found) == len(expected), f"{len(found)} numbers in the notes, {len(expected)} expected: " \
                                        f"{found[len(expected):] or expected[len(found):]}"


def load(name: str, objective=None, **settings):
    data = json.loads((EX / f"{name}.json").read_text(encoding="utf-8"))
    data["settings"].update(settings)
    return data, run_scenario(parse_scenario(data, objective))


def z_scores(rewards: list[float]) -> list[float]:
    """Group z-score by hand: (R − mean)/(sample std + 1e-6)."""
    G = len(rewards)
    mean = sum(rewards) / G
    std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / (G - 1))
    return [(r - mean) / (std + EPS) for r in rewards]


def test_numbers_helper():
    assert numbers("A = +0.801, (−1.121), 3e-4, G_5 = 8, seeds/003, §3.1, 2^(1/7), x−1, -2") == \
        ["+0.801", "−1.121", "3e-4", "8", "003", "3.1", "2", "1", "7", "1", "−2"]  # x−1: a 1, not a −1
    assert f(-0.0, 3) == "0.000" and f(-0.1156, 3) == "−0.116" and sf(0.3203, 3) == "+0.320" and f(-3.0, 0) == "−3"
    with pytest.raises(AssertionError):
        assert_numbers("r = 1.25 and 2", ["1.25", "3"])
    with pytest.raises(AssertionError):
        assert_numbers("r = 1.25 and 2", ["1.25"])


def test_every_seed_file_cites_its_seed_and_numbers_from_1():
    files = sorted(EX.glob("seed00*.json"))
    assert len(files) >= 12
    for path in files:
        data = json.loads(path.read_text(encoding="utf-8"))
        seed = path.name[4:7]
        assert f"shared/seeds/{seed}" in data["title"], path.name
        notes = data["notes"].lower()
        assert "response 0" not in notes and "t = 0" not in notes and "token 0" not in notes, path.name


# ======================================================================================== shared/seeds/003
MOVIE_OLD = [0.3, 0.2, 0.15, 0.8, 0.4]   # the article's GRPO table, 《 / 肖申克 / 的救赎》 / ， / 很好看
MOVIE_NEW = [0.4, 0.25, 0.18, 0.7, 0.6]
MOVIE_R = [n / o for n, o in zip(MOVIE_NEW, MOVIE_OLD)]  # 1.333, 1.25, 1.2, 0.875, 1.5
R3 = [f(MOVIE_R[0], 3), "1.25", "1.2", "0.875", "1.5"]  # as the notes write them
PCT_OLD = [f(p * 100, 0) for p in MOVIE_OLD]  # 30/20/15/80/40 %
PCT_NEW = [f(p * 100, 0) for p in MOVIE_NEW]  # 40/25/18/70/60 %


def test_movie_ratios():
    assert MOVIE_R == pytest.approx([4 / 3, 1.25, 1.2, 0.875, 1.5])
    assert R3 == ["1.333", "1.25", "1.2", "0.875", "1.5"]
    assert PCT_OLD == ["30", "20", "15", "80", "40"] and PCT_NEW == ["40", "25", "18", "70", "60"]


def test_seed003_grpo_discounted_return():
    data, res = load("seed003_grpo_discounted_return")
    ex = res.explanation
    # the group: y_A (7 tokens, whole ratio 2), y_B = the movie answer, y_C (3 tokens, whole ratio 0.8)
    rA, rC = 2 ** (1 / 7), 0.8 ** (1 / 3)
    assert ex.token_ratio[1, :5].tolist() == pytest.approx(MOVIE_R, rel=1e-12)
    assert ex.token_ratio[0, :7].tolist() == pytest.approx([rA] * 7, rel=1e-12)
    assert ex.token_ratio[2, :3].tolist() == pytest.approx([rC] * 3, rel=1e-12)
    assert ex.settings.eps_low == ex.settings.eps_high == 0.2
    # rewards 9, 8, 5: mean 22/3 = 7.333, sample std sqrt(((5/3)² + (2/3)² + (7/3)²)/2) = sqrt(13/3) = 2.082
    assert res.rewards == [9, 8, 5]
    assert res.reward_mean == pytest.approx(22 / 3) and res.reward_std == pytest.approx(math.sqrt(13 / 3))
    A = z_scores([9, 8, 5])
    assert res.advantages.tolist() == pytest.approx(A, rel=1e-12)
    # Step 1, the article: G_t = γ^(L−t)·R, γ = 0.9, R = 8, L = 5: G_1..G_5 = 5.2488, 5.832, 6.48, 7.2, 8,
    # which it rounds to 2 decimals
    G_t = [8 * 0.9 ** (5 - t) for t in range(1, 6)]
    assert G_t == pytest.approx([5.2488, 5.832, 6.48, 7.2, 8])
    article_G = [f"{round(g, 2):g}" for g in G_t]
    assert article_G == ["5.25", "5.83", "6.48", "7.2", "8"]
    # ... corrected: one advantage per response; with nothing clipped, weight·G·|y|/r is A_2 on every token
    wide = load("seed003_grpo_discounted_return", eps_low=0.9, eps_high=9.0)[1].explanation
    per_token_A = [float(wide.grad_weight[1, t]) * 3 * 5 / MOVIE_R[t] for t in range(5)]
    assert per_token_A == pytest.approx([A[1]] * 5)
    # Step 3, the article: its clip 1.333→1.2, 1.25→1.2, 1.2→1.2, 0.875→0.8 (wrong), 1.5→1.2, times its rounded
    # G_t: 1.2 × 5.25 = 6.3, 1.2 × 5.83 = 6.996 ≈ 7.0, 1.2 × 6.48 = 7.776 ≈ 7.78, 0.8 × 7.2 = 5.76, 1.2 × 8 = 9.6
    article_clip = ["1.2", "1.2", "1.2", "0.8", "1.2"]
    article_w = [float(c) * float(g) for c, g in zip(article_clip, article_G)]
    article_w_shown = [f(article_w[0], 1), f(article_w[1], 1), f(article_w[2], 2), f(article_w[3], 2),
                       f(article_w[4], 1)]
    assert article_w_shown == ["6.3", "7.0", "7.78", "5.76", "9.6"]
    right_clip = [min(max(r, 0.8), 1.2) for r in MOVIE_R]
    assert right_clip[3] == pytest.approx(0.875)  # 0.8 <= 0.875 <= 1.2: not clipped
    # ... corrected (ε = 0.2): (1/G)(1/|y_i|)·r·A_i unclipped; 0 for r > 1.2 with A > 0 (t = 1, 2, 5)
    assert [ex.clip_name(1, t) for t in range(5)] == ["upper", "upper", "none", "none", "upper"]
    w_B = [0, 0, 1.2 * A[1] / 15, 0.875 * A[1] / 15, 0]
    assert ex.grad_weight[1, :5].tolist() == pytest.approx(w_B, rel=1e-9, abs=1e-15)
    w_A, w_C = rA * A[0] / (3 * 7), rC * A[2] / (3 * 3)
    assert ex.grad_weight[0, :7].tolist() == pytest.approx([w_A] * 7, rel=1e-9)
    assert ex.grad_weight[2, :3].tolist() == pytest.approx([w_C] * 3, rel=1e-9)

    gw = ex.grad_weight.tolist()
    G, L2 = len(res.rewards), 5
    assert_numbers(data["notes"], [
        "003", 1, 3,                                             # shared/seeds/003, steps 1 and 3
        *PCT_OLD, *PCT_NEW, *R3,
        2, 1, 9, 2, 8, 3, 5,                                     # response 2; response 1 (reward 9), 2 (8), 3 (5)
        1, 3,                                                    # responses 1 and 3 take the GSPO table's ratios
        # step 1, the article: R = 8, γ = 0.9, G_5 .. G_1
        1, 8, 0.9, *reversed(article_G),
        # step 1, corrected: 1e-6; mean(9, 8, 5); std; A; response 2 has A_2
        1, "1e-6", 9, 8, 5, f(res.reward_mean, 3), f(res.reward_std, 3), *[sf(a, 3) for a in A], 2, sf(A[1], 3),
        # step 3, the article: its clip (ratio → value), then clipped value × G_t
        3, *[x for pair in zip(R3, article_clip) for x in pair],
        *[x for c, g, w in zip(article_clip, article_G, article_w_shown) for x in (c, g, w)],
        "0.875", "0.8", "1.2", "0", "1.2", "1", "1.2", "0",      # inside [0.8, 1.2]; A > 0, 1.2 times; 1 + ε; 1.2·A; 0
        # step 3, corrected
        3, "0.2", 1, 1, 0,                                       # (1/G)(1/|y_i|), 0 when clipped
        2, 1, 2, 5, R3[0], R3[1], R3[4], "1.2", 0, 0, article_w_shown[4], 0,  # response 2: t = 1, 2, 5 clipped
        3, R3[2], 1, G, 1, L2, "1.2", f(A[1], 3), f(gw[1][2], 4),     # t = 3: (1/3)(1/5)·1.2·A_2
        4, R3[3], 1, G, 1, L2, R3[3], f(A[1], 3), f(gw[1][3], 4),     # t = 4: (1/3)(1/5)·0.875·A_2
        1, f(rA, 3), f(gw[0][0], 4), 3, f(rC, 3), f(gw[2][0], 3),     # responses 1 and 3
    ])


def test_seed003_gspo_gradient():
    data, res = load("seed003_gspo_gradient")
    ex = res.explanation
    L = [7, 5, 3]
    whole = [2, 1.5, 0.8]  # π_θ(y)/π_old(y) of the article's table
    s = [w ** (1 / n) for w, n in zip(whole, L)]  # 2^(1/7), 1.5^(1/5), 0.8^(1/3)
    assert ex.seq_ratio.tolist() == pytest.approx(s, rel=1e-12)
    A = z_scores([9, 8, 5])
    assert res.rewards == [9, 8, 5] and res.advantages.tolist() == pytest.approx(A, rel=1e-12)
    assert ex.settings.eps_low == ex.settings.eps_high == 0.2 and (ex.clip == 0).all()
    # the article's step 4: (1.104·5 + 1.084·3)/2 − 0.928·2 = 4.386 − 1.856 = 2.53 with its rounded s ...
    s3 = [f(x, 3) for x in s]
    assert s3 == ["1.104", "1.084", "0.928"]
    good = (float(s3[0]) * 5 + float(s3[1]) * 3) / 2
    bad = float(s3[2]) * 2
    article = [f(good, 3), f(bad, 3), f(good - bad, 2)]
    assert article == ["4.386", "1.856", "2.53"]
    assert f((s[0] * 5 + s[1] * 3) / 2 - s[2] * 2, 2) == "2.53"  # ... and with the exact s as well
    # corrected: ∇J = (1/G) Σ_i s_i·A_i·(1/|y_i|) Σ_t ∇log π(y_{i,t}), with Σ_t ∇log π(y_{i,t}) = g_i = 5, 3, 2
    g = [5, 3, 2]
    grad = sum(s[i] * A[i] * g[i] / L[i] for i in range(3)) / 3
    assert grad == pytest.approx(0.0487, abs=1e-4)
    # the core's per-token weights are (1/G)·s_i·A_i/|y_i|, the same on every token of a response ...
    w = [s[i] * A[i] / (3 * L[i]) for i in range(3)]
    for i in range(3):
        assert ex.grad_weight[i, :L[i]].tolist() == pytest.approx([w[i]] * L[i], rel=1e-9)
    # ... so ∇J = Σ_i Σ_t weight_{i,t}·∇log π(y_{i,t}) = Σ_i weight_i·g_i
    core_grad = sum(float(ex.grad_weight[i, 0]) * g[i] for i in range(3))
    assert core_grad == pytest.approx(grad, rel=1e-9)
    # the note's line with its rounded inputs lands on the same 0.049
    rounded = (1.104 * 0.801 * 5 / 7 + 1.084 * 0.320 * 3 / 5 + 0.928 * (-1.121) * 2 / 3) / 3
    assert f(rounded, 3) == f(core_grad, 3) == "0.049"
    # with GSPO's own range every sequence is clipped and the gradient is 0
    own = load("seed003_gspo_gradient", eps_low=3e-4, eps_high=4e-4)[1].explanation
    assert [own.clip_name(i, 0) for i in range(3)] == ["upper", "upper", "lower"] and (own.grad_weight == 0).all()
    # length normalisation: the level of π(y) cancels (2e-9/1e-9 = 2); the same token drift over 70 tokens
    rs = res.scenario.responses
    assert [math.exp(sum(rs[i].logp_old)) for i in (0, 2)] == [pytest.approx(1e-9), pytest.approx(1e-5)]
    assert math.exp(sum(rs[0].logp_new)) == pytest.approx(2e-9)
    r_tok = float(ex.token_ratio[0, 0])
    assert r_tok ** 7 == pytest.approx(2) and round(r_tok ** 70) == 1024 == 2 ** 10

    assert_numbers(data["notes"], [
        "003", 1, 7, 9, 2, 5, 8, 3, 3, 5,                        # responses 1–3: lengths and rewards
        *whole, *s3,                                            # 2, 1.5, 0.8 and s
        # step 4, the article
        4, *g, s3[0], g[0], s3[1], g[1], 2, s3[2], g[2], *article, 1,   # ... /2 − ...; no 1/|y|
        # step 4, corrected
        4, 1, 1, 9, 8, 5, *[sf(a, 3) for a in A],              # (1/G), (1/|y_i|), rewards, A
        *g, *L,                                                 # stand-ins, |y_i|
        1, 3,                                                   # (1/3)
        s3[0], f(A[0], 3), g[0], L[0], s3[1], f(A[1], 3), g[1], L[1], s3[2], f(A[2], 3), g[2], L[2],
        f(core_grad, 3), article[2],                            # = 0.049, not 2.53
        1, f(w[0], 4), f(w[1], 4), f(w[2], 3), *g,              # (1/G)·s_i·A_i/|y_i|, times 5, 3, 2
        "0.2", "3e-4", "4e-4", 0,                               # ε here, GSPO's own ε, gradient 0
        # why 1/|y_i|
        1, "1e-9", "1e-5", "2e-9", "1e-9", f(2e-9 / 1e-9, 0), 1, 1, s3[0], f(r_tok ** 7, 0), 7,
        round(r_tok ** 70), 70, s3[0],
    ])


def test_seed003_two_tables_disagree():
    data, res = load("seed003_two_tables_disagree")
    ex = res.explanation
    # GRPO table: π_θ/π_old = Π p_new / Π p_old = (0.4·0.25·0.18·0.7·0.6)/(0.3·0.2·0.15·0.8·0.4) = 0.00756/0.00288
    old, new = math.prod(MOVIE_OLD), math.prod(MOVIE_NEW)
    assert (old, new) == (pytest.approx(0.00288), pytest.approx(0.00756))
    assert new / old == pytest.approx(2.625) and math.prod(MOVIE_R) == pytest.approx(2.625)
    r1, r2 = res.scenario.responses
    assert math.exp(sum(r1.logp_old)) == pytest.approx(old) and math.exp(sum(r1.logp_new)) == pytest.approx(new)
    s_grpo_table, s_gspo_table = 2.625 ** (1 / 5), 1.5 ** (1 / 5)
    assert ex.seq_ratio.tolist() == pytest.approx([s_grpo_table, s_gspo_table], rel=1e-12)
    # GSPO table's y_B: 1e-7 -> 1.5e-7, spread equally over 5 tokens
    assert math.exp(sum(r2.logp_old)) == pytest.approx(1e-7) and math.exp(sum(r2.logp_new)) == pytest.approx(1.5e-7)
    assert ex.token_ratio[1].tolist() == pytest.approx([s_gspo_table] * 5, rel=1e-12)
    assert res.advantages.tolist() == [1.0, 1.0]
    assert (ex.settings.eps_low, ex.settings.eps_high) == (3e-4, 4e-4)
    assert [ex.clip_name(i, 0) for i in range(2)] == ["upper", "upper"] and (ex.grad_weight == 0).all()

    seq = [f(x, 3) for x in ex.seq_ratio.tolist()]
    assert seq == ["1.213", "1.084"]
    prod = f(math.exp(sum(r1.logp_new) - sum(r1.logp_old)), 3)
    L = len(r1.logp_old)
    assert_numbers(data["notes"], [
        "003", 1, *MOVIE_OLD, *MOVIE_NEW, *R3,                  # response 1: the GRPO table
        f"{math.exp(sum(r1.logp_old)):.5f}", f"{math.exp(sum(r1.logp_new)):.5f}",
        *R3, prod, prod, 1, L, seq[0],                          # product of the ratios = 2.625; 2.625^(1/5)
        2, "1e-7", "1.5e-7", "1.5", "1.5", 1, L, seq[1], L, f(float(ex.token_ratio[1, 0]), 3),  # response 2
        seq[0], seq[1],                                         # one answer has one ratio
        f(float(res.advantages[0]), 0), f(1 - 3e-4, 4), f(1 + 4e-4, 4), 0,   # A = 1; GSPO's range; weight 0
    ])


# ======================================================================================== shared/seeds/004
def test_seed004_clip_higher_still_clipped():
    data, res = load("seed004_clip_higher_still_clipped")
    dapo = res.explanation
    grpo = load("seed004_clip_higher_still_clipped", "grpo")[1].explanation
    # the article: p_old = 0.2, ε = 0.2: upper bound 0.2·1.2 = 0.24, and p_new = 0.4 is r = 2; DAPO: 0.2·1.28 = 0.256
    assert f(0.2 * 1.2, 2) == "0.24" and f(0.2 * 1.28, 3) == "0.256"
    assert dapo.token_ratio[0].tolist() == pytest.approx([2.0, 1.25]) and dapo.token_ratio[1].tolist() == [1.0, 1.0]
    assert (dapo.settings.eps_low, dapo.settings.eps_high, grpo.settings.eps_high) == (0.2, 0.28, 0.2)
    A = z_scores([1, 0])  # ±0.5/(sqrt(0.5) + 1e-6) = ±0.707
    assert res.advantages.tolist() == pytest.approx(A, rel=1e-12)
    # DAPO: r = 2 > 1.28 still clipped; r = 1.25 kept with weight r·A/Σ|y_i| = 1.25·0.707/4
    assert [dapo.clip_name(0, t) for t in range(2)] == ["upper", "none"]
    w = 1.25 * A[0] / 4
    assert dapo.grad_weight[0].tolist() == pytest.approx([0, w], rel=1e-12)
    # GRPO (ε_high = 0.2): both above 1.2, both clipped
    assert [grpo.clip_name(0, t) for t in range(2)] == ["upper", "upper"] and (grpo.grad_weight[0] == 0).all()
    # which p_new does clip-higher let through? 0.24 < p_new <= 0.256 (ratio in (1.2, 1.28])
    for p_new, grpo_clips, dapo_clips in ((0.239, False, False), (0.241, True, False), (0.255, True, False),
                                          (0.257, True, True)):
        d = json.loads(json.dumps(data))
        d["responses"][0]["p_new"][1] = p_new
        for obj, clips in (("grpo", grpo_clips), ("dapo", dapo_clips)):
            e = run_scenario(parse_scenario(d, obj)).explanation
            assert (e.clip_name(0, 1) == "upper") is clips, (p_new, obj)

    assert_numbers(data["notes"], [
        "004", "0.2", "0.2", "0.2", "1.2", "0.24", "0.4", 2,   # ε, p_old, 0.2 × 1.2 = 0.24, p_new = 0.4 (r = 2)
        "0.28", "0.2", "1.28", "0.256", "0.4",
        1, 1, sf(A[0], 3), "0.2", "0.4", 2, "0.25", "1.25",    # response 1 (reward 1): "Wait" and "let"
        2, 0, sf(A[1], 3), 1,                                   # response 2 (reward 0), r = 1
        "0.2", "0.28", 1, 0, 2, "1.25", f(A[0], 3), 4, f(w, 3),  # DAPO: t = 1 weight 0; t = 2: 1.25 × 0.707/4
        "0.2", 0,                                               # GRPO: both weights 0
        "0.24", "0.256", "1.2", "1.28", "0.25",                 # the band clip-higher opens
    ])


def test_dapo_clip_higher_notes():
    data, res = load("dapo_clip_higher")
    dapo = res.explanation
    grpo = load("dapo_clip_higher", "grpo")[1].explanation
    # DAPO paper §3.1: 0.9 × 1.2 = 1.08 > 1 (never binding), 0.01 × 1.2 = 0.012; clip-higher: 0.01 × 1.28 = 0.0128
    assert (f(0.9 * 1.2, 2), f(0.01 * 1.2, 3), f(0.01 * 1.28, 4)) == ("1.08", "0.012", "0.0128")
    r_wait, r_comma = (float(x) for x in dapo.token_ratio[0, :2])
    assert r_wait == pytest.approx(0.0125 / 0.01) and r_comma == pytest.approx(0.95 / 0.9)
    assert (dapo.settings.eps_low, dapo.settings.eps_high) == (0.2, 0.28)
    A = z_scores([1, 0])
    # Σ|y_i| = 5 + 3 = 8; "Wait" unclipped under DAPO: r·A/8
    w = 1.25 * A[0] / 8
    assert float(dapo.grad_weight[0, 0]) == pytest.approx(w, rel=1e-12) and dapo.clip_name(0, 0) == "none"
    assert grpo.clip_name(0, 0) == "upper" and float(grpo.grad_weight[0, 0]) == 0 and grpo.clip_name(0, 1) == "none"
    # a rare token that went past 1.28 (p_new = 0.02, r = 2) is still clipped under DAPO
    d = json.loads(json.dumps(data))
    d["responses"][0]["p_new"][0] = 0.02
    far = run_scenario(parse_scenario(d)).explanation
    assert float(far.token_ratio[0, 0]) == pytest.approx(2) and far.clip_name(0, 0) == "upper"
    assert float(far.grad_weight[0, 0]) == 0

    notes = data["notes"]
    assert "clip-higher fixes" not in notes
    n = sum(len(r.logp_old) for r in res.scenario.responses)
    assert_numbers(notes, [
        "3.1", "0.2", "0.9", "0.9", "1.2", "1.08", "0.01", "0.01", "1.2", "0.012",
        1, 1, "0.01", "0.0125", f(r_wait, 2),                  # response 1, reward 1; "Wait"
        "0.2", "0.28", "1.28", f(r_wait, 2), f(A[0], 3), n, f(w, 3),   # DAPO: 1.25 × 0.707/8 = 0.110
        "0.2", 0, "0.9", "0.95", f(r_comma, 3), "004",          # GRPO: weight 0; "," keeps learning; seeds/004
        "1.2", "1.28", "0.01", "1.28", "0.0128", "0.012", "1.28", "0.02", 2, 0,
        1, 1, n, 1, 1, "004", 1, 1,                             # 1/Σ|y_i| = 1/8; (1/G)·(1/|y_i|); 1/|o_i|; 1/Σ|o_i|
    ])


def test_seed004_token_level_loss_200_vs_10():
    data, res = load("seed004_token_level_loss_200_vs_10")
    assert [len(r.logp_old) for r in res.scenario.responses] == [200, 10]
    assert (res.explanation.token_ratio[res.explanation.mask > 0] == 1).all()  # r = 1, A = 1 given
    assert res.advantages.tolist() == [1.0, 1.0]
    gw = {obj: load("seed004_token_level_loss_200_vs_10", obj)[1].explanation.grad_weight for obj in
          ("grpo", "dapo", "dr_grpo")}
    # GRPO: (1/2)(1/200) = 1/400 and (1/2)(1/10) = 1/20; DAPO: 1/(200 + 10) = 1/210; Dr.GRPO: 1/(2·200) = 1/400
    assert set(gw["grpo"][0, :200].tolist()) == {1 / 400} and set(gw["grpo"][1, :10].tolist()) == {1 / 20}
    assert set(gw["dapo"][0, :200].tolist()) == {1 / 210} and set(gw["dapo"][1, :10].tolist()) == {1 / 210}
    assert set(gw["dr_grpo"][0, :200].tolist()) == {1 / 400} and set(gw["dr_grpo"][1, :10].tolist()) == {1 / 400}
    # shares of the update: DAPO 200/210 and 10/210, GRPO 1/2 each
    assert float(gw["dapo"][0].sum()) == pytest.approx(200 / 210)
    assert float(gw["dapo"][1].sum()) == pytest.approx(10 / 210)
    assert float(gw["grpo"][0].sum()) == pytest.approx(1 / 2) == float(gw["grpo"][1].sum())

    inv = {k: (round(1 / float(v[0, 0])), round(1 / float(v[1, 0]))) for k, v in gw.items()}
    assert inv == {"grpo": (400, 20), "dapo": (210, 210), "dr_grpo": (400, 400)}
    G, (L1, L2) = 2, [len(r.logp_old) for r in res.scenario.responses]
    assert_numbers(data["notes"], [
        "004", L1, L2, 1, 1, 1,                                 # r = 1, A = 1, r·A = 1
        1, 1, 1, 1, G, 1, L1, 1, inv["grpo"][0],                # (1/G)(1/|y_i|); response 1: (1/2)(1/200) = 1/400
        2, 1, G, 1, L2, 1, inv["grpo"][1], inv["grpo"][0] // inv["grpo"][1],   # response 2: 1/20, 20 times more
        1, 1, inv["dapo"][0], 1, L1, inv["dapo"][0], 2, L2, inv["dapo"][0], 1, 2,   # DAPO 1/210; 200/210; 10/210; 1/2
        1, 1, inv["dr_grpo"][0],                                # Dr.GRPO: 1/(G·L_max) = 1/400
    ])


@pytest.mark.parametrize("name,reward", [("seed004_ten_responses_all_correct", 1),
                                         ("seed004_ten_responses_all_wrong", 0)])
def test_seed004_ten_responses_all_equal(name, reward):
    data, res = load(name)
    ex = res.explanation
    assert len(res.scenario.responses) == 10 and res.rewards == [reward] * 10
    # mean = reward, std = 0: A = (R − R)/(0 + 1e-6) = 0 for all ten
    assert res.reward_mean == reward and res.reward_std == 0
    assert res.advantages.tolist() == [0.0] * 10 and res.no_signal and not res.dropped
    assert ex.settings.beta == 0
    assert (ex.policy_grad == 0).all() and (ex.grad_weight == 0).all() and ex.loss == 0
    ratios = ex.token_ratio[ex.mask > 0]
    assert float(ratios.min()) < 0.8 and float(ratios.max()) > 1.2  # the ratios did move, past both bounds
    for obj in ("dapo", "gspo", "dual_clip", "dr_grpo"):
        other = load(name, obj)[1].explanation
        assert (other.policy_grad == 0).all() and other.loss == 0
    dropped = load(name, dynamic_sampling=True)[1]
    assert dropped.dropped and dropped.masked == list(range(10))
    assert dropped.explanation.metrics["dropped_by_dynamic_sampling"] is True

    lo, hi = f(float(ratios.min()), 2), f(float(ratios.max()), 2)
    assert_numbers(data["notes"], [
        "004", 10, reward, 1 - reward, 10,                      # 10 responses; reward; the other file's reward
        reward, 0, reward, reward, 0, "1e-6", 0,                # mean, std, (R − R)/(0 + 1e-6) = 0
        0, 0, lo, hi,                                           # weights 0, loss 0; the ratios' range
        0, 11, 10,                                              # 0 < #correct < G, DAPO eq. 11; all 10 responses
    ])


def test_seed004_dual_clip_table():
    data, res = load("seed004_dual_clip_table")
    dc = res.explanation
    ppo = load("seed004_dual_clip_table", "grpo")[1].explanation
    assert res.advantages.tolist() == [1.0, -1.0] and dc.settings.dual_clip_c == 3.0
    assert dc.settings.eps_low == dc.settings.eps_high == 0.2
    assert dc.token_ratio[0, :2].tolist() == pytest.approx([1.1, 1.5])
    assert dc.token_ratio[1].tolist() == pytest.approx([0.5, 2.0, 5.0])
    # aggregation weights (1/G)(1/|y_i|): 1/4 on response 1, 1/6 on response 2
    # row 1 (A = +1, r = 1.1 in [0.8, 1.2]): r·A/4 = 0.275, PPO and Dual-Clip alike
    # row 2 (A = +1, r = 1.5 > 1.2): clipped, the term is the constant 1.2·A, gradient 0
    # row 3 (A = −1, r = 0.5 < 0.8): clipped, the term is the constant 0.8·A, gradient 0
    # row 4 (A = −1, r = 2, 1.2 < r < c = 3): r·A/6 = −1/3 under both (Dual-Clip is PPO below c)
    # row 5 (A = −1, r = 5 > c): PPO r·A/6 = −5/6; Dual-Clip holds the term at c·A = −3, gradient 0
    right_ppo = [[1.1 / 4, 0], [0, -2 / 6, -5 / 6]]
    right_dc = [[1.1 / 4, 0], [0, -2 / 6, 0]]
    for e, right in ((ppo, right_ppo), (dc, right_dc)):
        assert e.grad_weight[0, :2].tolist() == pytest.approx(right[0], abs=1e-12)
        assert e.grad_weight[1].tolist() == pytest.approx(right[1], abs=1e-12)
    assert [ppo.clip_name(0, 1), ppo.clip_name(1, 0), ppo.clip_name(1, 1), ppo.clip_name(1, 2)] == \
        ["upper", "lower", "none", "none"]
    assert [dc.clip_name(0, 1), dc.clip_name(1, 0), dc.clip_name(1, 1), dc.clip_name(1, 2)] == \
        ["upper", "lower", "none", "dual"]
    # the terms: J = (1.1·1 + 1.2·1)/4 + (0.8·(−1) + 2·(−1) + 5·(−1))/6 under PPO; Dual-Clip has c·A = −3 for row 5
    assert ppo.J == pytest.approx((1.1 + 1.2) / 4 + (-0.8 - 2 - 5) / 6)
    assert dc.J - ppo.J == pytest.approx((3 * -1 - 5 * -1) / 6)

    g = ppo.grad_weight.tolist()
    r = [[f"{round(x, 6):g}" for x in row] for row in (dc.token_ratio[0, :2].tolist(), dc.token_ratio[1].tolist())]
    assert r == [["1.1", "1.5"], ["0.5", "2", "5"]]
    c = f(dc.settings.dual_clip_c, 0)
    assert_numbers(data["notes"], [
        "004", "0.2", c, 1, "+1", 2, 2, "−1", 3,               # ε, c; response 1 (A = +1, 2 tokens), 2 (−1, 3 tokens)
        1, 2, 1, 2, 1, 4, 1, 1, 2, 1, 3, 1, 6, 2, 4, 6,         # (1/2)(1/2) = 1/4 ... (1/2)(1/3) = 1/6 ..., r·A/4, r·A/6
        1, 1, "+1", r[0][0], f(g[0][0], 3),                     # row 1: response 1, t = 1
        1, 2, "+1", r[0][1], 0, "1.2",                          # row 2: response 1, t = 2; 0; 1.2·A
        2, 1, "−1", r[1][0], 0, "0.8",                          # row 3: response 2, t = 1; 0; 0.8·A
        1, 2, 2, "−1", r[1][1], f(g[1][1], 3),                  # row 4: 1 + ε; response 2, t = 2
        1, 2, 3, "−1", r[1][2], f(g[1][2], 3), f(g[1][2] / g[1][1], 1), 0, f(-1 * 3.0, 0),  # row 5; Dual-Clip c·A
        0, 0, 0, 0, 1, 6,                                       # gradient 0, A > 0, A < 0; A < 0, r > 1 + ε, r·A/6
        1, "1.2", c, 5, f(g[1][2], 3),                          # between 1 + ε = 1.2 and c = 3; row 5 under GRPO
    ])


def test_seed004_dual_clip_formula():
    data, res = load("seed004_dual_clip_formula")
    dc = res.explanation
    ppo = load("seed004_dual_clip_formula", "grpo")[1].explanation
    A, r, c = -1.0, 5.0, 3.0
    assert res.advantages.tolist() == [A] and float(dc.token_ratio[0, 0]) == pytest.approx(r)
    assert dc.settings.dual_clip_c == c and dc.settings.eps_low == dc.settings.eps_high == 0.2
    clip_r = min(max(r, 0.8), 1.2)
    # one token, one response: aggregation weight (1/1)(1/1) = 1, so J is the term itself
    right = max(min(r * A, clip_r * A), c * A)              # max(min(−5, −1.2), −3) = −3
    article_min = min(r * A, clip_r * A, c * A)             # min(−5, −1.2, −3) = −5
    article_max = max(r * A, clip_r * A, c * A)             # max(−5, −1.2, −3) = −1.2
    assert (right, article_min, article_max) == (-3.0, -5.0, pytest.approx(-1.2))
    assert dc.J == pytest.approx(right) and dc.clip_name(0, 0) == "dual" and float(dc.grad_weight[0, 0]) == 0
    assert ppo.J == pytest.approx(article_min) and float(ppo.grad_weight[0, 0]) == pytest.approx(r * A)
    assert dc.J != pytest.approx(article_max) and dc.J != pytest.approx(article_min)
    # for A >= 0 Dual-Clip is PPO
    d = json.loads(json.dumps(data))
    d["responses"][0]["advantage"] = 1.0
    pos = run_scenario(parse_scenario(d)).explanation
    assert pos.J == pytest.approx(min(r, clip_r)) == run_scenario(parse_scenario(d, "grpo")).explanation.J

    rA, cA, kA = f(r * A, 0), f(c * A, 0), f(clip_r * A, 1)
    R = f(float(dc.token_ratio[0, 0]), 0)
    assert_numbers(data["notes"], [
        f(A, 0), "0.1", "0.5", R, f(c, 0), 1,                   # A = −1; p 0.1 → 0.5: r = 5, c = 3; weight 1
        R, "0.8", "1.2", f(clip_r, 1),                          # clip(5, 0.8, 1.2) = 1.2
        0, rA, kA, cA, f(right, 0), f(dc.J, 0), 0,              # right: max(min(−5, −1.2), −3) = −3; J = −3; weight 0
        rA, kA, cA, f(article_min, 0), f(ppo.J, 0), f(float(ppo.grad_weight[0, 0]), 0),   # the min of three: −5
        0, rA, kA, cA, f(article_max, 1),                       # case A < 0, the max of three: −1.2
        0, 0, R, 0,                                             # A ≥ 0; [0, c]; r still 5; gradient 0
    ])


def test_seed004_grpo_gradient_per_token():
    data, res = load("seed004_grpo_gradient_per_token")
    ex = res.explanation
    A = z_scores([1, 0])
    assert res.advantages.tolist() == pytest.approx(A, rel=1e-12)
    r = [[1, 1.1, 1, 1], [1, 1]]
    assert ex.token_ratio[0].tolist() == pytest.approx(r[0]) and ex.token_ratio[1, :2].tolist() == pytest.approx(r[1])
    assert (ex.clip == 0).all() and ex.settings.beta == 0
    # right: (1/G)·r_{i,t}·A_i/|o_i|; the article's A_i·|o_i|/|o_i|: (1/G)·r_{i,t}·A_i
    L = [4, 2]
    right = [[0.5 * x * A[i] / L[i] for x in r[i]] for i in range(2)]
    article = [[0.5 * x * A[i] for x in r[i]] for i in range(2)]
    assert ex.grad_weight[0].tolist() == pytest.approx(right[0], rel=1e-12)
    assert ex.grad_weight[1, :2].tolist() == pytest.approx(right[1], rel=1e-12)
    assert article[0][0] / right[0][0] == pytest.approx(L[0]) and article[1][0] / right[1][0] == pytest.approx(L[1])

    gw = ex.grad_weight.tolist()
    a = f(A[0], 3)
    assert_numbers(data["notes"], [
        "004", 1, 1, 0, 1,                                      # (1/G) twice; β = 0; (1/G)
        1, 1, L[0], 2, 0, L[1], sf(A[0], 3), sf(A[1], 3),       # response 1 (reward 1, 4 tokens), 2 (0, 2), A
        2, 1, f(r[0][1], 1), 1,                                 # t = 2 of response 1 has r = 1.1; others 1
        1, 1, 2, 1, a, L[0], f(gw[0][0], 4), 1, 3, 4,           # right: (1/2)·1·0.707/4 = 0.0884 on t = 1, 3, 4
        1, 2, f(r[0][1], 1), a, L[0], f(gw[0][1], 4), 2,        # (1/2)·1.1·0.707/4 = 0.0972 on t = 2
        2, 1, 2, f(A[1], 3), L[1], f(gw[1][0], 3),              # response 2: (1/2)·(−0.707)/2 = −0.177
        f(article[0][0], 3), f(article[0][1], 3), f(article[1][0], 3), L[0], L[1],   # the article's: 4 and 2 times
    ])


def test_seed004_gspo_keeps_every_response():
    data, res = load("seed004_gspo_keeps_every_response")
    ex = res.explanation
    # rewards 1, 1, 0, 0: mean 0.5, sample std sqrt(4·0.25/3) = 0.577, A = ±0.5/(0.577 + 1e-6) = ±0.866
    A = z_scores([1, 1, 0, 0])
    assert res.advantages.tolist() == pytest.approx(A, rel=1e-12) and f(A[0], 3) == "0.866"
    s = [1, math.exp(0.02), 1, 1]  # response 2: log-probabilities +0.02 on both tokens
    assert ex.seq_ratio.tolist() == pytest.approx(s, rel=1e-12)
    assert (ex.settings.eps_low, ex.settings.eps_high) == (3e-4, 4e-4)
    assert [ex.clip_name(i, 0) for i in range(4)] == ["none", "upper", "none", "none"]
    L = [3, 2, 2, 4]
    w = [0.25 * s[i] * A[i] / L[i] if i != 1 else 0.0 for i in range(4)]
    for i in range(4):
        assert ex.grad_weight[i, :L[i]].tolist() == pytest.approx([w[i]] * L[i], rel=1e-9, abs=1e-15)
    # every response with A != 0 and s inside the range contributes, the wrong ones too (negative weights)
    assert all(float(ex.grad_weight[i, 0]) < 0 for i in (2, 3))
    d = [b - a for a, b in zip(res.scenario.responses[1].logp_old, res.scenario.responses[1].logp_new)]
    assert d == pytest.approx([0.02, 0.02])

    G = len(L)
    assert_numbers(data["notes"], [
        "004", 0, 1, 0, 1, 1, f(1 - 3e-4, 4), f(1 + 4e-4, 4),   # A_i ≠ 0; (1/G); A_i < 0; [1 − ε, 1 + ε] = [...]
        1, 1, 0, 0, *[sf(a, 3) for a in A],                     # rewards; A
        1, f(s[0], 0), L[0], 1, G, 1, f(A[0], 3), L[0], f(w[0], 4),   # response 1: (1/4)·1·0.866/3
        2, f(d[0], 2), f(s[1], 3), f(1 + 4e-4, 4), 0, 0,        # response 2: +0.02 per token, s = 1.020, clipped, 0
        3, 4, f(s[2], 0),                                       # responses 3 and 4, s = 1
        1, G, f(A[2], 3), L[2], f(w[2], 3), 1, G, f(A[3], 3), L[3], f(w[3], 4),
    ])


def test_seed004_overlong_reward_shaping():
    data, res = load("seed004_overlong_reward_shaping")
    ex = res.explanation
    lengths = [len(r.logp_old) for r in res.scenario.responses]
    assert lengths == [3, 6, 8, 3] and res.rewards == [1, 1, 1, 0]
    # DAPO eq. 13, L_max = 8, L_cache = 4: 0 up to 4 tokens, (4 − |y|)/4 up to 8 tokens, −1 beyond
    def penalty(n, l_max=8, l_cache=4):
        return 0.0 if n <= l_max - l_cache else (l_max - l_cache - n) / l_cache if n <= l_max else -1.0
    shaped = [R + penalty(n) for R, n in zip([1, 1, 1, 0], lengths)]
    assert shaped == [1.0, 0.5, 0.0, 0.0] and res.shaped_rewards == pytest.approx(shaped)
    A = z_scores(shaped)
    assert res.advantages.tolist() == pytest.approx(A, rel=1e-12)
    plain = load("seed004_overlong_reward_shaping", overlong=None)[1]
    A0 = z_scores([1, 1, 1, 0])
    assert plain.shaped_rewards == [1, 1, 1, 0] and plain.advantages.tolist() == pytest.approx(A0, rel=1e-12)
    # DAPO aggregation, r = 1: every token of response i weighs A_i/Σ|y_i|, Σ|y_i| = 20, the same on all its tokens
    n = sum(lengths)
    for i, k in enumerate(lengths):
        assert ex.grad_weight[i, :k].tolist() == pytest.approx([A[i] / n] * k, rel=1e-12)

    sh = [f(x, 1) if x % 1 else f(x, 0) for x in res.shaped_rewards]
    pen = [f(-penalty(k), 1) if penalty(k) % 1 else f(-penalty(k), 0) for k in lengths]
    assert sh == ["1", "0.5", "0", "0"] and pen[1:3] == ["0.5", "1"]
    assert_numbers(data["notes"], [
        "004", 0, -1,                                           # R_length = 0 ..., −1 beyond
        8, 4, 8 - 4, *lengths[:3], 1, lengths[3], 0,            # L_max, L_cache, threshold; lengths and rewards
        sh[0], 1, pen[1], sh[1], 1, pen[2], sh[2], sh[3],       # shaped: 1, 1 − 0.5 = 0.5, 1 − 1 = 0, 0
        *[sf(a, 3) for a in A], *[sf(a, 3) for a in A0],        # with and without the punishment
        3, lengths[2], lengths[2], f(A[2], 3), n, f(float(ex.grad_weight[2, 0]), 4),   # response 3: −0.783/20
        1, n, 1, 1, 0,                                          # 1/Σ|y_i|, Σ|y_i| = 20; (1 − 1 = 0)
    ])


# =========================================================================== existing seed examples, their notes
def test_movie_five_tokens_notes():
    data, res = load("movie_five_tokens")
    ex = res.explanation
    assert ex.token_ratio[0].tolist() == pytest.approx(MOVIE_R) and res.advantages.tolist() == [1.0]
    assert ex.settings.eps_low == ex.settings.eps_high == 0.2
    J = (1.2 * 4 + 0.875) / 5  # (1/5)(1.2 + 1.2 + 1.2 + 0.875 + 1.2)·A, A = 1
    assert ex.J == pytest.approx(J)
    gw = ex.grad_weight[0].tolist()
    assert gw == pytest.approx([0, 0, 1.2 / 5, 0.875 / 5, 0])
    # the article's clip as a product: min(w, 1.2)·max(w, 0.8) for w = 1.33 is 1.2·1.33 ≈ 1.6
    assert f(min(1.33, 1.2) * max(1.33, 0.8), 1) == "1.6"
    assert_numbers(data["notes"], [
        *PCT_OLD, *PCT_NEW, *R3, "+1", "0.2", "0.8", "1.2",
        1, 2, 5, "1.2", 0, 0, "1.2", "1.2",                     # tokens 1, 2, 5 > 1.2 with A > 0: 0; 1.2·G_t; 1.2·A
        3, "0.18", "0.15", "1.2", 1, 5, "1.2", f(gw[2], 2),     # token 3: (1/5)·1.2·A = 0.24
        4, "0.875", "0.8", "1.2", "0.875", "0.8", "0.8", 1, 5, "0.875", f(gw[3], 3),   # token 4: 0.175
        1, 5, "1.2", "1.2", "1.2", "0.875", "1.2", f(ex.J, 3),  # J = 1.135
        1, 1, 1, 1, 1, 1, "1.33", "1.2", "1.33", f(1.2 * 1.33, 1),   # clip(w, 1−ε, 1+ε) ...; 1.2·1.33 = 1.6
    ])


def test_three_responses_gspo_notes():
    data, res = load("three_responses_gspo")
    ex = res.explanation
    s = ex.seq_ratio.tolist()
    assert s == pytest.approx([2 ** (1 / 7), 1.5 ** (1 / 5), 0.8 ** (1 / 3)], rel=1e-12)
    A = z_scores([9, 8, 5])
    assert res.advantages.tolist() == pytest.approx(A, rel=1e-12)
    article_A = (round(s[0], 3) + round(s[1], 3)) / 2 - round(s[2], 3)  # (1.104 + 1.084)/2 − 0.928 = 0.166
    assert (ex.clip > 0).all() or (ex.grad_weight == 0).all()
    assert (ex.grad_weight == 0).all()
    assert_numbers(data["notes"], [
        7, 9, 5, 8, 3, 5, 2, "1.5", "0.8",                      # lengths, rewards, whole ratios
        "1e-9", "2e-9", "1e-7", "1.5e-7", "1e-5", "0.8e-5",
        1, 2, 1, 7, f(s[0], 3), "1.5", 1, 5, f(s[1], 3), "0.8", 1, 3, f(s[2], 3),   # 2^(1/7) ≈ 1.104 ...
        f(article_A, 3), 9, 8, 5, f(res.reward_mean, 3), f(res.reward_std, 3), *[sf(a, 3) for a in A],
        "3e-4", "4e-4", f(1 - 3e-4, 4), f(1 + 4e-4, 4), 0, 0, 0,   # range; A > 0, A < 0, weights 0
        "1e-3", 1, "0.2", 1,                                    # within 1e-3 of 1; ε = 0.2; (1/G)
    ])


def test_dual_clip_negative_advantage_notes():
    data, res = load("dual_clip_negative_advantage")
    ex = res.explanation
    plain = load("dual_clip_negative_advantage", "grpo")[1].explanation
    A = z_scores([1, 0])
    r = 0.40 / 0.05
    assert float(ex.token_ratio[1, 3]) == pytest.approx(r)
    assert float(plain.grad_weight[1, 3]) == pytest.approx(r * A[1] / 8)  # (1/2)(1/4)·8·A
    assert ex.clip_name(1, 3) == "dual" and float(ex.grad_weight[1, 3]) == 0
    assert_numbers(data["notes"], [
        1, 0, sf(A[0], 3), f(A[1], 3), 41, "0.05", "0.40", f(r, 0), 3, 0,   # rewards, A, token "41", r = 8, c = 3
        0, f(r * A[1], 2), 1, 1, 1, f(float(plain.grad_weight[1, 3]), 3),   # r·A = −5.66; (1/G)(1/|y|)·r·A
        3, f(A[1], 3), f(3 * A[1], 2), 0, 0, "0.8", 0,          # c·A = 3·(−0.707) = −2.12; weight 0; A ≥ 0; r < 0.8
    ])
