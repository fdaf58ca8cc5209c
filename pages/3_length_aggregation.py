"""Length & Aggregation: how response length changes each token's weight, what clipping allows, and DAPO's
overlong punishment. Layout only: the numbers come from gspo_viz.core.curves; which objective goes where comes from
its attributes (aggregation, level, clip_form, knobs, defaults), never from its name."""
import streamlit as st

from gspo_viz.core.aggregation import AGGREGATIONS
from gspo_viz.core.curves import (drift_clip, drift_sequence_ratio, overlong_curve, overlong_free_until, papers_using,
                                  same_curves, sequence_ratio_band, shortest_unclipped_length, trend,
                                  whole_answer_weights, within_band)
from gspo_viz.core.objectives import OBJECTIVES
from gspo_viz.core.settings import Settings
from gspo_viz.ui.cache import cached_drift, cached_weights
from gspo_viz.ui.state import control, require_app, slider
from gspo_viz.ui.widgets import PLOT_ARGS
from gspo_viz.views.plots import lines_figure

require_app()

TREND = {"constant": "stays the same", "rises": "grows", "falls": "shrinks", "varies": "changes"}
BUDGETED = [n for n, o in OBJECTIVES.items() if "max_tokens" in o.knobs]       # objectives that read L_max
TOKEN_CLIP = [n for n, o in OBJECTIVES.items() if o.level == "token" and o.clip_form == "ppo"]
SEQ_CLIP = [n for n, o in OBJECTIVES.items() if o.level == "sequence" and o.clip_form == "ppo"]


def g(x: float) -> str:
    """A bound or ratio for prose, with the digits the small sequence bands need."""
    return f"{x:.6g}"


def eps_controls(name: str, cols, number_box: bool) -> Settings:
    """ε_low and ε_high of one objective, seeded with its own defaults (keys per objective)."""
    d = OBJECTIVES[name].defaults
    out = {}
    for col, knob, label in zip(cols, ("eps_low", "eps_high"), ("ε_low", "ε_high")):
        title = f"{OBJECTIVES[name].title} {label}"
        if number_box:
            out[knob] = control(f"la_{name}_{knob}", lambda v, k: col.number_input(
                title, 1e-5, 0.1, float(v), 1e-4, format="%.5f", key=k), float(d[knob]))
        else:
            out[knob] = control(f"la_{name}_{knob}", lambda v, k: slider(
                col, title, 0.01, 0.5, float(v), 0.01, key=k), float(d[knob]))
    return Settings(**out)


st.title("Length & Aggregation")
st.caption("Long and short answers in the same group: who gets how much gradient, and what the clip allows.")

