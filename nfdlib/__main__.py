"""Command line of nfdlib (``nfd``, the same as ``python -m nfdlib``): list the experiments,
run one with ``--set key=value`` overrides, reproduce the whole book at one profile, export a
stored paper-scale run to the book, print the claims dashboard."""
from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

from .params import PROFILE_DOC, ParamError

EXECUTOR_HELP = ("serial (default), processes, dask-local or tcp://host:port (a Dask scheduler; "
                 "workers started with --resources MEMORY=<bytes> get points by their memory)")
SET_DOC = "a value is read as JSON, else as a Python literal, else as a plain string"


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


def overview() -> str:
    """The experiments and profiles, for ``nfd --help``."""
    from . import experiments
    lines = ["experiments (nfd run NAME --help lists the parameters of one):"]
    lines += [f"  {name:24s} {exp.description}" for name, exp in experiments.registry().items()]
    lines += ["", "profiles (--set profile=NAME):"]
    lines += [f"  {name:8s} {doc}" for name, doc in PROFILE_DOC.items()]
    return "\n".join(lines)


def experiment_help(name: str, prog: str = "nfd") -> str:
    """One experiment's description and parameters, for ``nfd run NAME --help``."""
    from . import experiments
    from .executor import EXECUTOR_DOC
    exp = experiments.get(name)
    params = exp.Params.describe()
    lines = [f"usage: {prog} run {name} [--set KEY=VALUE ...] [--json PATH] [--results DIR] [--record]",
             "", f"{name}: {exp.description}", "",
             f"parameters (--set KEY=VALUE; {SET_DOC}; a profile's own default in parentheses):"]
    lines += [f"  {text}" for text in params]
    if "executor" in exp.Params.names():
        lines += ["", f"executor: {EXECUTOR_DOC}"]
    return "\n".join(lines)


def build_parser(prog: str) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="experiments with one-line descriptions")
    run = sub.add_parser("run", add_help=False, help="run one experiment (nfd run NAME --help: its parameters)")
    run.add_argument("-h", "--help", action="store_true", help="the experiment's parameters")
    run.add_argument("name", nargs="?", help="the experiment (see list)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=SET_DOC)
    run.add_argument("--json", type=Path, help="write the result as JSON here")
    run.add_argument("--results", type=Path, help="results folder (default $NFD_RESULTS or ./results)")
    run.add_argument("--record", action="store_true",
                     help="write the claims to the book's ledger although parameters differ from the "
                          "profile's defaults (a book or paper profile only; a run that keeps them is "
                          "recorded anyway)")
    rep = sub.add_parser("reproduce", help="every run of the book at one profile, on one executor "
                                           "(resumable; --dry-run: the plan and its cost)")
    rep.add_argument("--profile", default="book", help="smoke, book (default) or paper")
    rep.add_argument("--only", nargs="+", metavar="NAME",
                     help="only these runs (labels from --dry-run, experiment or chapter names)")
    rep.add_argument("--executor", default="serial", help=EXECUTOR_HELP)
    rep.add_argument("--dry-run", action="store_true",
                     help="print the plan (points, core-hours, peak memory per point) and stop")
    rep.add_argument("--results", type=Path, help="results folder (default $NFD_RESULTS or ./results)")
    rep.add_argument("--save-costs", action="store_true",
                     help="write the measured costs of the runs to nfdlib/costs.json")
    rep.add_argument("--no-progress", action="store_true", help="no progress bar")
    exp_paper = sub.add_parser("export-paper", help="write the compact result of a stored paper-profile "
                                                    "run to book/_paper, its cost to the ledger "
                                                    "and its points' costs to nfdlib/costs.json "
                                                    "(computes nothing)")
    exp_paper.add_argument("name", help="the experiment (see list)")
    exp_paper.add_argument("--results", type=Path, help="results folder (default $NFD_RESULTS or ./results)")
    exp_paper.add_argument("--record", action="store_true",
                           help="also runs with parameters set away from the paper profile's defaults")
    claims = sub.add_parser("claims", help="table of claim verdicts: the book's ledger, or "
                                           "the results stored under --results")
    claims.add_argument("--results", type=Path)
    return parser, run


def export_paper(name: str, root: Path | None, record: bool) -> int:
    """``nfd export-paper NAME``: for each setting, the newest finished paper-profile run of
    ``name`` stored under the results folder (whatever code made it) goes to the ledger, with
    its cost, and to ``book/_paper`` (:func:`nfdlib.experiments.record_run`); its points' costs
    go to ``nfdlib/costs.json`` for the dry run's estimates (:func:`nfdlib.reproduce.save_paper_costs`)."""
    from . import claims as claims_mod, costs, experiments, paper_export, reproduce
    exp = experiments.get(name)
    runs = [r for r in paper_export.stored_runs(name, root) if claims_mod.belongs_in_ledger(r, record or None)]
    if not runs:
        print(f"error: no finished paper-profile run of {name} that belongs in the ledger is stored "
              f"under {root or 'the results folder'}; `nfd run {name} --set profile=paper` makes one",
              file=sys.stderr)
        return 1
    done: set[str] = set()
    for result in runs:  # newest first: one run per setting
        setting = claims_mod.setting_of(result)
        if setting in done:
            continue
        done.add(setting)
        params = paper_export.plot_params(exp.Params, result["params"], result["folder"])
        experiments.record_run(exp, params, result, record=True)
        doc = paper_export.load(paper_export.paper_dir() / f"{name}.{claims_mod.ledger_key(result['params'])}.json") \
            if exp.plot else None
        labels = reproduce.save_paper_costs(result)
        print(f"{name} ({setting or 'the profile defaults'}), run {result['provenance'].get('date', '?')}: "
              + (f"{claims_mod.cost_text(doc['run'])}; written to {paper_export.paper_dir()}" if doc
                 else "ledger only (no figure)")
              + (f"; its point costs to {costs.COSTS_PATH} ({', '.join(labels)})" if labels else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    prog = "nfd" if Path(sys.argv[0]).name == "nfd" else "python -m nfdlib"
    parser, run_parser = build_parser(prog)
    if not argv or argv[0] in ("-h", "--help"):
        parser.epilog = overview()
    args = parser.parse_args(argv)

    from . import experiments, claims as claims_mod
    from .store import atomic_write_json
    try:
        if args.command == "list":
            for name, exp in experiments.registry().items():
                print(f"{name:24s} {exp.description}")
        elif args.command == "run":
            if args.name is None:
                run_parser.print_help()
                return 0 if args.help else 2
            if args.help:
                print(experiment_help(args.name, prog))
                return 0
            result = experiments.execute(args.name, root=args.results, record=args.record or None,
                                         **parse_settings(args.set))
            for c in result["claims"]:
                print(f"{c['id']}: {c['verdict']} (measured {c['measured']}, expected {c['expected']})")
            if args.json:
                atomic_write_json(args.json, result)
        elif args.command == "reproduce":
            from . import reproduce
            return reproduce.main(args.profile, args.only, args.executor, args.dry_run, root=args.results,
                                  save_costs=args.save_costs, progress=not args.no_progress)
        elif args.command == "export-paper":
            return export_paper(args.name, args.results, args.record)
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
