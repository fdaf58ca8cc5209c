"""The results cache keys one objective's result by what it depends on (gspo_viz/ui/cache.py): the responses and the
settings that objective reads. Safe only if no objective reads a setting outside Settings.effective_dict: checked
here for every objective and every other setting, by running the core without the cache."""
import dataclasses
import json
from pathlib import Path

import pytest
import torch

from gspo_viz.core.objectives import NAMES
from gspo_viz.core.settings import Overlong, Settings
from gspo_viz.scenarios import parse_scenario, run_scenario
from gspo_viz.ui import cache
from gspo_viz.views.narrate import sentence

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# a valid value for every setting, different from every objective's default
OTHER = {"eps_low": 0.15, "eps_high": 0.35, "dual_clip_c": 5.0, "beta": 0.0, "kl": "k1", "advantage": "rloo",
         "std": "population", "adv_eps": 1e-3, "max_tokens": 500, "tau_pos": 2.5, "tau_neg": 3.5, "gmpo_eps": 0.7,
         "dynamic_sampling": True, "overlong": {"l_max": 40, "l_cache": 10}, "dppo_cap": 7.0, "vespo_k_pos": 1.5,
         "vespo_lambda_pos": 2.5, "vespo_k_neg": 2.5, "vespo_lambda_neg": 1.5,
         "rollout_is_threshold": 3.0, "rollout_is_threshold_lower": 0.25}


def snapshot(res):
    ex = res.explanation
    return (ex.loss, ex.grad_weight.tolist(), ex.closed_grad.tolist(), sorted(map(str, ex.metrics.items())),
            res.conventions, sentence(res), None if res.advantages is None else res.advantages.tolist())


@pytest.mark.parametrize("name", NAMES)
def test_settings_an_objective_does_not_read_do_not_change_its_result(name):
    data = json.loads((EXAMPLES / "default_group.json").read_text())
    read = set(Settings(objective=name).effective_dict())
    others = [f.name for f in dataclasses.fields(Settings) if f.name not in read]
    assert set(others) <= set(OTHER)               # a new setting needs a value above
    base = snapshot(run_scenario(parse_scenario(data), name))
    for field in others:
        changed = dict(data, settings={field: OTHER[field]})
        assert snapshot(run_scenario(parse_scenario(changed), name)) == base, \
            f"{name} reads {field}, which Settings.effective_dict does not list: the cache would reuse a stale result"


def test_the_knob_of_one_objective_reuses_the_others_results_and_recomputes_its_own():
    """Changing Dual-Clip's c in the Token Lab: GRPO's and GSPO's results (and charts) are the ones already
    computed; Dual-Clip's is new and uses the new c."""
    cache.CACHE.clear()
    data = json.loads((EXAMPLES / "default_group.json").read_text())
    first = cache.scenario_key(dict(data, settings={"dual_clip_c": 3.0}))
    second = cache.scenario_key(dict(data, settings={"dual_clip_c": 4.5}))
    for name in ("grpo", "gspo"):
        assert cache.objective_result(first, name)[0] is cache.objective_result(second, name)[0]
        assert cache.objective_view(first, name, 300).ratio_figure is \
            cache.objective_view(second, name, 300).ratio_figure
    a, b = cache.objective_result(first, "dual_clip")[0], cache.objective_result(second, "dual_clip")[0]
    assert a is not b
    assert (a.explanation.settings.dual_clip_c, b.explanation.settings.dual_clip_c) == (3.0, 4.5)
    # a change of the responses is a new result for everyone
    data["responses"][0]["reward"] = 1 - data["responses"][0]["reward"]
    third = cache.scenario_key(dict(data, settings={"dual_clip_c": 3.0}))
    assert cache.objective_result(third, "grpo")[0] is not cache.objective_result(first, "grpo")[0]


def test_a_shared_figure_is_copied_once_and_sends_the_same_json():
    """st.plotly_chart calls to_dict() on every rerun; a cached figure makes that dict once."""
    import plotly.io as pio
    cache.CACHE.clear()
    key = cache.scenario_key(json.loads((EXAMPLES / "movie_five_tokens.json").read_text()))
    view = cache.objective_view(key, "grpo", 300)
    fig = view.ratio_figure
    assert isinstance(fig, cache.SharedFigure)
    assert fig.to_dict() is fig.to_dict()
    from gspo_viz.views.plots import heatmaps
    fresh = heatmaps(view.result, 300, 0)[0]
    sent = json.loads(pio.to_json(fig.to_dict(), validate=False))    # what st.plotly_chart sends …
    built = json.loads(pio.to_json(fresh.to_dict(), validate=False))
    assert "template" not in sent["layout"]       # (Plotly's default template, 10 kB a figure, is not sent)
    del built["layout"]["template"]
    assert sent == built                           # … is the figure built afresh
    assert fig.layout.meta == fresh.layout.meta and fig.layout.height == fresh.layout.height   # its layout reads
    assert sent["data"][0]["type"] == "heatmap" and sent["data"][0]["z"] == fresh.to_dict()["data"][0]["z"]


def test_a_cached_map_figure_is_counted_at_its_size():
    """The maps are cached as plain dicts (figure_from_spec): the byte estimate must still see their traces."""
    import plotly.io as pio
    cache.CACHE.clear()
    key = cache.scenario_key(json.loads((EXAMPLES / "default_group.json").read_text()))
    ratio, _ = cache.maps(key, ["grpo", "gspo"], 300)
    assert not ratio.data and ratio.to_dict()["data"]          # no trace objects were built …
    assert cache.estimate_bytes(ratio) >= len(pio.to_json(ratio.to_dict(), validate=False))   # … but all is counted
