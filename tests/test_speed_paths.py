"""The Token Lab's faster paths (issue 10, item 6) give the same numbers as the plain ones: the advantages table,
the cached advantages figure, the cache's size estimate without pandas, and the order in which the page loads the
core (after its first messages, so the browser fetches the chart library meanwhile)."""
import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gspo_viz.core.advantages import advantage_panel
from gspo_viz.views import plots

ROOT = Path(__file__).resolve().parents[1]


def test_advantages_table_holds_the_panels_numbers_to_four_decimals():
    rewards = [1.0, 0.0, 0.5, 0.25]
    panel = advantage_panel(rewards, 1e-6)
    lines = plots.advantages_table(panel).splitlines()
    assert [c.strip() for c in lines[0].split("|")[1:-1]] == ["", "resp 1", "resp 2", "resp 3", "resp 4"]
    rows = {r[0]: r[1:] for r in ([c.strip() for c in line.split("|")[1:-1]] for line in lines[2:])}
    assert list(rows) == ["reward R", *panel["advantages"]]
    assert [float(v) for v in rows["reward R"]] == rewards
    for label, values in panel["advantages"].items():
        assert rows[label] == [f"{v:.4f}" for v in values]       # the numbers, as the data-grid printed them
    # hand check of one cell: z-score over G − 1 of reward 1 in (1, 0, 0.5, 0.25): mean 0.4375
    mean = sum(rewards) / 4
    std = (sum((x - mean) ** 2 for x in rewards) / 3) ** 0.5
    assert rows["z-score, std over G − 1 (TRL, verl)"][0] == f"{(1 - mean) / (std + 1e-6):.4f}" == "1.3175"


def test_a_larger_groups_advantages_stay_a_data_grid():
    rewards = [float(i % 3) for i in range(plots.MAX_MARKDOWN_RESPONSES + 1)]
    table = plots.advantages_table(advantage_panel(rewards, 1e-6))
    assert not isinstance(table, str)
    assert list(table.index) == ["reward R", *advantage_panel(rewards, 1e-6)["advantages"]]
    assert list(table.columns)[-1] == f"resp {len(rewards)}" and list(table.loc["reward R"]) == rewards


def test_the_cached_advantages_view_is_the_results_panel_and_is_made_once():
    from gspo_viz.ui import cache
    data = json.loads((ROOT / "examples/default_group.json").read_text())
    key = cache.scenario_key(data)
    res, _ = cache.objective_result(key, "grpo")
    panel, fig = cache.advantages_view(key, "grpo")
    assert panel == advantage_panel(res.shaped_rewards, res.explanation.settings.adv_eps)
    assert [t["y"] for t in fig.to_dict()["data"]] == list(panel["advantages"].values())
    assert cache.advantages_view(key, "grpo")[1] is fig


def test_the_size_estimate_does_not_import_pandas():
    code = ("import sys, json; from gspo_viz.ui import cache; import plotly.graph_objects as go; "
            "v = {'a': [1.0, 2.0], 'f': go.Figure()}; n = cache.estimate_bytes(v); "
            "print(json.dumps([n > 0, 'pandas' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [True, False], out.stderr[-2000:]


def test_size_estimate_still_counts_frames_and_arrays_once_they_exist():
    import numpy as np
    import pandas as pd
    from gspo_viz.ui.cache import estimate_bytes
    assert estimate_bytes(np.zeros(1000)) >= 8000
    frame = pd.DataFrame({"a": np.arange(1000, dtype=np.float64)})
    assert estimate_bytes(frame) >= 8000


def _top_level_order(path: Path) -> list[str]:
    """The page's top-level statements, in order, as 'import:<module>' or 'call:<function>'."""
    out = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom):
            out.append(f"import:{node.module}")
        elif isinstance(node, ast.Import):
            out += [f"import:{a.name}" for a in node.names]
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name):
            out.append(f"call:{node.value.func.id}")
        elif isinstance(node, ast.If):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name):
                    out.append(f"call:{sub.func.id}")
    return out


def test_the_token_lab_sends_its_first_messages_before_it_loads_the_core():
    order = _top_level_order(ROOT / "pages/1_token_lab.py")
    heavy = [k for k, s in enumerate(order) if s in ("import:gspo_viz", "import:gspo_viz.ui.cache",
                                                        "import:gspo_viz.views.plots", "import:pandas")]
    assert heavy, order
    assert order.index("call:require_app") < heavy[0]      # a page run alone goes through app.py at once
    assert order.index("call:maps_skeleton") < heavy[0]    # the chart's place is out before torch loads
    light = ["gspo_viz.ui.state", "gspo_viz.ui.talk", "gspo_viz.ui.widgets"]
    code = ("import sys; " + "; ".join(f"import {m}" for m in light) +
            "; print(sorted(m for m in ('torch', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stderr[-2000:]   # what comes before loads neither


@pytest.mark.usefixtures("navigation_mode")
def test_the_first_run_ends_with_the_maps_in_the_empty_charts_place():
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/1_token_lab.py").run()
    assert not at.exception
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert len(specs) == 3 and all(s["data"] for s in specs)   # the empty chart was replaced by the ratio maps
    assert at.session_state["lab_drawn"]
    at.number_input(key=f"c_{at.session_state['version']}").set_value(5.0).run()
    assert len(at.get("plotly_chart")) == 3 and all(json.loads(c.proto.spec)["data"] for c in at.get("plotly_chart"))
    assert any(m.value.startswith("| | resp 1 |") for m in at.markdown)    # the advantages as a plain table


RACE = """
import importlib, sys, threading, time
from gspo_viz.ui import widgets
class Slot:
    def plotly_chart(self, fig, **kw):
        import plotly.io as pio
        self.spec = pio.to_json(fig, validate=False)
thread = threading.Thread(target=importlib.import_module, args=("gspo_viz.ui.cache",), daemon=True)
thread.start()          # as the landing page does
time.sleep(float(sys.argv[1]))
slot = Slot()
widgets.maps_skeleton(slot)
thread.join()
print("drawn" if '"Drawing the maps' in slot.spec else "missing")
"""


@pytest.mark.parametrize("delay", [0.05, 0.3])
def test_the_empty_chart_waits_for_numpy_while_the_core_loads_in_a_thread(delay):
    out = subprocess.run([sys.executable, "-c", RACE, str(delay)], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip().splitlines()[-1:] == ["drawn"], out.stderr[-2000:]
