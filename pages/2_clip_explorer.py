"""Clip Explorer: each objective's per-token term and gradient weight as functions of the ratio, for A > 0 and A < 0.

Layout only: the curves are the objectives' own functions evaluated by gspo_viz.core.curves; which objective goes
where comes from its attributes (level, knobs, defaults, has_surrogate, clip_form), never from its name."""
import streamlit as st

from gspo_viz import OBJECTIVES, ScenarioError, parse_scenario
from gspo_viz.core.curves import clip_band, clip_curve, ratio_axis, reach_axis, same_curves, zoom_axis
from gspo_viz.core.settings import Settings
from gspo_viz.ui.cache import cached_clip_curve, objective_view, scenario_key
from gspo_viz.ui.state import control, require_app, slider, within
from gspo_viz.ui.talk import in_talk
from gspo_viz.ui.widgets import PLOT_ARGS
from gspo_viz.views.plots import clip_explorer_figure
from gspo_viz.views.style import fmt

require_app()

TALK = in_talk()   # a talk's scene: no title, no settings, the marked token's curves first and nothing else
# objectives whose term is a function of the ratio alone (DPPO's region reads π − π_old, VESPO's weight the whole
# response's product of ratios): only these can be drawn against r
TOKEN_LEVEL = [n for n, o in OBJECTIVES.items() if o.level == "token" and o.ratio_only]
NOT_DRAWN = [n for n, o in OBJECTIVES.items() if not o.ratio_only]
SEQUENCE_LEVEL = [n for n, o in OBJECTIVES.items() if o.level == "sequence"]

# The sliders each knob gets: label, min, max, step (for the token-ratio scale) ...
KNOB_SLIDERS = {
    "eps_low": ("ε_low", 0.0, 0.9, 0.01),
    "eps_high": ("ε_high", 0.0, 2.0, 0.01),
    "dual_clip_c": ("c (floor c·A for A < 0)", 1.05, 10.0, 0.05),
    "gmpo_eps": ("ε (on the log-ratio)", 0.05, 2.0, 0.05),
    "tau_pos": ("τ_pos (gate, A > 0)", 0.1, 10.0, 0.05),
    "tau_neg": ("τ_neg (gate, A < 0)", 0.1, 10.0, 0.05),
}
# ... and the number boxes on the sequence-ratio scale: label, min, max, step.
SEQ_KNOB_INPUTS = {
    "eps_low": ("ε_low", 0.0, 0.5, 1e-4),
    "eps_high": ("ε_high", 0.0, 0.5, 1e-4),
}
# Knobs that act elsewhere than on one token's curve.
NOT_ON_CURVES = {"max_tokens": "L_max acts on the aggregation only, not on these one-token curves"}


def num(x: float) -> str:
    """A bound or a ratio for prose: up to 6 significant digits (the sequence bands need more than 4 decimals)."""
    return f"{x:.6g}"


def knob_controls(name: str, table: dict, number_box: bool = False) -> Settings:
    """One widget per knob of the objective that has a numeric default, seeded with that default; the objective's
    header above them. Returns the objective's Settings."""
    obj = OBJECTIVES[name]
    if not TALK:
        st.markdown(f"<span style='color:{obj.color};font-weight:600'>■ {obj.title}</span>", unsafe_allow_html=True)
    values, notes = {}, []
    for knob in obj.knobs:
        default = obj.defaults.get(knob)
        if knob in NOT_ON_CURVES:
            notes.append(NOT_ON_CURVES[knob])
        elif default is None:
            notes.append(f"{table[knob][0] if knob in table else knob}: none by default (no such bound)")
        elif knob in table:
            label, lo, hi, step = table[knob]
            if number_box:
                values[knob] = control(f"ce_{name}_{knob}", lambda v, k: st.number_input(
                    label, lo, hi, float(v), step, format="%.4f", key=k), float(default))
            else:
                values[knob] = control(f"ce_{name}_{knob}", lambda v, k: slider(
                    st, label, lo, hi, float(v), step, key=k), float(default))
    if notes and not TALK:
        st.caption("; ".join(notes) + ".")
    return Settings(**values)


