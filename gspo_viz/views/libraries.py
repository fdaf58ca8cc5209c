"""The settings in verl's and TRL's words, as the pages show them (no Streamlit): per objective, verl 0.9's Hydra
overrides, TRL 1.16's GRPOConfig call (or why there is none), and the notes of what is approximated."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..core.settings import Settings
from ..scenarios import bridge


@dataclass(frozen=True)
class LibrarySettings:
    objective: str
    verl: str                   # key=value lines
    trl: Optional[str]          # GRPOConfig(...), None when TRL has no loss for the objective
    notes: tuple[str, ...]      # verl's notes then TRL's, each prefixed with its library


def library_settings(settings: dict, names: list[str]) -> list[LibrarySettings]:
    """The scenario's settings run by each objective of `names`, in the libraries' words."""
    out = []
    for name in names:
        cfg = Settings.from_dict(settings, name)
        v, t = bridge.to_verl(cfg), bridge.to_trl(cfg)
        trl = bridge.as_python(t) if "loss_type" in t.values else None
        notes = tuple(f"verl: {n}" for n in v.notes) + tuple(f"TRL: {n}" for n in t.notes)
        out.append(LibrarySettings(name, bridge.as_overrides(v), trl, notes))
    return out
