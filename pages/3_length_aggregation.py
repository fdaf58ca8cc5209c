"""Length & Aggregation: how response length changes each token's weight, what clipping allows, and DAPO's
overlong punishment. Layout only: the numbers come from gspo_viz.curves."""
import streamlit as st

from gspo_viz.curves import (drift_sequence_ratio, first_length_within, overlong_curve, sequence_ratio_band,
                             within_band)
from gspo_viz.objectives import OBJECTIVES
from gspo_viz.plots import lines_figure
from gspo_viz.style import COLORS, DASHES, fmt
from gspo_viz.ui.cache import cached_drift, cached_weights
from gspo_viz.ui.widgets import PLOT_ARGS
from gspo_viz.ui.state import control, require_app

require_app()

st.title("Length & Aggregation")
st.caption("Long and short answers in the same group: who gets how much gradient, and what the clip allows.")

# ------------------------------------------------------------------------------ 1. per-token weight against length
st.subheader("1 · A token's gradient weight against its response's length")
c1, c2, c3, c4 = st.columns(4)
G = control("la_G", lambda v, k: c1.slider("G (answers in the group)", 2, 32, v, key=k), 8)
other = control("la_other", lambda v, k: c2.slider("length of the other answers", 1, 512, v, key=k), 32)
l_max = control("la_lmax", lambda v, k: c3.slider("Dr.GRPO L_max", 16, 1024, v, 16, key=k), 512)
top = control("la_top", lambda v, k: c4.slider("lengths up to", 16, 1024, v, 16, key=k), 512)
top = min(top, l_max)
lengths = sorted(set([1, 2, 3, 5] + list(range(8, top + 1, max(1, top // 32))) + [top]))
weights = cached_weights(tuple(lengths), G, other, l_max)
names = {n: OBJECTIVES[n].title for n in weights}
st.plotly_chart(lines_figure(lengths, {names[n]: w for n, w in weights.items()},
                             "per-token gradient weight (A = 1, ratio 1) of an answer of length L", "length L",
                             "weight per token", log_y=True, colors={names[n]: COLORS[n] for n in weights},
                             dashes={names[n]: DASHES[n] for n in weights} | {names["gspo"]: "dash"}),
                **PLOT_ARGS, key="weights")
w = {n: weights[n][lengths.index(top)] for n in weights}
st.markdown(
    f"With G = {G} and the others at {other} tokens, a token of a {top}-token answer weighs "
    f"**{w['grpo']:.3g}** under GRPO's (1/G)(1/|y_i|) (the whole answer: 1/G = {1 / G:.3g}, however long), "
    f"**{w['dapo']:.3g}** under DAPO's 1/Σ|y_i| (every token of the group alike), **{w['dr_grpo']:.3g}** under "
    f"Dr.GRPO's 1/(G·L_max) (a constant: longer answers weigh more in total), and **{w['gspo']:.3g}** under GSPO, "
    "whose (1/G)·s_i·A_i/|y_i| matches GRPO's per-token weight at s = 1.")

# ------------------------------------------------------------------------------ 2. sequence ratio band
st.subheader("2 · How far can a whole answer's likelihood move before clipping stops it?")
d1, d2, d3 = st.columns(3)
eps_tok = control("la_eps", lambda v, k: d1.slider("token clip ε (GRPO)", 0.01, 0.5, v, 0.01, key=k), 0.2)
eps_seq = control("la_eps_seq", lambda v, k: d2.number_input("GSPO ε", 1e-5, 0.1, v, 1e-4, format="%.4f", key=k),
                  4e-4)
L2 = control("la_L2", lambda v, k: d3.slider("lengths up to ", 4, 512, v, 4, key=k), 128)
lens2 = list(range(1, L2 + 1, max(1, L2 // 128)))
tok_lo, tok_hi = sequence_ratio_band(lens2, eps_tok, eps_tok)
seq_lo, seq_hi = sequence_ratio_band(lens2, eps_seq, eps_seq)
st.plotly_chart(lines_figure(lens2, {"token clipping: (1+ε)^L": tok_hi, "token clipping: (1−ε)^L": tok_lo,
                                     "GSPO: (1+ε)^L": seq_hi, "GSPO: (1−ε)^L": seq_lo},
                             "π_θ(y)/π_old(y) reachable before every token (or the sequence) is clipped", "length L",
                             "whole-sequence ratio", log_y=True,
                             colors={"token clipping: (1+ε)^L": COLORS["grpo"], "token clipping: (1−ε)^L": COLORS["grpo"],
                                     "GSPO: (1+ε)^L": COLORS["gspo"], "GSPO: (1−ε)^L": COLORS["gspo"]}),
                **PLOT_ARGS, key="band")
st.markdown(f"At L = {lens2[-1]}, token clipping with ε = {eps_tok:g} still lets the whole answer's likelihood "
            f"ratio range over [{tok_lo[-1]:.3g}, {tok_hi[-1]:.3g}], while GSPO's band on s_i, "
            f"[{fmt(1 - eps_seq)}, {fmt(1 + eps_seq)}], is the same as [{seq_lo[-1]:.4g}, {seq_hi[-1]:.4g}] on the "
            "whole sequence: token clipping bounds each token, not the sequence.")

# ------------------------------------------------------------------------------ 3. one token drifts
st.subheader("3 · One token drifts: how s_i responds as the answer grows (the length-bias critique)")
e1, e2 = st.columns(2)
delta = control("la_delta", lambda v, k: e1.slider("that token's log-ratio δ", -3.0, 3.0, v, 0.05, key=k), 0.5)
L3 = control("la_L3", lambda v, k: e2.slider("lengths up to  ", 4, 8192, v, 4, key=k), 4096)
lens3 = sorted(set(list(range(1, min(L3, 64) + 1)) + list(range(64, L3 + 1, max(1, L3 // 128))) + [L3]))
s, dist = cached_drift(tuple(lens3), delta)
gspo_eps = eps_seq
series = {"|s_i − 1| = |exp(δ/L) − 1|": dist, f"GSPO's ε = {gspo_eps:g}": [gspo_eps] * len(lens3),
          f"GRPO's ε = {eps_tok:g} (on each token)": [eps_tok] * len(lens3)}
st.plotly_chart(lines_figure(lens3, series, f"how far s_i sits from 1 when one token has log-ratio {delta:g} and the "
                             "rest 0 (log–log)", "length L", "|s_i − 1|", log_y=True, log_x=True,
                             colors={"|s_i − 1| = |exp(δ/L) − 1|": COLORS["gspo"],
                                     f"GSPO's ε = {gspo_eps:g}": COLORS["gspo"],
                                     f"GRPO's ε = {eps_tok:g} (on each token)": COLORS["grpo"]},
                             dashes={f"GSPO's ε = {gspo_eps:g}": "dash",
                                     f"GRPO's ε = {eps_tok:g} (on each token)": "dot"}),
                **PLOT_ARGS, key="drift")
first_inside = first_length_within(lens3, s, eps_seq, eps_seq)
token_ratio = drift_sequence_ratio([1], delta)[0]  # a one-token response: s = r = e^δ
clipped = not within_band(token_ratio, eps_tok, eps_tok)
st.markdown(
    f"The drifting token's own ratio is e^δ = **{token_ratio:.4g}** at every length, "
    + (f"outside GRPO's [{fmt(1 - eps_tok)}, {fmt(1 + eps_tok)}]: token clipping acts on it however long the answer. "
       if clipped else f"inside GRPO's [{fmt(1 - eps_tok)}, {fmt(1 + eps_tok)}]: token clipping leaves it alone. ")
    + "GSPO divides δ by L: "
    + (f"from L = **{first_inside}** on, s_i falls inside GSPO's band and the response is no longer clipped, "
       "however large the one token's change. Long answers dilute a token's drift; short ones are clipped first: "
       "the length bias that later work (e.g. VESPO) points out." if first_inside else
       "within these lengths s_i never enters GSPO's band, so the response stays clipped."))

# ------------------------------------------------------------------------------ 4. overlong punishment
st.subheader("4 · DAPO's soft overlong punishment")
f1, f2 = st.columns(2)
o_max = control("la_omax", lambda v, k: f1.slider("L_max", 16, 32768, v, 16, key=k), 20480)
o_cache = control("la_ocache", lambda v, k: f2.slider("L_cache", 1, 8192, v, 1, key=k), 4096)
if o_cache > o_max:
    st.error(f"L_cache ({o_cache}) must not exceed L_max ({o_max}); the chart keeps L_cache = L_max.",
             icon=":material/error:")
    o_cache = o_max
lens4 = list(range(0, int(o_max * 1.15) + 1, max(1, o_max // 200)))
pen = overlong_curve(lens4, o_max, o_cache)
st.plotly_chart(lines_figure(lens4, {"R_length": pen}, "reward added for a response of length |y|", "length |y|",
                             "penalty", colors={"R_length": COLORS["dapo"]}), **PLOT_ARGS, key="overlong")
st.markdown(f"No penalty up to L_max − L_cache = **{o_max - o_cache}** tokens, then a linear ramp to −1 at "
            f"L_max = **{o_max}** (((L_max − L_cache) − |y|)/L_cache), and −1 beyond: enough to cancel a correct "
            "answer's reward of 1. DAPO's defaults are L_max = 20480 with L_cache = 4096 (its 16,384 + 4,096 "
            "budget); truncated answers can also be masked out altogether (overlong filtering).")
