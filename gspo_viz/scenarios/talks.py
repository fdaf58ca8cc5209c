"""Talk files: a sequence of scenes (a page, a scenario and its controls) that a speaker steps through, parsed and
checked with errors that name the field (`scenes[3].page`).

A talk file is JSON:

    {"title": "GRPO → GSPO → Dual-Clip in ten scenes",
     "scenes": [{"title": "GRPO clips each token's ratio", "page": "token_lab",
                 "example": "movie_five_tokens", "controls": {"cmp": ["grpo"]}},
                {"title": "...", "page": "clip_explorer", "scenario": {...a scenario...}, "controls": {...}}]}

A scene names a shipped example (`example`, a file name in examples/ without .json) or carries its own scenario
(`scenario`); `controls` are the page's controls as a link's `v` holds them; `say` is an optional line shown under
the scene's title. No Streamlit here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .files import ScenarioError, brief, check_tree, loads, loads_bytes, parse_scenario
from .urlstate import check_controls, decode_scenario, encode_scenario

# The pages a scene can show (keys of app.PAGES; the Train page trains live and the Lessons page asks questions,
# neither is a scene)
SCENE_PAGES = ("token_lab", "clip_explorer", "length", "formula")
MAX_SCENES = 60
MAX_TEXT = 300            # characters in a title or a say line
NAME = re.compile(r"^[a-z0-9_]{1,80}$")   # an example's or a shipped talk's name: a file name, nothing else


@dataclass(frozen=True)
class Scene:
    title: str
    page: str                       # one of SCENE_PAGES
    scenario: dict                  # a valid scenario (the example's, when `example` is set)
    controls: dict = field(default_factory=dict)
    example: Optional[str] = None   # the shipped example it shows, if any (kept so the link stays short)
    say: str = ""

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"title": self.title, "page": self.page}
        if self.example is not None:
            out["example"] = self.example
        else:
            out["scenario"] = self.scenario
        if self.controls:
            out["controls"] = self.controls
        if self.say:
            out["say"] = self.say
        return out


@dataclass(frozen=True)
class Talk:
    title: str
    scenes: tuple[Scene, ...]

    def to_dict(self) -> dict:
        return {"title": self.title, "scenes": [s.to_dict() for s in self.scenes]}


def read_json(path: Path) -> Any:
    """A shipped file's JSON, by the rules of a scenario file (size, UTF-8, JSON)."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ScenarioError("", f"cannot read {path.name} ({e.strerror})") from None
    return loads_bytes(raw)


def example_path(name: Any, examples: Path, where: str = "example") -> Path:
    """The shipped example `name` (a file name in `examples`, without .json); ScenarioError naming `where` if there
    is none by that name."""
    if not isinstance(name, str) or not NAME.match(name) or not (examples / f"{name}.json").is_file():
        known = ", ".join(sorted(p.stem for p in examples.glob("*.json")))
        raise ScenarioError(where, f"no example named {brief(name)}; the examples are: {known}")
    return examples / f"{name}.json"


def _text(value: Any, where: str, required: bool) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise ScenarioError(where, f"must be {'a non-empty' if required else 'a'} text, got {brief(value)}")
    if len(value) > MAX_TEXT:
        raise ScenarioError(where, f"is {len(value)} characters; the limit is {MAX_TEXT}")
    return value


def _scene(data: Any, k: int, examples: Path) -> Scene:
    where = f"scenes[{k}]"
    if not isinstance(data, dict):
        raise ScenarioError(where, f"must be an object with a title, a page and a scenario or example, got "
                                   f"{brief(data)}")
    unknown = sorted(set(data) - {"title", "page", "example", "scenario", "controls", "say"})
    if unknown:
        raise ScenarioError(f"{where}.{unknown[0]}", "is not a scene field; a scene has title, page, example or "
                                                     "scenario, controls and say")
    title = _text(data.get("title"), f"{where}.title", required=True)
    page = data.get("page")
    if page not in SCENE_PAGES:
        raise ScenarioError(f"{where}.page", f"unknown page {brief(page)}; a scene shows one of: "
                                             f"{', '.join(SCENE_PAGES)}")
    if ("example" in data) == ("scenario" in data):
        raise ScenarioError(where, "needs exactly one of `example` (a shipped example's name) or `scenario` (a "
                                   "scenario object)")
    example = None
    if "example" in data:
        example = data["example"]
        scenario = read_json(example_path(example, examples, f"{where}.example"))
    else:
        scenario = data["scenario"]
        if not isinstance(scenario, dict):
            raise ScenarioError(f"{where}.scenario", f"must be a scenario object, got {brief(scenario)}")
    try:
        parse_scenario(scenario)
    except ScenarioError as e:
        raise ScenarioError(f"{where}.scenario{'.' + e.where if e.where else ''}", e.message) from None
    controls = check_controls(data.get("controls", {}), f"{where}.controls")
    return Scene(title, page, scenario, controls, example, _text(data.get("say"), f"{where}.say", required=False))


def parse_talk(data: Any, examples: Path) -> Talk:
    """A validated Talk from a talk file's JSON; ScenarioError naming the field otherwise."""
    check_tree(data)
    if not isinstance(data, dict):
        raise ScenarioError("", f"a talk file is an object with a title and scenes, got {brief(data)}")
    unknown = sorted(set(data) - {"title", "scenes"})
    if unknown:
        raise ScenarioError(unknown[0], "is not a talk field; a talk has a title and scenes")
    title = _text(data.get("title"), "title", required=True)
    scenes = data.get("scenes")
    if not isinstance(scenes, list) or not scenes:
        raise ScenarioError("scenes", f"must be a non-empty list of scenes, got {brief(scenes)}")
    if len(scenes) > MAX_SCENES:
        raise ScenarioError("scenes", f"holds {len(scenes)} scenes; the limit is {MAX_SCENES}")
    return Talk(title, tuple(_scene(s, k, examples) for k, s in enumerate(scenes)))


def loads_talk(text: str, examples: Path) -> Talk:
    """parse_talk of a talk file's text (JSON, the limits of a scenario file)."""
    return parse_talk(loads(text), examples)


def shipped_talk(name: Any, talks: Path, examples: Path) -> Talk:
    """A talk shipped in examples/talks/, by file name."""
    path = example_path(name, talks, "talk")
    return parse_talk(read_json(path), examples)


def encode_talk(talk: Talk) -> str:
    """A talk as one link parameter (the scenario link's codec: JSON → zlib → base64url)."""
    return encode_scenario(talk.to_dict())


def decode_talk(text: str, examples: Path) -> Talk:
    """The inverse of encode_talk; ScenarioError for a damaged or invalid talk."""
    return parse_talk(decode_scenario(text), examples)
