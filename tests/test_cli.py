"""`python -m gspo_viz explain` on every example and on each kind of bad input (one line, exit 2, no traceback)."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from gspo_viz.cli import main
from gspo_viz.scenarios import MAX_FILE_BYTES

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))
GOOD = {"responses": [{"tokens": ["a", "b"], "p_old": [0.3, 0.2], "p_new": [0.4, 0.25], "reward": 1.0},
                      {"tokens": ["c"], "p_old": [0.5], "p_new": [0.45], "reward": 0.0}],
        "settings": {"objective": "grpo"}}


def cli(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_text_and_json(path, capsys):
    code, out, err = cli(capsys, "explain", str(path))
    assert code == 0 and err == ""
    assert "conventions:" in out and "loss = −J" in out
    code, out, _ = cli(capsys, "explain", str(path), "--json")
    doc = json.loads(out)
    assert list(doc) == ["objective", "settings", "loss", "advantages", "responses", "metrics", "conventions",
                         "sentence"]
    scn = json.loads(path.read_text())
    assert len(doc["responses"]) == len(scn["responses"])
    for k, (r, given) in enumerate(zip(doc["responses"], scn["responses"]), start=1):
        assert list(r) == ["response", "sequence_ratio", "masked", "tokens"] and r["response"] == k
        assert len(r["tokens"]) == len(given.get("tokens") or given.get("p_old") or given["logp_old"])
        for n, t in enumerate(r["tokens"], start=1):
            assert list(t) == ["t", "token", "p_old", "p_new", "advantage", "token_ratio", "ratio", "clip",
                               "grad_weight", "policy_grad_weight"] and t["t"] == n
            assert t["clip"] in ("none", "upper", "lower", "dual") and math.isfinite(t["grad_weight"])
    assert "clip_fraction" in doc["metrics"] and math.isfinite(doc["loss"])


@pytest.mark.parametrize("objective", ["grpo", "dual_clip", "dapo", "dr_grpo", "gspo", "gspo_token", "cispo", "gmpo",
                                       "sapo"])
def test_objective_override(objective, capsys):
    code, out, _ = cli(capsys, "explain", str(ROOT / "examples/three_responses_gspo.json"), "--objective", objective,
                       "--json")
    doc = json.loads(out)
    assert code == 0 and doc["objective"] == objective == doc["settings"]["objective"]
    has_seq = objective in ("gspo", "gspo_token", "gmpo")
    assert all((r["sequence_ratio"] is not None) == has_seq for r in doc["responses"])


def test_json_numbers_match_the_text(capsys):
    path = str(ROOT / "examples/movie_five_tokens.json")
    doc = json.loads(cli(capsys, "explain", path, "--json")[1])
    assert doc["loss"] == pytest.approx(-1.135)
    assert [t["clip"] for t in doc["responses"][0]["tokens"]] == ["upper", "upper", "none", "none", "upper"]
    assert doc["settings"]["eps_high"] == 0.2 and doc["settings"]["std"] == "sample"


def write(tmp_path, data, name="bad.json"):
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else json.dumps(data))
    return p


def edit(**changes):
    data = json.loads(json.dumps(GOOD))
    for path, value in changes.items():
        target = data
        keys = path.split("__")
        for k in keys[:-1]:
            target = target[int(k)] if k.isdigit() else target[k]
        last = keys[-1]
        if value is ...:
            del target[int(last) if last.isdigit() else last]
        elif last.isdigit():
            target[int(last)] = value
        else:
            target[last] = value
    return data


BAD = [
    ("prob_zero", edit(responses__0__p_new=[0.0, 0.25]), "responses[0].p_new[0]", "outside (0, 1]"),
    ("prob_above_one", edit(responses__1__p_old=[1.5]), "responses[1].p_old[0]", "outside (0, 1]"),
    ("logp_above_zero", edit(responses__0__p_old=..., responses__0__logp_old=[-1.0, 0.5]), "responses[0].logp_old[1]",
     "above 0"),
    ("nan", '{"responses": [{"p_old": [NaN], "p_new": [0.5], "reward": 1}, {"p_old": [0.5], "p_new": [0.5], '
            '"reward": 0}]}', "responses[0].p_old[0]", "finite"),
    ("infinite", '{"responses": [{"p_old": [0.5], "p_new": [0.5], "reward": Infinity}, {"p_old": [0.5], '
                 '"p_new": [0.5], "reward": 0}]}', "responses[0].reward", "finite"),
    ("not_a_number", edit(responses__0__reward="high"), "responses[0].reward", "must be a number"),
    ("unequal", edit(responses__0__p_new=[0.4]), "responses[0]", "unequal lengths"),
    ("unequal_tokens", edit(responses__1__tokens=["c", "d"]), "responses[1]", "unequal lengths"),
    ("empty", edit(responses__1__p_old=[], responses__1__p_new=[], responses__1__tokens=[]), "responses[1]",
     "is empty"),
    ("one_response", edit(responses__1=...), "responses", "at least 2 responses"),
    ("eps", edit(settings__eps_low=1.2), "settings.eps_low", "[0, 1)"),
    ("eps_high", edit(settings__eps_high=-0.2), "settings.eps_high", "[0, 10]"),
    ("c", edit(settings__objective="dual_clip", settings__dual_clip_c=0.9), "settings.dual_clip_c", "must be > 1"),
    ("objective", edit(settings__objective="ppo2"), "settings.objective", "valid: grpo, dual_clip, dapo"),
    ("setting", edit(settings__clip=0.2), "settings.clip", "unknown setting; GRPO reads: objective, eps_low, eps_high"),
    ("setting_typo", edit(settings__eps_hihg=0.2), "settings.eps_hihg", "did you mean 'eps_high'?"),
    ("field", edit(responses__0__prob=[0.1]), "responses[0].prob", "valid fields:"),
    ("no_reward", edit(responses__0__reward=...), "responses[0]", "needs a reward"),
    ("both_forms", edit(responses__0__logp_old=[-1.0, -1.0]), "responses[0]", "not both"),
    ("too_many", {"responses": [{"p_old": [0.5], "p_new": [0.5], "reward": float(i % 2)} for i in range(300)]},
     "responses", "the limit is 256"),
    ("not_object", "[1, 2]", "bad.json", "JSON object"),
    ("beta_no_ref", edit(settings__beta=0.1), "responses[0]", "p_ref or logp_ref"),
]


@pytest.mark.parametrize("name,data,where,words", BAD, ids=[b[0] for b in BAD])
def test_bad_input_one_line_exit_2(name, data, where, words, tmp_path, capsys):
    p = write(tmp_path, data)
    code, out, err = cli(capsys, "explain", str(p))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"{p}:"), err
    assert where in err and words in err, err


def test_invalid_json_gives_line_and_column(tmp_path, capsys):
    p = write(tmp_path, '{\n  "responses": [\n    {"p_old": [0.5,], }\n  ]\n}')
    code, _, err = cli(capsys, "explain", str(p))
    assert code == 2 and "line 3 column" in err and "invalid JSON" in err


def test_file_over_the_size_limit(tmp_path, capsys):
    p = write(tmp_path, " " * (MAX_FILE_BYTES + 1) + json.dumps(GOOD))
    code, _, err = cli(capsys, "explain", str(p))
    assert code == 2 and f"the limit is {MAX_FILE_BYTES}" in err


def test_missing_file_and_unknown_objective_flag(tmp_path, capsys):
    code, _, err = cli(capsys, "explain", str(tmp_path / "nope.json"))
    assert code == 2 and "cannot read the file" in err
    code, _, err = cli(capsys, "explain", str(write(tmp_path, GOOD)), "--objective", "trpo")
    assert code == 2 and "unknown objective 'trpo'" in err and "gspo_token" in err


def test_log_ratios_of_50_are_finite(tmp_path, capsys):
    data = {"responses": [{"logp_old": [-60.0, -0.1], "logp_new": [-10.0, -50.1], "reward": 1.0},
                          {"logp_old": [-0.1], "logp_new": [-50.1], "reward": 0.0}]}
    for objective in ("grpo", "dual_clip", "dapo", "dr_grpo", "gspo", "gspo_token", "cispo", "gmpo", "sapo"):
        code, out, _ = cli(capsys, "explain", str(write(tmp_path, data)), "--objective", objective, "--json")
        doc = json.loads(out)
        assert code == 0 and math.isfinite(doc["loss"])
        assert all(math.isfinite(t["ratio"]) and math.isfinite(t["grad_weight"])
                   for r in doc["responses"] for t in r["tokens"])


def test_log_ratio_that_would_overflow_is_refused(tmp_path, capsys):
    data = edit(responses__0__p_old=..., responses__0__logp_old=[-800.0, -1.0])
    code, _, err = cli(capsys, "explain", str(write(tmp_path, data)))
    assert code == 2 and "responses[0] token 0" in err and "overflow" in err


def test_module_entry_point_no_traceback(tmp_path):
    p = write(tmp_path, edit(responses__0__p_new=[2.0, 0.25]))
    run = subprocess.run([sys.executable, "-m", "gspo_viz", "explain", str(p)], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 2 and "Traceback" not in run.stderr and "responses[0].p_new[0]" in run.stderr
    ok = subprocess.run([sys.executable, "-m", "gspo_viz", "explain", str(ROOT / "examples/movie_five_tokens.json")],
                        cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0 and "J = 1.135" in ok.stdout


def test_steps_command_text_and_json(capsys):
    path = str(ROOT / "examples" / "movie_five_tokens.json")
    code, out, err = cli(capsys, "steps", path, "--response", "1", "--token", "4")
    assert code == 0 and err == ""
    # token 4 "，": r = 0.7/0.8 = 0.875 inside [0.8, 1.2]; weight (1/G)(1/|y|)·r·A = (1/5)·0.875·1 = 0.175
    assert "response 1, token 4 “，”" in out and "= 0.175" in out and "autograd:                     0.175" in out
    code, out, _ = cli(capsys, "steps", path, "--response", "1", "--token", "1", "--json")
    doc = json.loads(out)
    assert list(doc) == ["objective", "response", "token", "steps", "grad_weight", "autograd"]
    assert (doc["objective"], doc["response"], doc["token"]) == ("grpo", 1, 1)
    assert all(list(s) == ["name", "formula", "value"] for s in doc["steps"])
    assert doc["grad_weight"] == doc["steps"][-1]["value"] == 0.0 == doc["autograd"]  # r = 4/3 > 1.2: clipped
    code, out, _ = cli(capsys, "explain", path, "--json")
    assert json.loads(out)["responses"][0]["tokens"][3]["grad_weight"] == pytest.approx(0.175)


@pytest.mark.parametrize("args, message", [
    (["--response", "2", "--token", "1"], "--response: no response 2; this scenario has responses 1 to 1"),
    (["--response", "0", "--token", "1"], "--response: no response 0"),
    (["--response", "1", "--token", "6"], "--token: no token 6 in response 1; it has tokens 1 to 5"),
])
def test_steps_command_no_such_response_or_token(capsys, args, message):
    code, out, err = cli(capsys, "steps", str(ROOT / "examples" / "movie_five_tokens.json"), *args)
    assert code == 2 and out == "" and err.count("\n") == 1 and message in err


@pytest.mark.parametrize("args, message", [(["--response", "1"], "the following arguments are required: --token"),
                                           (["--response", "x", "--token", "1"], "invalid int value: 'x'")])
def test_steps_command_usage_errors(capsys, args, message):
    with pytest.raises(SystemExit) as e:
        main(["steps", str(ROOT / "examples" / "movie_five_tokens.json"), *args])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and message in err


# ------------------------------------------------------------------------------------------------------------ issue 9
def write_bytes(tmp_path, raw, name="bad.json"):
    p = tmp_path / name
    p.write_bytes(raw)
    return p


GOOD_TEXT = json.dumps(GOOD)
HOSTILE = [
    ("nested_100000", GOOD_TEXT.replace('"a", "b"', '"a", ' + "[" * 100_000 + "]" * 100_000),
     "line 1 column", "nests more than 16 levels deep"),
    ("int_400_digits", GOOD_TEXT.replace('"reward": 1.0', '"reward": ' + "9" * 400), "responses[0].reward",
     "the number 99999999999999999999…99999999 (400 digits) is too large"),
    ("int_5000_digits", GOOD_TEXT.replace('"reward": 0.0', '"reward": -' + "9" * 5000), "responses[1].reward",
     "(5000 digits) is too large"),
    ("logp_400_digits", GOOD_TEXT.replace('"p_old": [0.5]', '"logp_old": [-' + "9" * 400 + "]"),
     "responses[1].logp_old[0]", "(400 digits) is too large"),
    ("surrogate", GOOD_TEXT.replace('"c"]', '"c", "\\ud800"]').replace('"p_old": [0.5], "p_new": [0.45]',
                                                                       '"p_old": [0.5, 0.5], "p_new": [0.45, 0.5]'),
     "responses[1].tokens[1]", r"contains an unpaired surrogate (\ud800)"),
    ("surrogate_key", GOOD_TEXT.replace('"settings"', '"\\udfffx"'), "", r'the field name "\udfffx" contains'),
    ("max_tokens_huge", GOOD_TEXT.replace('{"objective": "grpo"}', '{"max_tokens": ' + "1" * 400 + "}"),
     "settings.max_tokens", "(400 digits) is too large"),
    ("rewards_1e308", GOOD_TEXT.replace('"reward": 1.0', '"reward": 1e308'), "responses[0].reward", "beyond ±1e15"),
    ("rewards_pm_1e308", GOOD_TEXT.replace('"reward": 1.0', '"reward": 1e308').replace('"reward": 0.0',
                                                                                      '"reward": -1e308'),
     "responses[0].reward", "beyond ±1e15"),
    ("ref_log_ratio_800", GOOD_TEXT.replace('"p_new": [0.45]', '"p_new": [0.45], "logp_ref": [-800.8]').replace(
        '"p_new": [0.4, 0.25]', '"p_new": [0.4, 0.25], "logp_ref": [-1, -1]').replace('"grpo"', '"grpo", "beta": 0.04'),
     "responses[1] token 0", "log-ratio to the reference, log π_new − log π_ref, 800.001 is beyond ±700"),
]


@pytest.mark.parametrize("name,text,where,words", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_files_get_one_line_and_exit_2(name, text, where, words, tmp_path, capsys):
    # before: tracebacks (RecursionError, OverflowError, ValueError, UnicodeEncodeError), or a NaN loss / all
    # advantages 0 / "loss": Infinity printed with exit code 0
    p = write(tmp_path, text)
    for args in (["explain", str(p), "--json"], ["steps", str(p), "--response", "1", "--token", "1"]):
        code, out, err = cli(capsys, *args)
        assert code == 2 and out == "" and err.count("\n") == 1, (code, out[:200], err[:200])
        assert err.startswith(f"{p}: {where}") and words in err and len(err) < 300, err


def test_latin_1_file_is_refused_where_the_byte_is(tmp_path, capsys):
    p = write_bytes(tmp_path, GOOD_TEXT.replace('"b"', '"é"').encode("latin-1"))
    code, out, err = cli(capsys, "explain", str(p))
    assert code == 2 and out == ""
    assert err == f"{p}: line 1 column 34: cannot read the file as UTF-8 text (byte 0xe9: invalid continuation " \
                  "byte); save it as UTF-8\n"


@pytest.mark.parametrize("value, where", [('"' + "9" * 300 + '"', "responses[0].reward"),
                                          ("[" + ", ".join(["1"] * 500) + "]", "responses[0].reward")])
def test_messages_quote_long_values_short(value, where, tmp_path, capsys):
    p = write(tmp_path, GOOD_TEXT.replace('"reward": 1.0', f'"reward": {value}'))
    code, _, err = cli(capsys, "explain", str(p))
    assert code == 2 and where in err and len(err) < len(str(p)) + 120, err   # before: the 300 digits in full
    assert "…" in err or "a list of 500 items" in err


def test_a_log_ratio_of_1e300_is_quoted_short(tmp_path, capsys):
    p = write(tmp_path, edit(responses__0__p_old=..., responses__0__logp_old=[-1e300, -1.0]))
    code, _, err = cli(capsys, "explain", str(p))
    assert code == 2 and "log-ratio 1e+300 is beyond ±700" in err and len(err) < 200, err


def test_results_that_overflow_are_refused_naming_the_number(tmp_path, capsys):
    # within every bound (log-ratio 700, advantage 1e15) but e^700 · 1e15 overflows: refused, not printed as inf
    data = {"responses": [{"logp_old": [-700.0], "logp_new": [0.0], "advantage": 1e15}],
            "settings": {"objective": "grpo"}}
    code, out, err = cli(capsys, "explain", str(write(tmp_path, data)), "--json")
    assert code == 2 and out == ""
    assert err.startswith(f"{tmp_path / 'bad.json'}: responses[0] token 0: ratio × advantage is inf: "), err


def test_json_output_never_holds_nan_or_infinity(tmp_path, capsys, monkeypatch):
    # the last guard: a number that is not finite in the document is refused with its path, never printed as NaN
    from gspo_viz.views import report
    original = report.to_json
    monkeypatch.setattr(report, "to_json", lambda res: original(res) | {"loss": float("nan")})
    code, out, err = cli(capsys, "explain", str(ROOT / "examples/movie_five_tokens.json"), "--json")
    assert code == 2 and out == "" and "examples/movie_five_tokens.json: loss: is not a finite number" in err


def test_a_closed_pipe_ends_quietly_and_the_cli_imports_only_what_it_needs():
    # `python -m gspo_viz explain examples/ | head -1`: before, Python printed "BrokenPipeError" on stderr
    proc = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "gspo_viz", "explain", str(ROOT / "examples")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()   # the reader goes away before the first line is written
    err = proc.stderr.read().decode().splitlines()
    proc.wait(timeout=120)
    imported = {line.split("|")[-1].strip() for line in err if line.startswith("import time:")}
    assert [line for line in err if not line.startswith("import time:")] == [] and proc.returncode == 1
    # explain needs the core (torch) and the report; not Streamlit, plotly, pandas, the toy or the app's glue
    assert "torch" in imported and "gspo_viz.views.report" in imported
    assert not imported & {"streamlit", "plotly", "pandas", "gspo_viz.toy", "gspo_viz.ui"}


def test_several_files_and_a_folder(tmp_path, capsys):
    movie, three = ROOT / "examples/movie_five_tokens.json", ROOT / "examples/three_responses_gspo.json"
    code, out, err = cli(capsys, "explain", str(movie), str(three))
    assert code == 0 and err == ""
    assert out.startswith(f"==> {movie} <==\n") and f"\n==> {three} <==\n" in out and out.count("==> ") == 2
    assert "J = 1.135" in out.split(f"==> {three}")[0]
    # --json: {path: result}, each result as for one file
    code, out, _ = cli(capsys, "explain", str(movie), str(three), "--json")
    doc = json.loads(out)
    assert list(doc) == [str(movie), str(three)] and doc[str(movie)]["loss"] == pytest.approx(-1.135)
    # a folder: every *.json in name order; a bad file is one line naming it, the others are still printed
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "a.json").write_text(movie.read_text())
    (folder / "b.json").write_text(json.dumps(edit(responses__0__p_new=[2.0, 0.25])))
    (folder / "c.json").write_text(three.read_text())
    (folder / "notes.txt").write_text("not a scenario")
    code, out, err = cli(capsys, "explain", str(folder), "--json")
    assert code == 2 and list(json.loads(out)) == [str(folder / "a.json"), str(folder / "c.json")]
    assert err == f"{folder / 'b.json'}: responses[0].p_new[0]: probability 2.0 is outside (0, 1]\n"
    code, out, err = cli(capsys, "steps", str(folder), "--response", "1", "--token", "1")
    assert code == 2 and out.count("==> ") == 2 and err.count("\n") == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = cli(capsys, "explain", str(empty))
    assert code == 2 and out == "" and err == f"{empty}: the folder holds no *.json files\n"