def in_columns(names: list[str], per_row: int, make) -> dict:
    """make(name) for each name, laid out per_row to a row; returns {name: result}."""
    out = {}
    for start in range(0, len(names), per_row):
        cols = st.columns(per_row)
        for col, name in zip(cols, names[start:start + per_row]):
            with col:
                out[name] = make(name)
    return out


def strip_legend(curves: dict, sign: float) -> None:
    """Which objective each zero-gradient strip belongs to: row k from the top is the k-th curve."""
    rows = []
    for k, (name, c) in enumerate(curves.items()):
        obj = OBJECTIVES[name]
        swatch = (f"<span style='display:inline-block;width:1.8em;height:0.6em;background:{obj.color};opacity:0.7'>"
                  "</span>")
        rows.append(f"<span style='white-space:nowrap'>{k + 1}. {swatch} {obj.title}</span>" if c.zero_regions else
                    f"<span style='white-space:nowrap'>{k + 1}. {obj.title}: none (never exactly 0 here)</span>")
    if rows:
        st.markdown(f"<div style='font-size:0.85em;color:#555'>Strips along the top of the two plots above, from the "
                    f"top down (where the gradient is exactly 0 for A = {sign:+g}): " + " &nbsp; ".join(rows)
                    + "</div>", unsafe_allow_html=True)


if not TALK:
    st.title("Clip Explorer")
    st.caption("Where does each objective stop learning? The per-token term (left) and its gradient weight "
               "∂term/∂log π_θ (right) against the ratio, for one token with A = +1 and A = −1. "
               "The coloured strips "
               "along the top of each plot mark where that objective's gradient is exactly 0; the line under each pair "
               "of plots says which strip is which objective.")

chosen = control("ce_objectives", lambda v, k: st.multiselect(
    "Token-level objectives (their clip acts on the token ratio r)", TOKEN_LEVEL, default=v, key=k,
    format_func=lambda n: OBJECTIVES[n].title), TOKEN_LEVEL)
if NOT_DRAWN and not TALK:
    st.caption(f"Not drawn against r: {', '.join(OBJECTIVES[n].title for n in NOT_DRAWN)}. Their terms depend on "
               "more than the token's ratio (π_old itself, or the whole response's ratios); compare them in the "
               "Token Lab.")
if TALK:
    SETTINGS = {n: knob_controls(n, KNOB_SLIDERS) for n in chosen}    # the scene's values, nothing drawn
else:
    with st.expander("Each objective's settings (starting from its paper's defaults)", expanded=False):
        SETTINGS = in_columns(chosen, 4, lambda n: knob_controls(n, KNOB_SLIDERS))
x_max = control("ce_xmax", lambda v, k: slider(st, "Ratio axis up to", 1.5, 12.0, v, 0.5, key=k), 4.0)

# A token of the current scenario, marked on the curves.
scenario = parse_scenario(st.session_state.scenario)
choices = [(i, t) for i, r in enumerate(scenario.responses) for t in range(len(r.tokens))]
marked = control("ce_token", lambda v, k: st.selectbox(
    "Mark a token of the current scenario", list(range(len(choices))), index=min(v, len(choices) - 1), key=k,
    format_func=lambda j: f"response {choices[j][0] + 1}, t = {choices[j][1] + 1}: "
                          f"“{scenario.responses[choices[j][0]].tokens[choices[j][1]]}”"), 0)
i, t = choices[within(marked, len(choices))]   # a talk scene's value: no widget has checked it
key = scenario_key(st.session_state.scenario)
r_tok, A, s_i, tok_ratios = None, 0.0, None, []
try:
    res = objective_view(key, TOKEN_LEVEL[0], 300).result
    L_i = len(scenario.responses[i].tokens)
    tok_ratios = res.explanation.token_ratio[i, :L_i].tolist()
    r_tok = tok_ratios[t]
    adv = res.advantages[i]
    A = float(adv) if adv.dim() == 0 else float(adv[t])
except ScenarioError as e:
    st.warning(f"The current scenario cannot mark a token here: {e}")
seq_obj = None
for n in SEQUENCE_LEVEL:
    try:
        s_i = float(objective_view(key, n, 300).result.explanation.seq_ratio[i])
        seq_obj = OBJECTIVES[n]
        break
    except ScenarioError:
        continue
