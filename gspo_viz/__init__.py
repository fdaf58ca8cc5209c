"""gspo-viz: a formula-faithful core for GRPO, GSPO, Dual-Clip, DAPO, Dr.GRPO, CISPO, GMPO and SAPO."""
from .advantages import group_advantages, kl_estimate, overlong_penalty
from .explain import Explanation, explain
from .objectives import CLIP_NAMES, OBJECTIVES, aggregate, aggregation_weights, clip_decisions, closed_form_grad, \
    objective_loss, objective_value
from .scenario import Scenario, ScenarioError, ScenarioResult, load_scenario, parse_scenario, run_scenario
from .settings import Settings, SettingsError

__all__ = ["group_advantages", "kl_estimate", "overlong_penalty", "Explanation", "explain", "CLIP_NAMES",
           "OBJECTIVES", "aggregate", "aggregation_weights", "clip_decisions", "closed_form_grad", "objective_loss",
           "objective_value", "Scenario", "ScenarioError", "ScenarioResult", "load_scenario", "parse_scenario",
           "run_scenario", "Settings", "SettingsError"]
