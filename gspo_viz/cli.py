"""Command line: `python -m gspo_viz explain FILE [--objective NAME] [--json]`."""
from __future__ import annotations

import argparse
import json
import sys

from .scenario import ScenarioError, load_scenario, run_scenario
from .settings import OBJECTIVES


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # usage errors: one line, exit 2
        self.exit(2, f"{self.prog}: {message}\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m gspo_viz", description="Check a GRPO/GSPO/... scenario by hand.")
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("explain", help="per-token table, sequence ratios, advantages and loss of a scenario file")
    ex.add_argument("file", help="scenario JSON file (see examples/)")
    ex.add_argument("--objective", help=f"override the file's objective: {', '.join(OBJECTIVES)}")
    ex.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)

    if args.objective is not None and args.objective not in OBJECTIVES:
        print(f"{args.file}: objective: unknown objective {args.objective!r}; valid: {', '.join(OBJECTIVES)}",
              file=sys.stderr)
        return 2
    try:
        result = run_scenario(load_scenario(args.file, args.objective))
    except ScenarioError as e:
        print(f"{args.file}: {e}", file=sys.stderr)
        return 2
    if args.json:
        from .report import to_json
        print(json.dumps(to_json(result), indent=2, ensure_ascii=False))
    else:
        from .report import to_text
        print(to_text(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
