"""Command line: `python -m gspo_viz explain FILE [FILE ...]` and `python -m gspo_viz steps FILE --response I --token T`.

A FILE may be a folder: every *.json in it, in name order. Bad input gives one line per file on stderr (the file,
the field, what is wrong) and exit code 2; the other files are still printed.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from .core.objectives import NAMES
from .scenarios import ScenarioError, load_scenario, parse_scenario, run_scenario


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # usage errors: one line, exit 2
        self.exit(2, f"{self.prog}: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m gspo_viz", description="Check a GRPO/GSPO/... scenario by hand.")
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("explain", help="per-token table, sequence ratios, advantages and loss of a scenario file")
    st = sub.add_parser("steps", help="one token's computation step by step, ending in its gradient weight and "
                                      "autograd's")
    for p in (ex, st):
        p.add_argument("file", nargs="+", help="scenario JSON file(s) (see examples/), or a folder: every *.json in "
                                               "it; with several, --json prints {path: result}")
        p.add_argument("--objective", help=f"override the file's objective: {', '.join(NAMES)}")
        p.add_argument("--json", action="store_true", help="print the result as JSON")
        p.add_argument("--group", help="for a batch (.jsonl or .parquet: one response per line or row, each with "
                                       "its group): the group to check; needed when the batch has several")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override one of the file's settings, by its scenario name, e.g. "
                            "--set loss_agg_mode=token-mean --set eps_high=0.28 (VALUE is read as JSON when it "
                            "parses, else as text); repeatable")
    cf = sub.add_parser("config", help="a scenario's settings as verl's Hydra overrides or TRL's GRPOConfig keywords "
                                       "(--to), or those read back as scenario settings (--from)")
    cf.add_argument("file", help="--to: a scenario JSON file; --from verl: a file of key=value overrides, one per "
                                 "line; --from trl: a JSON object of GRPOConfig keywords")
    way = cf.add_mutually_exclusive_group(required=True)
    way.add_argument("--to", choices=("verl", "trl"), help="print the settings in verl 0.9's or TRL 1.16's words")
    way.add_argument("--from", dest="source", choices=("verl", "trl"), help="print the scenario settings they mean")
    cf.add_argument("--objective", help=f"override the file's objective (--to): {', '.join(NAMES)}")
    cf.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting (--to)")
    cf.add_argument("--json", action="store_true", help="--to: print a JSON object (for TRL: GRPOConfig(**it))")
    st.add_argument("--response", type=int, required=True, help="the response, counted from 1")
    st.add_argument("--token", type=int, required=True, help="the token of that response, counted from 1")
    return parser


def _files(args: list[str]) -> tuple[list[str], list[str]]:
    """The files to run (a folder gives its *.json in name order) and one error line per argument that gives none."""
    files, errors = [], []
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            found = sorted(str(p) for p in path.glob("*.json") if p.is_file())
            if not found:
                errors.append(f"{arg}: the folder holds no *.json files")
            files += found
        else:
            files.append(arg)
    return files, errors


def _nonfinite(doc, where: str = "") -> str | None:
    """The JSON path of the first NaN or ±inf in `doc`, or None."""
    if isinstance(doc, float):
        return None if math.isfinite(doc) else where
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for k, v in items:
        found = _nonfinite(v, f"{where}.{k}" if isinstance(k, str) else f"{where}[{k}]")
        if found is not None:
            return found
    return None


def _one(args, path: str) -> tuple[dict, str]:
    """(the JSON document, the text) of one file; ScenarioError for bad input."""
    from .views import report
    from .scenarios.batches import is_batch, load_batch, pick_group
    if is_batch(path):
        batch = load_batch(path)
        group = pick_group(batch, args.group)
        scenario = parse_scenario(batch.scenario(group, f"{Path(path).name}, group {group}"), args.objective,
                                  args.overrides)
    else:
        scenario = load_scenario(path, args.objective, args.overrides)
    if args.command == "steps":
        G = len(scenario.responses)
        if not 1 <= args.response <= G:
            raise ScenarioError("--response", f"no response {args.response}; this scenario has responses 1 to {G}")
        L = len(scenario.responses[args.response - 1].tokens)
        if not 1 <= args.token <= L:
            raise ScenarioError("--token", f"no token {args.token} in response {args.response}; it has tokens "
                                           f"1 to {L}")
    result = run_scenario(scenario)
    if args.command == "steps":
        i, t = args.response - 1, args.token - 1
        doc = report.steps_json(result, i, t)
        text = None if args.json else report.steps_text(result, i, t)
    else:
        doc = report.to_json(result) if args.json else None
        text = None if args.json else report.to_text(result)
    if doc is not None:
        where = _nonfinite(doc)
        if where is not None:  # run_scenario's own check covers the result; this covers every number printed
            raise ScenarioError(where.lstrip("."), "is not a finite number (float64 overflowed); use smaller "
                                                   "log-ratios, rewards, advantages or β")
    return doc, text


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.objective is not None and args.objective not in NAMES:
        print(f"--objective: unknown objective {args.objective!r}; valid: {', '.join(NAMES)}", file=sys.stderr)
        return 2
    args.overrides = {}
    for item in args.set:
        key, eq, raw = item.partition("=")
        if not eq or not key.strip():
            print(f"--set: {item!r} is not KEY=VALUE, e.g. --set loss_agg_mode=token-mean", file=sys.stderr)
            return 2
        try:
            args.overrides[key.strip()] = json.loads(raw)
        except ValueError:
            args.overrides[key.strip()] = raw
    if args.command == "config":
        return _config(args)
    files, errors = _files(args.file)
    for line in errors:
        print(line, file=sys.stderr)
    several = len(files) > 1 or any(Path(a).is_dir() for a in args.file)
    docs, failed = {}, bool(errors)
    try:
        for path in files:
            try:
                doc, text = _one(args, path)
            except ScenarioError as e:
                print(f"{path}: {e}", file=sys.stderr)
                failed = True
                continue
            if args.json:
                docs[path] = doc
            else:
                if several:
                    print(f"==> {path} <==")
                print(text + ("\n" if several else ""))
        if args.json and docs:  # several files: {path: result} of those that ran; one file: its result
            out = docs if several else docs[files[0]]
            print(json.dumps(out, indent=2, ensure_ascii=False, allow_nan=False))
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly. Python's docs: point stdout at devnull so that the
        # interpreter's final flush does not report the broken pipe again.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1
    return 2 if failed else 0


def _config(args) -> int:
    """`config`: the mapping on stdout, each note on stderr ("note: ..."); exit 0, or 2 with one line for bad input
    or an objective the library has no loss for."""
    from .scenarios import bridge
    from .scenarios.files import MAX_FILE_BYTES, file_too_big, loads_bytes, read_limited
    path = Path(args.file)
    try:
        raw = read_limited(path, MAX_FILE_BYTES, file_too_big)
    except ScenarioError as e:
        print(f"{args.file}: {e}", file=sys.stderr)
        return 2
    try:
        if args.to:
            settings = load_scenario(path, args.objective, args.overrides).settings
            mapping = bridge.to_verl(settings) if args.to == "verl" else bridge.to_trl(settings)
            if not mapping.values or (args.to == "trl" and "loss_type" not in mapping.values):
                print(f"{args.file}: " + "; ".join(mapping.notes), file=sys.stderr)
                return 2
            if args.json:
                text = json.dumps(mapping.values, indent=1, allow_nan=False)
            else:
                text = bridge.as_overrides(mapping) if args.to == "verl" else bridge.as_python(mapping)
            notes = mapping.notes
        else:
            if args.source == "verl":
                given = bridge.read_overrides(raw.decode("utf-8-sig"))
            else:
                given = loads_bytes(raw)
                if not isinstance(given, dict):
                    raise bridge.BridgeError("", "the file must hold a JSON object of GRPOConfig keywords")
            settings, notes = bridge.from_verl(given) if args.source == "verl" else bridge.from_trl(given)
            text = json.dumps({"settings": settings}, indent=1, ensure_ascii=False, allow_nan=False)
    except (ScenarioError, bridge.BridgeError) as e:
        print(f"{args.file}: {e}", file=sys.stderr)
        return 2
    except UnicodeDecodeError as e:
        print(f"{args.file}: cannot read the file as UTF-8 text ({e.reason})", file=sys.stderr)
        return 2
    print(text)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
