"""A trainer's batch as groups (gspo_viz/scenarios/batches.py): JSONL and Parquet with the same columns, every bad
line reported by its number, the command line's --group, and the app's group picker."""
import io
import json
from pathlib import Path

import pytest

from gspo_viz import parse_scenario, run_scenario
from gspo_viz.cli import main
from gspo_viz.scenarios.batches import MAX_REPORTED, read_batch, to_jsonl
from gspo_viz.scenarios.files import ScenarioError
from gspo_viz.views.style import fmt

ROOT = Path(__file__).resolve().parents[1]
GROUPS = {
    "q1": [{"tokens": ["a", "b"], "logp_old": [-1.0, -2.0], "logp_new": [-0.9, -2.1], "reward": 1.0},
           {"tokens": ["c"], "logp_old": [-1.0], "logp_new": [-1.2], "reward": 0.0, "truncated": True}],
    "17": [{"logp_old": [-0.5], "logp_new": [-0.4], "reward": 1.0},
           {"logp_old": [-0.7, -0.1], "logp_new": [-0.6, -0.3], "logp_ref": [-0.6, -0.2], "reward": 0.0}],
}


def jsonl() -> bytes:
    return to_jsonl(GROUPS).encode()


def test_jsonl_groups_keep_file_order_and_line_numbers():
    b = read_batch(jsonl(), "run.jsonl")
    assert list(b.groups) == ["q1", "17"] and b.lines == {"q1": [1, 2], "17": [3, 4]}
    assert b.groups == GROUPS
    scn = parse_scenario(b.scenario("17"))
    assert [r.logp_ref for r in scn.responses] == [None, [-0.6, -0.2]]
    # interleaved groups and a whole-number id: responses keep their group's order
    mixed = b'{"group": 5, "logp_old": [-1], "logp_new": [-1], "reward": 1}\n\n' \
            b'{"group": "x", "logp_old": [-1], "logp_new": [-1], "reward": 0}\n' \
            b'{"group": 5, "logp_old": [-2], "logp_new": [-1], "reward": 0}\n'
    m = read_batch(mixed, "m.jsonl")
    assert list(m.groups) == ["5", "x"] and m.lines["5"] == [1, 4] and len(m.groups["5"]) == 2


def test_every_bad_line_is_reported_by_its_number():
    bad = jsonl() + (b'{"group": "q3", "logp_old": [-1], "logp_new": [0.5]}\n'       # line 5
                     b'not json\n'                                                     # 6
                     b'{"logp_old": [-1], "logp_new": [-1]}\n'                         # 7
                     b'[1, 2]\n'                                                       # 8
                     b'{"group": true, "logp_old": [-1], "logp_new": [-1]}\n'          # 9
                     b'{"group": "q1", "logp_old": [-1, -2], "logp_new": [-1]}\n'      # 10
                     b'{"group": "q1", "logp_old": [-1], "logp_new": [-1], "score": 1}\n')   # 11
    with pytest.raises(ScenarioError) as e:
        read_batch(bad, "run.jsonl")
    lines = str(e.value).splitlines()
    assert [x.split(":")[0] for x in lines] == [f"line {k}" for k in range(5, 12)]
    assert lines[0] == "line 5: logp_new[0]: log-probability 0.5 is above 0 (probability above 1)"
    assert lines[1].startswith("line 6: column 1: invalid JSON")
    assert lines[2] == "line 7: group: missing: each response names its group (the prompt's id)"
    assert lines[4] == "line 9: group: must be a string or a whole number, got true"
    assert lines[5] == "line 10: lists have unequal lengths (old: 2, new: 1)"
    assert lines[6].startswith("line 11: score: unknown field")
    many = b"x\n" * 50
    with pytest.raises(ScenarioError) as e:
        read_batch(many, "run.jsonl")
    assert len(str(e.value).splitlines()) == MAX_REPORTED + 1 and "stopped after 20 bad lines" in str(e.value)


def test_parquet_with_the_same_columns_reads_the_same_groups():
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    columns = ["group", "tokens", "logp_old", "logp_new", "logp_ref", "reward", "truncated"]
    rows = [{c: ({"group": g} | r).get(c) for c in columns} for g, rs in GROUPS.items() for r in rs]   # null: absent
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf)
    b = read_batch(buf.getvalue(), "run.parquet")
    assert b.source == "Parquet" and b.groups == GROUPS
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([dict(rows[0], score=1.0)]), buf)
    with pytest.raises(ScenarioError, match="column 'score': unknown column"):
        read_batch(buf.getvalue(), "run.parquet")
    with pytest.raises(ScenarioError, match="cannot read the file as Parquet"):
        read_batch(b"PAR1 not really", "run.parquet")
    with pytest.raises(ScenarioError, match="a batch is a .jsonl or .parquet file"):
        read_batch(b"", "run.csv")


def test_the_command_line_checks_one_group(tmp_path, capsys):
    f = tmp_path / "run.jsonl"
    f.write_bytes(jsonl())
    assert main(["explain", str(f)]) == 2
    assert "--group: choose a group: this batch has 2 groups: 'q1', '17'" in capsys.readouterr().err
    assert main(["explain", str(f), "--group", "17", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    expected = run_scenario(parse_scenario(read_batch(jsonl(), "run.jsonl").scenario("17")))
    assert doc["loss"] == expected.explanation.loss
    assert main(["steps", str(f), "--group", "q1", "--response", "2", "--token", "1", "--objective", "dapo",
                 "--set", "overlong={\"filter\": true}"]) == 0
    assert "masked out of the loss" in capsys.readouterr().out
    f.write_bytes(jsonl() + b'{"group": "q1", "logp_old": [-1], "logp_new": [3]}\n')
    assert main(["explain", str(f), "--group", "q1"]) == 2
    assert "line 5: logp_new[0]" in capsys.readouterr().err


def test_the_app_pages_through_a_batchs_groups(navigation_mode):
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/1_token_lab.py").run()
    batch = read_batch(jsonl(), "run.jsonl")
    at.session_state["batch"], at.session_state["batch_name"] = batch, "run.jsonl"
    at.session_state["batch_group"] = "q1"
    at.run()
    assert any("Batch run.jsonl (JSONL): 2 groups" in c.value for c in at.sidebar.caption)
    at.sidebar.button(key="batch_next").click().run()
    assert at.session_state["batch_group"] == "17"
    assert at.session_state["scenario"]["responses"] == GROUPS["17"]
    assert at.session_state["scenario"]["title"] == "run.jsonl, group 17"
    loss = run_scenario(parse_scenario(at.session_state["scenario"]), "grpo").explanation.loss
    assert at.metric[0].value == fmt(loss)
    pick = next(s for s in at.sidebar.selectbox if s.label == "Group")
    pick.select("q1").run()
    assert at.session_state["scenario"]["responses"] == GROUPS["q1"]