# ------------------------------------------------------------------------------ 1. per-token weight against length
st.subheader("1 · A token's gradient weight against its response's length")
c1, c2, c3, c4 = st.columns(4)
G = control("la_G", lambda v, k: slider(c1, "G (answers in the group)", 2, 32, v, key=k), 8)
other = control("la_other", lambda v, k: slider(c2, "length of the other answers", 1, 512, v, key=k), 32)
budget_of = ", ".join(OBJECTIVES[n].title for n in BUDGETED)
l_max = control("la_lmax", lambda v, k: slider(c3, f"L_max ({budget_of})", 16, 1024, v, 16, key=k), 512)
top_wanted = control("la_top", lambda v, k: slider(c4, "lengths up to", 16, 1024, v, 16, key=k), 512)
top = min(top_wanted, l_max)
lengths = sorted(set([1, 2, 3, 5] + list(range(8, top + 1, max(1, top // 32))) + [top]))
weights = cached_weights(tuple(lengths), G, other, l_max)
same = same_curves({n: [w] for n, w in weights.items()})


def papers(mode: str) -> str:
    return ", ".join(OBJECTIVES[n].title for n in papers_using(mode)) or "no paper here; verl offers it"


def weight_label(mode: str) -> str:
    return f"{mode} ({papers(mode)}" + ("; a response's weight ÷ L)" if mode == "seq-mean" else ")")


def paper_style(mode: str) -> tuple[str, str]:
    """The colour and dash of the first objective whose paper uses the mode (grey, dotted, for none)."""
    users = papers_using(mode)
    return (OBJECTIVES[users[0]].color, OBJECTIVES[users[0]].dash) if users else ("#777777", "dot")


def mode_style(mode: str) -> tuple[str, str]:
    """paper_style, but a curve that lies exactly on another's with the same dash gets another dash."""
    color, dash = paper_style(mode)
    if mode in same and paper_style(same[mode])[1] == dash:
        dash = "dash" if dash != "dash" else "dot"
    return color, dash


labels = {m: weight_label(m) for m in weights}
st.plotly_chart(lines_figure(lengths, {labels[m]: w for m, w in weights.items()},
                             "per-token gradient weight (A = 1, ratio 1) of an answer of length L, per loss_agg_mode",
                             "length L", "weight per token", log_y=True,
                             colors={labels[m]: mode_style(m)[0] for m in weights},
                             dashes={labels[m]: mode_style(m)[1] for m in weights}),
                **PLOT_ARGS, key="weights")
k_top = lengths.index(top)
lines = []
for m, w in weights.items():
    whole = whole_answer_weights(lengths, w)
    line = (f"- **{m}** ({papers(m)}): {AGGREGATIONS[m]}"
            + (" over per-sequence terms, each spread over its answer's L tokens" if m == "seq-mean" else "")
            + f". One token: **{w[k_top]:.3g}**, the whole answer: **{whole[k_top]:.3g}**. From L = {lengths[0]} "
              f"to {top}, the per-token weight {TREND[trend(w)]} and the whole answer's {TREND[trend(whole)]}")
    if m in same:
        line += f"; the same numbers as {same[m]}'s at every length shown (at ratio 1)"
    lines.append(line + ".")
st.markdown(f"With G = {G} and the other {G - 1} answers at {other} tokens, a token of a {top}-token answer "
            "weighs, under each `loss_agg_mode` (verl's names; each objective takes its paper's unless the scenario "
            "sets one):\n" + "\n".join(lines))
if top < top_wanted:
    st.caption(f"The lengths stop at L_max = {l_max}: {budget_of} divides by this budget, which no answer may "
               "exceed.")
if other > l_max:
    st.caption(f"The other answers ({other} tokens) are longer than L_max = {l_max}; {budget_of} assumes no answer "
               "exceeds its budget.")

# ------------------------------------------------------------------------------ 2. sequence ratio band
st.subheader("2 · How far can a whole answer's likelihood move before clipping stops it?")
d1, d2, d3 = st.columns(3)
tok_name = control("la_tok", lambda v, k: d1.selectbox(
    "token-level clip", TOKEN_CLIP, index=TOKEN_CLIP.index(v), key=k, format_func=lambda n: OBJECTIVES[n].title),
    TOKEN_CLIP[0])
tok_cfg = eps_controls(tok_name, (d2, d3), number_box=False)
e0, e1, e2, e3 = st.columns(4)
seq_name = control("la_seq", lambda v, k: e0.selectbox(
    "sequence-level clip", SEQ_CLIP, index=SEQ_CLIP.index(v), key=k, format_func=lambda n: OBJECTIVES[n].title),
    SEQ_CLIP[0])
seq_cfg = eps_controls(seq_name, (e1, e2), number_box=True)
L2 = control("la_L2", lambda v, k: slider(e3, "lengths up to ", 4, 512, v, 4, key=k), 128)
TOK, SEQ = OBJECTIVES[tok_name], OBJECTIVES[seq_name]
lens2 = sorted(set(range(1, L2 + 1, max(1, L2 // 128))) | {L2})   # the chosen length itself: the numbers below
tok_lo, tok_hi = sequence_ratio_band(lens2, tok_cfg.eps_low, tok_cfg.eps_high)
seq_lo, seq_hi = sequence_ratio_band(lens2, seq_cfg.eps_low, seq_cfg.eps_high)
band_series = {
    f"{TOK.title}, every token at 1 + ε_high: ({g(1 + tok_cfg.eps_high)})^L": (tok_hi, TOK),
    f"{TOK.title}, every token at 1 − ε_low: ({g(1 - tok_cfg.eps_low)})^L": (tok_lo, TOK),
    f"{SEQ.title}, s_i at 1 + ε_high: ({g(1 + seq_cfg.eps_high)})^L": (seq_hi, SEQ),
    f"{SEQ.title}, s_i at 1 − ε_low: ({g(1 - seq_cfg.eps_low)})^L": (seq_lo, SEQ),
}
st.plotly_chart(lines_figure(lens2, {k: v for k, (v, _) in band_series.items()},
                             "whole-answer ratio π_θ(y)/π_old(y) with every token (or s_i) on a clip bound",
                             "length L", "whole-sequence ratio", log_y=True,
                             colors={k: o.color for k, (_, o) in band_series.items()},
                             dashes={k: o.dash for k, (_, o) in band_series.items()}),
                **PLOT_ARGS, key="band")
st.markdown(
    f"At L = {lens2[-1]}: with every token inside {TOK.title}'s [{g(1 - tok_cfg.eps_low)}, "
    f"{g(1 + tok_cfg.eps_high)}], so that no token is clipped, the whole answer's likelihood ratio can still be "
    f"anywhere in [{tok_lo[-1]:.3g}, {tok_hi[-1]:.3g}] (every token on a bound gives an end). {SEQ.title}'s clip "
    f"acts on s_i, the L-th root of that ratio: it can stop the response (A > 0 above the band, A < 0 below it) once "
    f"s_i leaves [{g(1 - seq_cfg.eps_low)}, {g(1 + seq_cfg.eps_high)}], that is once the whole answer's ratio leaves "
    f"[{seq_lo[-1]:.6g}, {seq_hi[-1]:.6g}]. Token clipping bounds each token, not the sequence.")

# ------------------------------------------------------------------------------ 3. one token drifts
st.subheader("3 · One token drifts: how s_i responds as the answer grows (the length-bias critique)")
f1, f2 = st.columns(2)
delta = control("la_delta", lambda v, k: slider(f1, "that token's log-ratio δ", -3.0, 3.0, v, 0.05, key=k), 0.5)
L3 = control("la_L3", lambda v, k: slider(f2, "lengths up to  ", 4, 8192, v, 4, key=k), 4096)
N = shortest_unclipped_length(delta, seq_cfg.eps_low, seq_cfg.eps_high)
exact = [L for L in ((N - 1, N) if N else ()) if 1 <= L <= L3]
lens3 = sorted(set(list(range(1, min(L3, 64) + 1)) + list(range(64, L3 + 1, max(1, L3 // 128))) + [L3] + exact))
s, dist = cached_drift(tuple(lens3), delta)
side = ("eps_high", "ε_high") if delta >= 0 else ("eps_low", "ε_low")
seq_eps, tok_eps = getattr(seq_cfg, side[0]), getattr(tok_cfg, side[0])
dist_name = "|s_i − 1| = |exp(δ/L) − 1|"
seq_line = f"{SEQ.title}'s {side[1]} = {seq_eps:g}"
tok_line = f"{TOK.title}'s {side[1]} = {tok_eps:g} (on each token)"
st.plotly_chart(lines_figure(lens3, {dist_name: dist, seq_line: [seq_eps] * len(lens3),
                                     tok_line: [tok_eps] * len(lens3)},
                             f"how far s_i sits from 1 when one token has log-ratio {delta:g} and the rest 0 "
                             "(log–log)", "length L", "|s_i − 1|", log_y=True, log_x=True,
                             colors={dist_name: SEQ.color, seq_line: SEQ.color, tok_line: TOK.color},
                             dashes={seq_line: "dash", tok_line: "dot"}),
                **PLOT_ARGS, key="drift")

token_ratio = drift_sequence_ratio([1], delta)[0]  # a one-token response: s = r = e^δ
tok_codes = {sign: drift_clip([1], delta, sign, tok_name, tok_cfg)[0] for sign in (1.0, -1.0)}
tok_band = f"{TOK.title}'s [{g(1 - tok_cfg.eps_low)}, {g(1 + tok_cfg.eps_high)}]"
if within_band(token_ratio, tok_cfg.eps_low, tok_cfg.eps_high):
    tok_text = f"inside {tok_band}: token clipping leaves it alone at every length."
else:
    hit = [("A > 0" if sign > 0 else "A < 0") for sign, c in tok_codes.items() if c != "none"]
    free = [("A > 0" if sign > 0 else "A < 0") for sign, c in tok_codes.items() if c == "none"]
    tok_text = (f"outside {tok_band}: with {' or '.join(hit)} token clipping zeroes that token's gradient at every "
                f"length" + (f"; with {' or '.join(free)} it does not" if free else "") + "." if hit else
                f"outside {tok_band}, yet token clipping leaves it alone with either sign of A.")
st.markdown(f"The drifting token's own ratio is e^δ = **{token_ratio:.4g}** at every length, {tok_text}")
if delta == 0:
    st.markdown(f"With δ = 0, s_i = 1 at every length: {SEQ.title} has nothing to clip.")
elif N is None:
    st.markdown(f"{SEQ.title} divides δ by L, but with {side[1]} = 0 no length brings s_i = e^(δ/L) back inside "
                f"[{g(1 - seq_cfg.eps_low)}, {g(1 + seq_cfg.eps_high)}].")
else:
    at = drift_sequence_ratio([max(N - 1, 1), N], delta, seq_name)
    N2 = shortest_unclipped_length(2 * delta, seq_cfg.eps_low, seq_cfg.eps_high)
    bound, rel = ("1 + ε_high", "≤") if delta > 0 else ("1 − ε_low", "≥")
    text = (f"{SEQ.title} divides δ by L: s_i = e^(δ/L) is inside [{g(1 - seq_cfg.eps_low)}, "
            f"{g(1 + seq_cfg.eps_high)}] from L = **{N}** on (the smallest L with e^(δ/L) {rel} {bound}: "
            f"⌈δ / ln({bound})⌉"
            + (f"; at L = {N - 1}, s_i = {at[0]:.9g}, at L = {N}, {at[1]:.9g}" if N > 1 else "")
            + ")" + (", beyond the lengths plotted" if N > L3 else "") + ". "
            + (f"That length grows with |δ|: at δ = {2 * delta:g} it would be **{N2}**." if N2 and N2 > N else ""))
    if N > 1:
        seq_codes = {sign: drift_clip([1, N - 1, N], delta, sign, seq_name, seq_cfg) for sign in (1.0, -1.0)}
        text += f"\n\nBelow L = {N}, whether {SEQ.title} clips the response depends on the sign of its advantage:"
        for sign, codes in seq_codes.items():
            a = "A > 0" if sign > 0 else "A < 0"
            if codes[0] != "none" and codes[1] != "none":
                text += (f"\n- **{a}** pushes s_i further the way the token drifted: the response is clipped at "
                         f"every L < {N} ({SEQ.marks.get(codes[1], codes[1])}).")
            elif codes[0] == "none" and codes[1] == "none":
                text += (f"\n- **{a}** pushes s_i back towards 1: the response is not clipped at any length.")
        text += ("\n\nSo with A's sign matching the drift, the same token's change is clipped in a short answer and "
                 "not in a long one: long answers dilute one token's drift.")
    st.markdown(text)

# ------------------------------------------------------------------------------ 4. overlong punishment
st.subheader("4 · DAPO's soft overlong punishment")
h1, h2 = st.columns(2)
o_max = control("la_omax", lambda v, k: slider(h1, "L_max", 16, 32768, v, 16, key=k), 20480)
o_cache = control("la_ocache", lambda v, k: slider(h2, "L_cache", 1, 8192, v, 1, key=k), 4096)
if o_cache > o_max:
    st.error(f"L_cache ({o_cache}) must not exceed L_max ({o_max}); the chart keeps L_cache = L_max.",
             icon=":material/error:")
    o_cache = o_max
free = overlong_free_until(o_max, o_cache)
# the ramp's two corners exactly (L_max − L_cache and L_max), not the nearest sampled lengths
lens4 = sorted(set(range(0, int(o_max * 1.15) + 1, max(1, o_max // 200))) | {free, o_max})
pen = overlong_curve(lens4, o_max, o_cache)
st.plotly_chart(lines_figure(lens4, {"R_length": pen}, "reward added for a response of length |y|", "length |y|",
                             "penalty", colors={"R_length": "#555555"}), **PLOT_ARGS, key="overlong")
st.markdown(f"No penalty up to L_max − L_cache = **{free}** tokens, then a linear ramp "
            f"((L_max − L_cache) − |y|)/L_cache down to −1 at L_max = **{o_max}**, and −1 beyond: enough to "
            "cancel a correct answer's reward of 1. DAPO's setting is L_max = 20480 with L_cache = 4096 (its "
            "16,384 expected tokens + 4,096 of cache); truncated answers can also be masked out altogether "
            "(overlong filtering).")
