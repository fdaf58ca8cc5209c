"""Cached views for the pages: what depends only on (scenario, objective, knobs) is computed once.

The cached values are immutable results of pure functions and the same for every viewer, so sharing them is safe.

A scenario is parsed once per JSON (settings included) and shared by the objectives. One objective's result and its
map panels (views.plots.Panel: cells, hovers, labels) are keyed by what they depend on: the responses, and the
settings that objective reads (Settings.effective_dict). So changing Dual-Clip's c recomputes Dual-Clip alone, and
GRPO's results and panels are reused; the Token Lab's two figures (every compared objective's maps side by side) are
keyed by the compared objectives' result keys and the layout, and only laid out again from the cached panels.

Every cache here is one process-wide LRU (`CACHE`) bounded by an estimated size in bytes, shared by all sessions of
the server: a person editing a large group evicts the least recently used entries instead of growing the server
without end. Its budget is set here alone (CACHE_BUDGET_BYTES); an entry larger than MAX_ENTRY_FRACTION of it is
computed and returned but not kept. Entries nobody has read for IDLE_SECONDS are dropped by a janitor thread that
runs only while the cache holds anything, so the memory of a finished class is given back.
"""
from __future__ import annotations

import copy
import hashlib
import json
import sys
import threading
import time
import types
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Optional

import plotly.graph_objects as go

from ..core.curves import ClipCurve, clip_curve
from ..core.settings import Settings
from ..scenarios import Scenario, ScenarioError, ScenarioResult, parse_scenario, run_scenario
from ..views.narrate import sentence
from ..views.plots import DESIGN_WIDTH, Panel, advantages_figure, maps_spec, objective_panels
from .memory import release_memory

CACHE_BUDGET_BYTES = 256 * 2**20   # every cached value of this process, all sessions together
MAX_ENTRY_FRACTION = 0.25          # a value estimated above this share of the budget is computed but not kept
IDLE_SECONDS = 45.0                # an entry nobody has read for this long is dropped by the janitor
JANITOR_PERIOD = 15.0              # how often the janitor looks, while the cache holds anything


class ByteLRU:
    """A thread-safe least-recently-used cache bounded by the estimated bytes of its values, not their number.

    put() evicts the least recently used entries until the new one fits; a value costing more than `max_entry`
    is not kept at all. Values are computed outside the lock, so sessions do not wait for each other's work (two
    sessions asking for the same missing entry at once both compute it; the results are equal).
    """

    def __init__(self, budget: int, max_entry_fraction: float = MAX_ENTRY_FRACTION):
        self.budget = int(budget)
        self.max_entry = int(budget * max_entry_fraction)
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._used: dict[Hashable, float] = {}   # key → when it was last read or written (time.monotonic)
        self.bytes = 0          # estimated bytes held: never above `budget`
        self.on_put: Callable[[], None] | None = None   # called after a value is kept (starts the janitor)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._entries

    def get(self, key: Hashable, default: Any = None) -> Any:
        with self._lock:
            hit = self._entries.get(key)
            if hit is None:
                return default
            self._entries.move_to_end(key)
            self._used[key] = time.monotonic()
            return hit[0]

    def put(self, key: Hashable, value: Any, cost: int) -> bool:
        """Keep `value` under `key` at `cost` bytes; False (and nothing kept) when it is too large to keep."""
        cost = max(int(cost), 1)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.bytes -= old[1]
            if cost > self.max_entry:
                return False
            while self._entries and self.bytes + cost > self.budget:
                gone, (_, evicted) = self._entries.popitem(last=False)
                self._used.pop(gone, None)
                self.bytes -= evicted
            self._entries[key] = (value, cost)
            self._used[key] = time.monotonic()
            self.bytes += cost
        if self.on_put is not None:
            self.on_put()
        return True

    def get_or_compute(self, key: Hashable, compute: Callable[[], Any],
                       cost: Callable[[Any], int] | None = None) -> Any:
        """The cached value, or compute() kept at cost(value) (estimate_bytes by default). Exceptions from
        compute() propagate and nothing is cached."""
        missing = object()
        value = self.get(key, missing)
        if value is not missing:
            return value
        value = compute()
        self.put(key, value, (cost or estimate_bytes)(value))
        return value

    def expire(self, idle: float, now: float | None = None) -> int:
        """Drop the entries nobody has read for `idle` seconds; returns how many were dropped."""
        now = time.monotonic() if now is None else now
        with self._lock:
            old = [k for k, t in self._used.items() if now - t > idle]
            for k in old:
                self.bytes -= self._entries.pop(k)[1]
                del self._used[k]
            return len(old)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._used.clear()
            self.bytes = 0