if r_tok is not None:
    side = "A > 0" if A > 0 else "A < 0" if A < 0 else None
    st.markdown(f"Marked token: r = **{fmt(r_tok)}**, A = **{fmt(A)}** (so it sits on the "
                + (f"{side} curves)" if side else "A = 0: no curve, every objective's gradient is 0 there)")
                + (f"; its response's sequence ratio is {seq_obj.seq_ratio_symbol} = **{fmt(s_i)}**."
                   if s_i is not None else "."))

axis = ratio_axis(x_max, (r_tok,) if r_tok is not None else ())
grid = axis.grid
notes = []
if axis.extended:
    usual = ratio_axis(x_max)
    ends = ([f"up to {num(axis.high)}, past the slider's {num(x_max)}"] if axis.high > usual.high else []) + \
        ([f"down to {num(axis.low)}, below the usual {num(usual.low)}"] if axis.low < usual.low else [])
    notes.append(f"The ratio axis runs {' and '.join(ends)}, so that the marked token (r = {fmt(r_tok)}) is on it.")
for n in chosen:
    obj = OBJECTIVES[n]
    if not obj.has_surrogate:
        notes.append(f"{obj.title} has no term to plot against the ratio (left): only its gradient weight (right).")
    if obj.clip_form == "log-space":
        notes.append(f"For {obj.title} the x-axis is still the token's ratio r = e^Δ; its clip acts on Δ at ±ε.")
curves = {sign: {n: cached_clip_curve(n, grid, sign, SETTINGS[n]) for n in chosen} for sign in (1.0, -1.0)}
same = same_curves({n: [curves[s][n].value for s in curves] + [curves[s][n].grad for s in curves] for n in chosen})
for n, m in same.items():
    differs = (f" (they differ in aggregation: {OBJECTIVES[n].aggregation} against {OBJECTIVES[m].aggregation}, "
               "see Length & Aggregation)" if OBJECTIVES[n].aggregation != OBJECTIVES[m].aggregation else "")
    notes.append(f"{OBJECTIVES[n].title}'s curves lie exactly on {OBJECTIVES[m].title}'s at these settings{differs}.")
if notes:
    st.caption(" ".join(notes))

if r_tok is not None and A != 0:
    zero = [n for n in chosen if clip_curve(n, [r_tok], 1.0 if A > 0 else -1.0, SETTINGS[n]).grad[0] == 0]
    flows = [OBJECTIVES[n].title for n in chosen if n not in zero]
    st.markdown(f"At the marked token (r = {fmt(r_tok)}, A {'>' if A > 0 else '<'} 0) the gradient is exactly 0 "
                f"under **{', '.join(OBJECTIVES[n].title for n in zero) or 'none of them'}**"
                + (f" and flows under {', '.join(flows)}." if flows else "."))


def panel(curves: dict, sign: float, x_title: str, marker_x, what: str, tag: str, height: int = 360) -> None:
    marker = (marker_x, f"marked {what}") if marker_x is not None and (A > 0) == (sign > 0) and A != 0 else None
    left, right = st.columns(2)
    left.plotly_chart(clip_explorer_figure(curves, "value", sign, x_title, marker, height=height),
                      key=f"v{sign}{tag}", **PLOT_ARGS)
    right.plotly_chart(clip_explorer_figure(curves, "grad", sign, x_title, marker, height=height),
                       key=f"g{sign}{tag}", **PLOT_ARGS)
    strip_legend(curves, sign)


SIDES = ((1.0, "A > 0 (a better-than-average answer)"), (-1.0, "A < 0 (a worse-than-average answer)"))
if TALK and r_tok is not None and A != 0:     # a talk shows the side the marked token is on, and only that
    SIDES = tuple(s for s in SIDES if (s[0] > 0) == (A > 0))
for sign, label in SIDES:
    st.subheader(label)
    if chosen:
        panel(curves[sign], sign, "token ratio r", r_tok, "token", "tok")

