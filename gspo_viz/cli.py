"""Command line: `python -m gspo_viz explain FILE` and `python -m gspo_viz steps FILE --response I --token T`."""
from __future__ import annotations

import argparse
import json
import sys

from .core.objectives import NAMES
from .scenarios import ScenarioError, load_scenario, run_scenario


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
        p.add_argument("file", help="scenario JSON file (see examples/)")
        p.add_argument("--objective", help=f"override the file's objective: {', '.join(NAMES)}")
        p.add_argument("--json", action="store_true", help="print the result as JSON")
    st.add_argument("--response", type=int, required=True, help="the response, counted from 1")
    st.add_argument("--token", type=int, required=True, help="the token of that response, counted from 1")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.objective is not None and args.objective not in NAMES:
        print(f"{args.file}: objective: unknown objective {args.objective!r}; valid: {', '.join(NAMES)}",
              file=sys.stderr)
        return 2
    try:
        scenario = load_scenario(args.file, args.objective)
        if args.command == "steps":
            G = len(scenario.responses)
            if not 1 <= args.response <= G:
                raise ScenarioError("--response", f"no response {args.response}; this scenario has responses 1 to {G}")
            L = len(scenario.responses[args.response - 1].tokens)
            if not 1 <= args.token <= L:
                raise ScenarioError("--token", f"no token {args.token} in response {args.response}; it has tokens "
                                               f"1 to {L}")
        result = run_scenario(scenario)
    except ScenarioError as e:
        print(f"{args.file}: {e}", file=sys.stderr)
        return 2
    from .views import report
    if args.command == "steps":
        i, t = args.response - 1, args.token - 1
        print(json.dumps(report.steps_json(result, i, t), indent=2, ensure_ascii=False) if args.json
              else report.steps_text(result, i, t))
    else:
        print(json.dumps(report.to_json(result), indent=2, ensure_ascii=False) if args.json
              else report.to_text(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
