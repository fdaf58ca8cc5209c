"""Cached views for the pages: what depends only on (scenario, objective, knobs) is computed once.

A control change then recomputes only what it touches (e.g. Dual-Clip's c recomputes Dual-Clip alone). The cached
values are immutable results of pure functions and the same for every viewer, so sharing them is safe.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import plotly.graph_objects as go
import streamlit as st

from ..core.curves import ClipCurve, clip_curve
from ..views.narrate import sentence
from ..views.plots import heatmaps
from ..scenarios import ScenarioResult, parse_scenario, run_scenario
from ..core.settings import Settings


@dataclass(frozen=True)
class ObjectiveView:
    result: ScenarioResult
    ratio_figure: go.Figure
    grad_figure: go.Figure
    sentence: str


def scenario_key(data: dict) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


@st.cache_resource(max_entries=256, show_spinner=False)
def objective_view(key: str, name: str, height: int) -> ObjectiveView:
    """run_scenario + its two heatmaps + its sentence, for the scenario whose scenario_key() is `key`.
    Raises ScenarioError like run_scenario (errors are not cached)."""
    res = run_scenario(parse_scenario(json.loads(key)), name)
    return ObjectiveView(res, *heatmaps(res, height), sentence(res))


@st.cache_resource(max_entries=512, show_spinner=False)
def cached_clip_curve(name: str, grid: tuple[float, float, int, float], adv_sign: float,
                      settings: Settings) -> ClipCurve:
    """clip_curve on ratio_grid(*grid): the grid's parameters are the cache key, not its 400 points."""
    from ..core.curves import ratio_grid
    return clip_curve(name, ratio_grid(*grid), adv_sign, settings)


@st.cache_data(max_entries=64, show_spinner=False)
def cached_weights(lengths: tuple, G: int, other_len: int, max_tokens: int) -> dict:
    from ..core.curves import per_token_weight_vs_length
    return per_token_weight_vs_length(list(lengths), G, other_len, max_tokens)


@st.cache_data(max_entries=64, show_spinner=False)
def cached_drift(lengths: tuple, delta: float) -> tuple[list, list]:
    from ..core.curves import drift_curves
    return drift_curves(list(lengths), delta)
