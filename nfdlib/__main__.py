"""Command line: ``python -m nfdlib list | run NAME --set key=value ... [--json PATH] | claims``."""
from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

from .params import ParamError


def parse_value(text: str):
    """A ``--set`` value: JSON, else a Python literal, else the plain string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_settings(items: list[str]) -> dict:
    settings = {}
    for item in items:
        if "=" not in item:
            raise ParamError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        settings[key.strip()] = parse_value(value)
    return settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nfdlib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="experiments with one-line descriptions")
    run = sub.add_parser("run", help="run one experiment")
    run.add_argument("name")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    run.add_argument("--json", type=Path, help="write the result as JSON here")
    run.add_argument("--results", type=Path, help="results folder (default $NFD_RESULTS or ./results)")
    claims = sub.add_parser("claims", help="table of claim verdicts: the book's ledger, or "
                                           "the results stored under --results")
    claims.add_argument("--results", type=Path)
    args = parser.parse_args(argv)

    from . import experiments, claims as claims_mod
    from .store import atomic_write_json
    try:
        if args.command == "list":
            for name, exp in experiments.registry().items():
                print(f"{name:24s} {exp.description}")
        elif args.command == "run":
            result = experiments.execute(args.name, root=args.results, **parse_settings(args.set))
            for c in result["claims"]:
                print(f"{c['id']}: {c['verdict']} (measured {c['measured']}, expected {c['expected']})")
            if args.json:
                atomic_write_json(args.json, result)
        elif args.command == "claims":
            if args.results:
                print(claims_mod.table(claims_mod.collect(args.results)))
            else:
                print(claims_mod.dashboard_markdown(claims_mod.collect_ledger()), end="")
    except ParamError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