# ------------------------------------------------------------------------------------ sequence-level objectives
def sequence_section() -> None:
    """The sequence-level objectives on their own scale (s_i), with the marked response."""
    st.subheader("On their own scale: objectives that clip the sequence ratio s_i")
    SEQ_SETTINGS = in_columns(SEQUENCE_LEVEL, 4, lambda n: knob_controls(n, SEQ_KNOB_INPUTS, number_box=True))
    seq_bands = {n: clip_band(n, SEQ_SETTINGS[n]) for n in SEQUENCE_LEVEL}
    tok_bands = {n: clip_band(n, SETTINGS[n]) for n in chosen}
    tok_bands = {n: b for n, b in tok_bands.items() if b is not None}
    saxis = zoom_axis([b for b in seq_bands.values() if b is not None])
    seq_text = "; ".join(f"{OBJECTIVES[n].title} clips s_i to [{num(b.low)}, {num(b.high)}], a band {num(b.width)} wide"
                         for n, b in seq_bands.items() if b is not None)
    tok_text = ", ".join(f"{OBJECTIVES[n].title}'s [{num(b.low)}, {num(b.high)}] ({num(b.width)} wide)"
                         for n, b in tok_bands.items())
    caption = seq_text + "." + (f" On the token ratio r, at the settings above: {tok_text}." if tok_text else "")
    if s_i is not None and tok_ratios:
        caption += (f" s_i is the geometric mean of the response's token ratios, so it lies between the smallest "
                    f"and the "
                    f"largest of them: for the marked response, r from {fmt(min(tok_ratios))} to "
                    f"{fmt(max(tok_ratios))}, s_i = {fmt(s_i)}.")
    st.caption(caption)
    seq_curves = {sign: {n: cached_clip_curve(n, saxis.grid, sign, SEQ_SETTINGS[n]) for n in SEQUENCE_LEVEL}
                  for sign in (1.0, -1.0)}
    seq_same = same_curves({n: [seq_curves[s][n].value for s in seq_curves]
                            + [seq_curves[s][n].grad for s in seq_curves] for n in SEQUENCE_LEVEL})
    seq_notes = [f"{OBJECTIVES[n].title}'s curves lie exactly on {OBJECTIVES[m].title}'s at these settings: for a "
                 "one-token response they are the same function of s_i." for n, m in seq_same.items()]
    on_axis = s_i is not None and saxis.low <= s_i <= saxis.high
    off_axis = s_i is not None and A != 0 and not on_axis     # the marked response gets a wider axis of its own
    if off_axis:
        seq_notes.append(f"The marked response's s_i = {fmt(s_i)} lies off this zoom on the bands "
                         f"([{num(saxis.low)}, {num(saxis.high)}]): the two plots after these reach it.")
    if seq_notes:
        st.caption(" ".join(seq_notes))
    for sign in (1.0, -1.0):
        panel(seq_curves[sign], sign, "sequence ratio s_i", s_i if on_axis else None, "response", "seq")
    if off_axis:
        sgn = 1.0 if A > 0 else -1.0
        waxis = reach_axis([b for b in seq_bands.values() if b is not None], (s_i,))
        wide = {n: cached_clip_curve(n, waxis.grid, sgn, SEQ_SETTINGS[n]) for n in SEQUENCE_LEVEL}
        zero = [OBJECTIVES[n].title for n in SEQUENCE_LEVEL
                if clip_curve(n, [s_i], sgn, SEQ_SETTINGS[n]).grad[0] == 0]
        st.markdown(f"**The marked response on a wider axis** (s_i from {num(waxis.low)} to {num(waxis.high)}, "
                    f"A {'>' if A > 0 else '<'} 0): at s_i = {fmt(s_i)} the gradient "
                    + (f"is exactly 0 under {', '.join(zero)}." if zero else "is not 0 under any of them.")
                    + " The bands are too narrow to see at this scale: the plots above zoom on them.")
        panel(wide, sgn, "sequence ratio s_i", s_i, "response", "wide")
    st.caption("Each point of these curves is a one-token response, so r = s_i there. The gradient curves show "
               "s_i·A_i: in a longer response every one of its |y_i| tokens gets s_i·A_i times (1/G)·(1/|y_i|).")


if not TALK:
    sequence_section()
