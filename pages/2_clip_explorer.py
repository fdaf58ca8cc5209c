"""Clip Explorer: each objective's per-token term and gradient weight as functions of the ratio, for A > 0 and A < 0.

Layout only: the curves are the objectives' own functions evaluated by gspo_viz.curves."""
import streamlit as st

from gspo_viz import OBJECTIVES, ScenarioError, parse_scenario
from gspo_viz.plots import clip_explorer_figure
from gspo_viz.settings import Settings
from gspo_viz.style import fmt
from gspo_viz.ui.cache import cached_clip_curve, objective_view, scenario_key
from gspo_viz.ui.widgets import PLOT_ARGS
from gspo_viz.ui.state import control, require_app

require_app()

TOKEN_LEVEL = [n for n in OBJECTIVES if n not in ("gspo", "gspo_token")]

st.title("Clip Explorer")
st.caption("Where does each objective stop learning? The per-token term (left) and its gradient weight "
           "∂term/∂log π_θ (right) against the ratio, for one token with A = +1 and A = −1. The coloured strips "
           "along the top of each plot mark where that objective's gradient is exactly 0. CISPO has no clipped "
           "term, only a capped weight (right).")

r1 = st.columns(4)
eps = control("ce_eps", lambda v, k: r1[0].slider("GRPO / Dual-Clip ε", 0.0, 0.9, v, 0.01, key=k), 0.2)
c = control("ce_c", lambda v, k: r1[1].slider("Dual-Clip c", 1.05, 10.0, v, 0.05, key=k), 3.0)
dapo_low = control("ce_dapo_low", lambda v, k: r1[2].slider("DAPO ε_low", 0.0, 0.9, v, 0.01, key=k), 0.2)
dapo_high = control("ce_dapo_high", lambda v, k: r1[3].slider("DAPO ε_high (clip-higher)", 0.0, 2.0, v, 0.01, key=k),
                    0.28)
r2 = st.columns(4)
cispo_high = control("ce_cispo_high", lambda v, k: r2[0].slider("CISPO ε_high", 0.0, 2.0, v, 0.01, key=k), 0.2)
gmpo_eps = control("ce_gmpo", lambda v, k: r2[1].slider("GMPO ε (log space)", 0.05, 2.0, v, 0.05, key=k), 0.4)
tau_pos = control("ce_tau_pos", lambda v, k: r2[2].slider("SAPO τ_pos", 0.1, 10.0, v, 0.05, key=k), 1.0)
tau_neg = control("ce_tau_neg", lambda v, k: r2[3].slider("SAPO τ_neg", 0.1, 10.0, v, 0.05, key=k), 1.05)
chosen = control("ce_objectives", lambda v, k: st.multiselect(
    "Token-level objectives", TOKEN_LEVEL, default=v, key=k, format_func=lambda n: OBJECTIVES[n].title),
    ["grpo", "dual_clip", "dapo", "cispo", "gmpo", "sapo"])
x_max = control("ce_xmax", lambda v, k: st.slider("Ratio axis up to", 1.5, 12.0, v, 0.5, key=k), 4.0)
st.caption("Dr.GRPO's per-token term is GRPO's (it differs only in aggregation, see Length & Aggregation). "
           "For GMPO the x-axis is the token's ratio e^Δ and the clip acts on Δ at ±ε.")

SETTINGS = {
    "grpo": Settings(eps_low=eps, eps_high=eps), "dr_grpo": Settings(eps_low=eps, eps_high=eps),
    "dual_clip": Settings(eps_low=eps, eps_high=eps, dual_clip_c=c),
    "dapo": Settings(eps_low=dapo_low, eps_high=dapo_high), "cispo": Settings(eps_high=cispo_high),
    "gmpo": Settings(gmpo_eps=gmpo_eps), "sapo": Settings(tau_pos=tau_pos, tau_neg=tau_neg),
}

