"""Scenario files and links: parsing and validation with errors that name the field, and running a scenario.

No torch at import: parsing a file or a link stays fast; running one loads the core.
"""
from .files import (MAX_FILE_BYTES, Response, Scenario, ScenarioError, load_scenario, loads, parse_scenario,
                    scenario_to_dict)
from .run import ScenarioResult, batch_tensors, run_scenario

__all__ = ["MAX_FILE_BYTES", "Response", "Scenario", "ScenarioError", "ScenarioResult", "batch_tensors",
           "load_scenario", "loads", "parse_scenario", "run_scenario", "scenario_to_dict"]
