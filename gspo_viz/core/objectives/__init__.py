"""The objective registry: one module per objective in this folder, listed once in NAMES.

Adding an objective: write `core/objectives/<name>.py` defining `OBJECTIVE = <an Objective subclass>()` (see
base.py and any existing objective), add its name to NAMES, and add its tests. Nothing else names it.

This module imports no torch: NAMES is read when a scenario is parsed; the objectives themselves (OBJECTIVES) load
on first use.
"""
import importlib

NAMES = ("grpo", "dual_clip", "dapo", "dr_grpo", "gspo", "gspo_token", "cispo", "gmpo", "sapo", "vespo", "dppo_tv")


def __getattr__(name: str):
    if name == "OBJECTIVES":
        value = {n: importlib.import_module(f".{n}", __name__).OBJECTIVE for n in NAMES}
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