# A token of the current scenario, marked on the curves.
scenario = parse_scenario(st.session_state.scenario)
choices = [(i, t) for i, r in enumerate(scenario.responses) for t in range(len(r.tokens))]
marked = control("ce_token", lambda v, k: st.selectbox(
    "Mark a token of the current scenario", list(range(len(choices))), index=min(v, len(choices) - 1), key=k,
    format_func=lambda j: f"response {choices[j][0]}, t = {choices[j][1] + 1}: "
                          f"“{scenario.responses[choices[j][0]].tokens[choices[j][1]]}”"), 0)
i, t = choices[marked]
try:
    key = scenario_key(st.session_state.scenario)
    res = objective_view(key, "grpo", 300).result
    r_tok = float(res.explanation.token_ratio[i, t])
    adv = res.advantages[i]
    A = float(adv) if adv.dim() == 0 else float(adv[t])
    gspo_res = objective_view(key, "gspo", 300).result
    s_i = float(gspo_res.explanation.seq_ratio[i])
    st.markdown(f"Marked token: r = **{fmt(r_tok)}**, A = **{fmt(A)}** (so it sits on the "
                f"{'A > 0' if A > 0 else 'A < 0' if A < 0 else 'A = 0 (no gradient at all)'} curves); its response's "
                f"GSPO ratio is s = **{fmt(s_i)}**.")
except ScenarioError as e:
    st.warning(f"The current scenario cannot mark a token here: {e}")
    r_tok, A, s_i = None, 0.0, None


def panel(names: list[str], sign: float, grid: list[float], x_title: str, marker_x):
    curves = {n: cached_clip_curve(n, grid, sign, SETTINGS[n]) for n in names}
    marker = (marker_x, "marked token") if marker_x is not None and (A > 0) == (sign > 0) and A != 0 else None
    left, right = st.columns(2)
    left.plotly_chart(clip_explorer_figure(curves, "value", sign, x_title, marker), key=f"v{sign}{x_title}",
                      **PLOT_ARGS)
    right.plotly_chart(clip_explorer_figure(curves, "grad", sign, x_title, marker), key=f"g{sign}{x_title}",
                       **PLOT_ARGS)


grid = (x_max / 2, x_max / 2, 401, 0.01)  # ratio_grid's parameters
for sign, label in ((1.0, "A > 0 (a better-than-average answer)"), (-1.0, "A < 0 (a worse-than-average answer)")):
    st.subheader(label)
    if chosen:
        panel(chosen, sign, grid, "token ratio r", r_tok)

st.subheader("GSPO on its own scale: the sequence ratio s_i")
g1, g2 = st.columns(2)
g_low = control("ce_gspo_low", lambda v, k: g1.number_input("GSPO ε_low", 0.0, 0.5, v, 1e-4, format="%.4f", key=k),
                3e-4)
g_high = control("ce_gspo_high", lambda v, k: g2.number_input("GSPO ε_high", 0.0, 0.5, v, 1e-4, format="%.4f",
                                                              key=k), 4e-4)
span = max(5 * max(g_low, g_high), 1e-3)
gspo_settings = Settings(eps_low=g_low, eps_high=g_high)
sgrid = (1.0, span, 401, 1e-3)
st.caption(f"GSPO clips s_i to [{fmt(1 - g_low)}, {fmt(1 + g_high)}]: a band {fmt(g_low + g_high)} wide, against "
           f"0.4 for GRPO's [0.8, 1.2] on r. Because s_i is a geometric "
           "mean over the response, it moves far less than single token ratios do.")
for sign in (1.0, -1.0):
    curves = {"gspo": cached_clip_curve("gspo", sgrid, sign, gspo_settings)}
    marker = (s_i, "marked response") if s_i is not None and (A > 0) == (sign > 0) and A != 0 \
        and abs(s_i - 1) <= span else None
    left, right = st.columns(2)
    left.plotly_chart(clip_explorer_figure(curves, "value", sign, "sequence ratio s_i", marker, height=300),
                      key=f"gv{sign}", **PLOT_ARGS)
    right.plotly_chart(clip_explorer_figure(curves, "grad", sign, "sequence ratio s_i", marker, height=300),
                       key=f"gg{sign}", **PLOT_ARGS)
st.caption("GSPO's gradient weight per token is (1/G)·s_i·A_i/|y_i| on every token of the response; the curve shows "
           "s_i·A_i (one response of one token).")