def estimate_bytes(value: Any, exclude: Any = None) -> int:
    """An estimate of the memory `value` holds: tensors and arrays by their buffers, plain Python data (lists,
    dicts, strings, numbers, dataclasses, Plotly figures) object by object, each shared object once; `exclude` (an
    object counted elsewhere, e.g. its own cache entry) and what only it holds are not counted."""
    import torch
    from plotly.basedatatypes import BaseFigure
    # numpy and pandas only when something imported them already (no value can be one of their objects before):
    # importing pandas here put half a second on a fresh server's first page
    np, pd = sys.modules.get("numpy"), sys.modules.get("pandas")
    arrays = (np.ndarray,) if np is not None else ()
    frames = (pd.DataFrame, pd.Series) if pd is not None else ()

    seen: set[int] = set() if exclude is None else {id(exclude)}
    storages: set[int] = set()
    total = 0
    stack = [value]
    while stack:
        o = stack.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        if isinstance(o, (type, types.ModuleType, types.FunctionType, types.MethodType)):
            continue                                  # shared by everything: not this value's memory
        if isinstance(o, torch.Tensor):
            storage = o.untyped_storage()
            total += 200
            if storage.data_ptr() not in storages:  # views share their base's buffer
                storages.add(storage.data_ptr())
                total += storage.nbytes()
        elif arrays and isinstance(o, arrays):
            total += 112 + o.nbytes
        elif frames and isinstance(o, frames):
            total += int(o.memory_usage(deep=True).sum()) if isinstance(o, pd.DataFrame) else \
                int(o.memory_usage(deep=True))
        elif isinstance(o, (str, bytes, int, float, bool, complex)) or o is None:
            total += sys.getsizeof(o)
        elif isinstance(o, (list, tuple)):
            total += sys.getsizeof(o)
            kinds = set(map(type, o))
            if kinds <= _NUMBERS:        # the common cases, at C speed: a row of numbers …
                total += 32 * len(o)     # (an int or a float with its slot: at most 32 bytes)
            elif kinds == {str}:         # … or of tokens (counted even when shared: an overestimate)
                total += sum(map(sys.getsizeof, o))
            else:
                stack.extend(o)
        elif isinstance(o, (dict, OrderedDict)):
            total += sys.getsizeof(o)
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, (set, frozenset)):
            total += sys.getsizeof(o)
            stack.extend(o)
        elif isinstance(o, BaseFigure):
            total += 1000
            stack.append(o._data)      # the figure's own specs (what it sends); trace objects only wrap them
            stack.append(o._layout)
            stack.append(getattr(o, "_shared_dict", None))   # a SharedFigure's dict (figure_from_spec: all of it)
        elif hasattr(o, "__dict__"):
            total += sys.getsizeof(o)
            stack.append(vars(o))
        elif hasattr(o, "__slots__"):
            total += sys.getsizeof(o)
            stack.extend(getattr(o, s) for s in o.__slots__ if hasattr(o, s))
        else:
            total += sys.getsizeof(o)
    return total


_NUMBERS = {float, int, bool, type(None)}
CACHE = ByteLRU(CACHE_BUDGET_BYTES)


