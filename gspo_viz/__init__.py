"""gspo-viz: a formula-faithful core for GRPO, GSPO, Dual-Clip, DAPO, Dr.GRPO, CISPO, GMPO and SAPO.

The package's folders say what they are: core/ (the math: no I/O, no Streamlit), scenarios/ (files and links),
views/ (figures, steps, sentences, tables built from results; no Streamlit), ui/ (the Streamlit glue), toy/ (the
toy policy and its trainer). Names are loaded on first use (PEP 562), so that importing a scenario parser or the
app's landing page does not pay for importing torch.
"""
import importlib

_EXPORTS = {
    "group_advantages": "core.advantages", "kl_estimate": "core.advantages", "overlong_penalty": "core.advantages",
    "Explanation": "core.explain", "explain": "core.explain",
    "OBJECTIVES": "core.objectives", "NAMES": "core.objectives", "CLIP_NAMES": "core.objectives.base",
    "aggregate": "core.aggregation", "aggregation_weights": "core.aggregation",
    "clip_decisions": "core.loss", "closed_form_grad": "core.loss", "objective_loss": "core.loss",
    "objective_value": "core.loss",
    "Scenario": "scenarios", "ScenarioError": "scenarios", "ScenarioResult": "scenarios", "load_scenario": "scenarios",
    "parse_scenario": "scenarios", "run_scenario": "scenarios",
    "Settings": "core.settings", "SettingsError": "core.settings",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gspo_viz' has no attribute {name!r}")
