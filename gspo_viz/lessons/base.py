"""What a lesson is made of (no Streamlit): its knobs, its question, the computed answer and the explanation.

A lesson turns its knob values (params) into a small scenario, runs the objectives it shows on it with the core
(run_scenario), and reads its question's answer and its explanation off those results. The page only lays out.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional


@dataclass(frozen=True)
class Knob:
    """A lesson-local control of the lesson's scenario (in the link as `ls_<lesson>_<key>`).

    kind: 'slider' (a number in [low, high] by step; whole numbers when step is an int), 'choice' (one of `options`,
    shown as `labels`),
    'many' (several of `options`), 'seed' (a whole number in [low, high], with a 'try another group' button).
    """
    key: str
    label: str
    kind: str
    default: Any
    low: float = 0.0
    high: float = 1.0
    step: float = 0.01
    options: tuple = ()
    labels: tuple = ()
    help: str = ""

    def label_of(self, option: Any) -> str:
        return self.labels[self.options.index(option)] if self.labels else str(option)

    def valid(self, value: Any) -> bool:
        """Can this knob hold `value` as it is (a link may say anything)?"""
        if self.kind == "many":
            return isinstance(value, list) and all(v in self.options for v in value)
        return value == self.default or self.clean(value) == value

    def clean(self, value: Any) -> Any:
        """`value` if this knob can hold it (a link may say anything), else the default."""
        if self.kind in ("slider", "seed"):
            whole = self.kind == "seed" or isinstance(self.step, int)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
                and self.low <= value <= self.high and (not whole or value == int(value))
            return (int(value) if whole else float(value)) if ok else self.default
        if self.kind == "choice":
            return value if value in self.options else self.default
        if self.kind == "many":
            ok = isinstance(value, list) and all(v in self.options for v in value)
            return sorted(set(value), key=self.options.index) if ok else list(self.default)
        raise ValueError(f"unknown knob kind {self.kind!r}")


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


@dataclass(frozen=True)
class Question:
    """kind: 'one' (pick one choice), 'many' (pick every choice that applies, possibly none) or 'number'
    (a number in [low, high] of `unit`; within `tolerance` of the answer counts as right)."""
    kind: str
    prompt: str
    choices: tuple[Choice, ...] = ()
    unit: str = ""
    low: float = 0.0
    high: float = 100.0
    step: float = 1.0
    tolerance: float = 0.0

    def label(self, value: Any) -> str:
        """A prediction or an answer in words."""
        if self.kind == "number":
            return f"{value:g}{self.unit}" if isinstance(value, (int, float)) else "no number"
        labels = {c.value: c.label for c in self.choices}
        if self.kind == "many":
            return "; ".join(labels.get(v, str(v)) for v in value) if value else "none of them"
        return labels.get(value, "no choice")


    def differences(self, prediction: Any, answer: Any) -> str:
        """What a 'many' prediction missed and what it picked in excess, in words ('' otherwise)."""
        if self.kind != "many":
            return ""
        labels = {c.value: c.label for c in self.choices}
        missed = [labels[v] for v in answer if v not in (prediction or [])]
        extra = [labels[v] for v in (prediction or []) if v not in answer]
        return "; ".join(([f"missed {', '.join(missed)}"] if missed else [])
                         + ([f"picked in excess {', '.join(extra)}"] if extra else []))


@dataclass
class Reveal:
    answer: Any                    # a choice's value, a list of values ('many', in the choices' order) or a number
    answer_text: str               # the computed answer in words
    explanation: list              # sentences generated from the numbers (markdown, quoting tokens); an item may be
                                   # (sentence, [sentences]): a point and its details, shown as a nested list
    figures: list = field(default_factory=list)   # Plotly figures, laid out two per row
    steps: list = field(default_factory=list)     # (heading, [Step]): a token's computation, when it helps
    per_row: int = 2                               # figures side by side
    figure_note: str = ""                          # what the figures show, under them

    def sentences(self) -> list[str]:
        """Every sentence of the explanation, details after their point."""
        return [x for item in self.explanation
                for x in ([item] if isinstance(item, str) else [item[0], *item[1]])]

    def text(self) -> str:
        return " ".join(self.sentences())


@dataclass
class Case:
    """One lesson on the scenario its knobs made: the results of every objective it shows."""
    lesson: "Lesson"
    params: dict
    data: dict                     # the scenario (the JSON form of a scenario file)
    results: dict                  # objective name → ScenarioResult


@dataclass(frozen=True)
class Lesson:
    key: str
    title: str
    goal: str                      # what the learner takes away, one or two sentences
    objectives: tuple[str, ...]    # the objectives it shows (chosen as data, as an example file chooses one)
    knobs: tuple[Knob, ...]
    scenario: Callable[[dict], dict]          # params → scenario dict
    context: Callable[[Case], list[str]]      # what the learner is told before predicting, from the numbers
    question: Callable[[Case], Question]
    reveal: Callable[[Case], Reveal]
    look: str = ""                 # what to look at before predicting (true for every scenario the knobs reach)
    takeaway: str = ""             # the lesson in one line, shown after the reveal (true for every scenario)

    def defaults(self) -> dict:
        return {k.key: (list(k.default) if isinstance(k.default, (list, tuple)) else k.default) for k in self.knobs}

    def clean(self, params: Optional[dict] = None) -> dict:
        """Every knob's value from `params` where it is valid, else its default."""
        params = params or {}
        return {k.key: k.clean(params[k.key]) if k.key in params else k.clean(k.default) for k in self.knobs}


Runner = Callable[[dict, str], Any]   # (scenario dict, objective name) → ScenarioResult


def run_case(lesson: Lesson, params: Optional[dict] = None, run: Optional[Runner] = None) -> Case:
    """The lesson's scenario for `params` (cleaned), run for each objective it shows. `run` may be a cached
    runner (the page's); by default parse_scenario + run_scenario."""
    params = lesson.clean(params)
    data = lesson.scenario(params)
    if run is None:
        from ..scenarios import parse_scenario, run_scenario
        scn = parse_scenario(data)

        def run(_, name):
            return run_scenario(scn, name)
    return Case(lesson, params, data, {name: run(data, name) for name in lesson.objectives})


def grade(question: Question, prediction: Any, answer: Any) -> bool:
    """Is the prediction right? 'many' compares the sets; 'number' allows the question's tolerance."""
    if question.kind == "many":
        return set(prediction or []) == set(answer)
    if question.kind == "number":
        return isinstance(prediction, (int, float)) and abs(prediction - answer) <= question.tolerance + 1e-9
    return prediction == answer


def fingerprint(params: dict) -> str:
    """The knob values as one string: a reveal holds for the numbers it was made for."""
    return json.dumps(params, sort_keys=True)