class Janitor:
    """Drops a cache's idle entries every `period` seconds, while it holds anything: when the class has gone home
    the server's memory goes back down. Its thread starts with the first kept value and ends when the cache is
    empty, so an idle server holds no thread for it."""

    def __init__(self, cache: ByteLRU, idle: float = IDLE_SECONDS, period: float = JANITOR_PERIOD):
        self.cache, self.idle, self.period = cache, idle, period
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        cache.on_put = self.ensure_running

    def ensure_running(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="gspo-viz-cache-janitor", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(self.period)
            if self.cache.expire(self.idle):
                release_memory()
            with self._lock:
                if not len(self.cache):
                    self._thread = None
                    return

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


JANITOR = Janitor(CACHE)


class SharedFigure(go.Figure):
    """A figure built once, kept in the cache and only read from then on (by every session that shows it).
    st.plotly_chart calls to_dict() on every rerun, which deep-copies the whole figure; this one makes that copy
    once and returns it each time after. Nothing may change the figure or that dict once it is shared."""

    _shared_dict = None

    def to_dict(self):
        if self._shared_dict is None:
            self._shared_dict = super().to_dict()
        return self._shared_dict


def figure_from_spec(spec: dict) -> SharedFigure:
    """A SharedFigure whose to_dict() is `spec` itself (a plain {data, layout} dict, given up by the caller): no
    Plotly objects are built for its traces (building and copying them took longer than the rest of an edit's
    run). Its `layout` is readable (e.g. fig.layout.meta); its `data` is empty: read the traces from to_dict()."""
    fig = go.Figure(dict(layout=spec["layout"]), _validate=False)
    fig.__class__ = SharedFigure
    fig._shared_dict = spec
    return fig


def shared_figure(fig: go.Figure) -> SharedFigure:
    """`fig` itself, from now on a SharedFigure (no copy is made: the caller gives it up)."""
    fig.__class__ = SharedFigure
    return fig


@dataclass(frozen=True)
class ObjectiveView:
    """One objective's result and sentence; its two maps (alone, one objective per figure) are built when first
    asked for, and cached."""
    result: ScenarioResult
    sentence: str
    key: str
    name: str
    height: int
    page: int = 0

    @property
    def ratio_figure(self) -> go.Figure:
        return maps(self.key, [self.name], self.height, self.page)[0]

    @property
    def grad_figure(self) -> go.Figure:
        return maps(self.key, [self.name], self.height, self.page)[1]


@dataclass(frozen=True)
class ComparisonView:
    """The compared objectives' results and sentences (those that ran on the scenario), the errors of those that
    cannot, and the two figures: every objective's ratio map side by side, and their gradient maps (None when no
    objective ran)."""
    results: dict[str, ScenarioResult]
    sentences: dict[str, str]
    errors: dict[str, ScenarioError]
    ratio_figure: Optional[go.Figure]
    grad_figure: Optional[go.Figure]


def scenario_key(data: dict) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def _digest(key: str) -> str:
    """The cache's key for a scenario: its JSON's digest (a large group's JSON is megabytes; the entries keep
    32 bytes)."""
    return hashlib.blake2b(key.encode("utf-8"), digest_size=16).hexdigest()


def cached_scenario(key: str) -> Scenario:
    """parse_scenario of the scenario whose scenario_key() is `key`, parsed once for every objective.
    Raises ScenarioError like parse_scenario (errors are not cached)."""
    return CACHE.get_or_compute(("scenario", _digest(key)), lambda: parse_scenario(json.loads(key)))


def _responses_digest(key: str) -> str:
    """The digest of the scenario's responses alone (what its results depend on besides the settings)."""
    return CACHE.get_or_compute(("responses", _digest(key)), lambda: _digest(scenario_key(
        json.loads(key).get("responses"))))


def result_key(key: str, name: str | None) -> tuple[str, str]:
    """What `name`'s result on the scenario `key` depends on: the responses and the settings it reads, resolved
    (Settings.effective_dict: its own knobs and the common ones, not another objective's). Raises ScenarioError
    like parse_scenario."""
    from ..scenarios.run import for_objective
    settings = cached_scenario(key).settings
    if name is not None:
        settings = for_objective(settings, name)
    return _responses_digest(key), json.dumps(settings.effective_dict(), sort_keys=True)


def objective_result(key: str, name: str | None) -> tuple[ScenarioResult, str]:
    """run_scenario and its sentence, for the scenario whose scenario_key() is `key`: computed once for all the
    scenarios that differ only in settings this objective does not read. Raises ScenarioError like run_scenario
    (errors are not cached)."""
    return _objective_result(key, name, result_key(key, name))


def _objective_result(key: str, name: str | None, rkey: tuple[str, str]) -> tuple[ScenarioResult, str]:
    scn = cached_scenario(key)

    def compute():
        res = run_scenario(scn, name)
        return res, sentence(res)
    # the cost counts the parsed scenario the result holds: it may outlive its own entry (the result is shared by
    # scenarios that differ in other objectives' settings), so it is counted in both (an overestimate, on the safe
    # side of the budget)
    return CACHE.get_or_compute(("result",) + rkey, compute)


def scenario_error(data: dict, objectives: list[str]) -> ScenarioError | None:
    """The first ScenarioError that parsing `data` or running one of `objectives` on it raises (the scenario's own
    objective when the list is empty), or None. The results are cached, so the charts that follow reuse them."""
    key = scenario_key(data)
    for name in objectives or [None]:
        try:
            objective_result(key, name)
        except ScenarioError as e:
            return e
    return None


def objective_view(key: str, name: str, height: int, page: int = 0) -> ObjectiveView:
    """run_scenario + its sentence; its two maps (the responses of `page`, see views.plots.heatmap_plan) when asked
    for. Raises ScenarioError like run_scenario (errors are not cached)."""
    res, text = _objective_result(key, name, result_key(key, name))
    return ObjectiveView(res, text, key, name, height, page)


def panels(key: str, name: str, page: int = 0) -> tuple[Panel, Panel]:
    """views.plots.objective_panels of `name`'s result on the scenario `key`: cached by the result's key, so an
    objective whose settings did not change keeps its panels while another objective's knob moves."""
    rkey = result_key(key, name)
    res, _ = _objective_result(key, name, rkey)
    return CACHE.get_or_compute(("panels",) + rkey + (page,), lambda: objective_panels(res, page))


def maps(key: str, names: list[str], height: int, page: int = 0, shared: bool = True,
         width: int = DESIGN_WIDTH) -> tuple[go.Figure, go.Figure]:
    """The ratio maps of `names` side by side in one figure, and their gradient maps in another (views.plots
    .maps_figure), built once per (the objectives' result keys, the layout) from the cached panels and shared by
    every session. Raises ScenarioError when one of `names` cannot run on the scenario."""
    rkeys = tuple((name,) + result_key(key, name) for name in names)

    def compute():
        both = [panels(key, name, page) for name in names]
        return tuple(figure_from_spec(maps_spec([p[kind] for p in both], height, shared, width)) for kind in (0, 1))
    return CACHE.get_or_compute(("maps", rkeys, height, page, shared, width), compute)


def comparison_view(key: str, names: list[str], height: int, page: int = 0, shared: bool = True,
                    width: int = DESIGN_WIDTH) -> ComparisonView:
    """Every objective of `names` on the scenario `key`: results, sentences and the two side-by-side figures of
    those that run; the ScenarioError of each that cannot."""
    results, sentences, errors = {}, {}, {}
    for name in names:
        try:
            results[name], sentences[name] = objective_result(key, name)
        except ScenarioError as e:
            errors[name] = e
    ratio = grad = None
    if results:
        ratio, grad = maps(key, list(results), height, page, shared, width)
    return ComparisonView(results, sentences, errors, ratio, grad)


def advantages_view(key: str, name: str) -> tuple[dict, go.Figure]:
    """core.advantages.advantage_panel of `name`'s result on the scenario `key` (its shaped rewards and ε) and its
    figure (views.plots.advantages_figure), made once per result and shared. Only for a result with rewards."""
    from ..core.advantages import advantage_panel
    rkey = result_key(key, name)
    res, _ = _objective_result(key, name, rkey)

    def compute():
        panel = advantage_panel(res.shaped_rewards, res.explanation.settings.adv_eps)
        return panel, shared_figure(advantages_figure(panel))
    return CACHE.get_or_compute(("advantages",) + rkey, compute)


def cached_clip_curve(name: str, grid: tuple[float, float, int, float], adv_sign: float,
                      settings: Settings) -> ClipCurve:
    """clip_curve on ratio_grid(*grid): the grid's parameters are the cache key, not its 400 points."""
    from ..core.curves import ratio_grid
    return CACHE.get_or_compute(("clip_curve", name, grid, adv_sign, settings),
                                lambda: clip_curve(name, ratio_grid(*grid), adv_sign, settings))


def cached_weights(lengths: tuple, G: int, other_len: int, max_tokens: int) -> dict:
    """per_token_weight_vs_length (a copy: the caller may change it)."""
    from ..core.curves import per_token_weight_vs_length
    return copy.deepcopy(CACHE.get_or_compute(("weights", lengths, G, other_len, max_tokens),
                                              lambda: per_token_weight_vs_length(list(lengths), G, other_len,
                                                                                 max_tokens)))


def cached_drift(lengths: tuple, delta: float) -> tuple[list, list]:
    """drift_curves (a copy: the caller may change it)."""
    from ..core.curves import drift_curves
    return copy.deepcopy(CACHE.get_or_compute(("drift", lengths, delta),
                                              lambda: drift_curves(list(lengths), delta)))
