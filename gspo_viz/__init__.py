"""gspo-viz: a formula-faithful core for GRPO, GSPO, Dual-Clip, DAPO, Dr.GRPO, CISPO, GMPO and SAPO.

Names are loaded on first use (PEP 562), so that `import gspo_viz.scenario` or the app's landing page does not pay
for importing torch.
"""
import importlib

_EXPORTS = {
    "group_advantages": "advantages", "kl_estimate": "advantages", "overlong_penalty": "advantages",
    "Explanation": "explain", "explain": "explain",
    "CLIP_NAMES": "objectives", "OBJECTIVES": "objectives", "aggregate": "objectives",
    "aggregation_weights": "objectives", "clip_decisions": "objectives", "closed_form_grad": "objectives",
    "objective_loss": "objectives", "objective_value": "objectives",
    "Scenario": "scenario", "ScenarioError": "scenario", "ScenarioResult": "scenario", "load_scenario": "scenario",
    "parse_scenario": "scenario", "run_scenario": "scenario",
    "Settings": "settings", "SettingsError": "settings",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gspo_viz' has no attribute {name!r}")
