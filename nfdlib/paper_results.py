"""Paper-scale results in the book: :func:`show` draws an experiment's figure from its compact
paper result (:mod:`nfdlib.paper_export`, ``book/_paper``) with a caption of provenance, or
says in one line that none is stored yet; :func:`time_table` is the README's table of
measured times per chapter (``python -m nfdlib.paper_results`` prints it).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from . import claims as claims_mod
from . import costs as costs_mod
from . import experiments, paper_export
from .params import ParamError
from .reproduce_plan import book_runs


def caption(doc: dict) -> str:
    """One line of provenance: the setting, the date, the compute time, the peak memory, the
    points, the code fingerprint and git revision, the file."""
    run, prov = doc["run"], doc["provenance"]
    peak = "peak memory not measured" if run.get("peak_gib") is None else f"peak memory {run['peak_gib']:.2f} GiB"
    workers = f" on {run['workers']} worker(s)" if run.get("workers") else ""
    fallback = "" if run.get("source", "").startswith("stored cost") else f" ({run.get('source')})"
    return (f"Paper scale ({doc['setting'] or 'the profile defaults'}): run {prov.get('date', '?')[:10]}, "
            f"{claims_mod.duration(run['seconds'])} of compute{workers}{fallback}, {peak}, "
            f"{run['points']} point{'' if run['points'] == 1 else 's'}; code {prov.get('code', '?')}, git {prov.get('git', '?')}; "
            f"book/_paper/{doc['experiment']}.{doc['key']}.json")


def verdicts(doc: dict) -> list[str]:
    """The claims that the ledger records for this compact result's run (its entry
    ``<experiment>.paper.<key>.json``), one line each: the claim, its setting, the verdict
    with its scale, and the measured figures that decided it."""
    path = claims_mod.ledger_path(doc["experiment"], "paper", doc["key"])
    if not path.exists():
        return [f"no ledger entry {path.name} for this run: its verdicts are not recorded"]
    entry = json.loads(path.read_text())
    lines = []
    for rec in entry["claims"]:
        setting = claims_mod.row_setting(dict(rec, setting=entry.get("setting", ""),
                                              record_setting=rec.get("setting", "")))
        setting = f" ({setting})" if setting else ""
        lines.append(f"{rec['id']}{setting}: {rec['verdict']} at paper scale; measured "
                     f"{claims_mod.measured_text(rec['measured'])}")
    return lines


def estimate(experiment: str) -> str:
    """The planned cost of the book's paper-profile runs of ``experiment`` (``nfd reproduce
    --dry-run``'s estimate: measured where a paper run was, else the book measurement
    extrapolated by :data:`nfdlib.costs.MODEL`), in words."""
    from .reproduce import first_grid, plan_jobs
    try:
        jobs = plan_jobs("paper", [experiment], create=False)
    except ParamError:
        return "no estimate: the paper profile has no run of it"
    costs = costs_mod.load()
    ests = [costs_mod.estimate("paper", j.run.label, j.declared, first_grid(j), costs) for j in jobs]
    if any(e.core_seconds is None for e in ests):
        return "no estimate: its book run was never measured"
    seconds = sum(e.core_seconds for e in ests)
    peak = max(e.peak_bytes for e in ests) / 2**30
    how = "measured" if all(e.source == "measured" for e in ests) else "extrapolated from the book profile"
    return f"est. {claims_mod.duration(seconds)} of compute, {peak:.1f} GiB at its largest point, {how}"


def show(experiment: str) -> None:
    """Draw ``experiment``'s figure (its own ``plot``) from each of its stored compact paper
    results, each followed by its caption (:func:`caption`) and the verdicts the ledger
    records for that run (:func:`verdicts`); where none is stored, print one
    line saying so, with the command that makes one and its estimated cost. A damaged file
    is a PaperResultError naming it."""
    import matplotlib.pyplot as plt
    docs = paper_export.stored(experiment)
    if not docs:
        print(f"No paper-scale run of {experiment} stored yet; `nfd run {experiment} --set "
              f"profile=paper` makes one ({estimate(experiment)}).")
        return
    exp = experiments.get(experiment)
    for doc in docs:
        params = paper_export.plot_params(exp.Params, doc["params"], doc["path"])
        exp.plot(doc["data"], params, None)
        plt.show()
        print(caption(doc))
        print("\n".join(["Verdicts of this run:", *(f"  {line}" for line in verdicts(doc))]))


def paper_cost(run: dict) -> str:
    """A paper run's cost for the README: time and peak memory, and what the time is where
    no cost was stored: "18.5 min (wall time of its last session; memory not measured)"."""
    notes = [] if run.get("source", "").startswith("stored cost") else ["wall time of its last session"]
    notes += ["memory not measured"] if run.get("peak_gib") is None else []
    return claims_mod.cost_text(run) + (f" ({'; '.join(notes)})" if notes else "")


def time_table(ledger: list[dict] | None = None, costs: dict | None = None) -> str:
    """The README's Markdown table of measured times, one row per chapter: ``book`` from
    ``nfdlib/costs.json`` (``nfd reproduce --profile book --save-costs``: compute seconds
    summed over the chapter's runs, the largest point's peak memory), ``paper`` from the
    ledger's ``run`` entries (one per paper record, with its setting where it has one);
    "not measured" / "not yet run" where there is nothing."""
    if ledger is None:
        ledger = [json.loads(p.read_text()) for p in sorted(Path(claims_mod.ledger_dir()).glob("*.paper.*.json"))]
    costs = costs_mod.load() if costs is None else costs
    book = costs.get("profiles", {}).get("book", {})
    chapters: dict[str, list] = {}
    for run in book_runs("book"):
        chapters.setdefault(run.chapter, []).append(run)
    rows = ["| chapter | `book` (compute, largest point) | `paper` |", "|---|---|---|"]
    for chapter, runs in chapters.items():
        measured = [book[r.label] for r in runs if r.label in book]
        if len(measured) == len(runs):
            seconds = sum(e["core_seconds"] for e in measured)
            peak = max(e["peak_bytes"] for e in measured) / 2**30
            book_text = f"{claims_mod.duration(seconds)}, {peak:.2f} GiB ({min(e['date'] for e in measured)})"
        else:
            book_text = "not measured"
        names = {r.experiment for r in runs}
        papers = [e for e in ledger if e["experiment"] in names]
        parts = []
        for e in sorted(papers, key=lambda e: (e["experiment"], e.get("setting", ""))):
            what = e["experiment"] + (f" ({e['setting']})" if e.get("setting") else "")
            when = e.get("date", "")[:10]
            parts.append(f"{what}, run {when}: {paper_cost(e['run'])}" if e.get("run")
                         else f"{what}: run {when}, time not recorded")
        ids = ", ".join(cid for cid, c in claims_mod.CLAIMS.items() if c.chapter == chapter)
        rows.append(f"| {chapter} ({ids}) | {book_text} | {claims_mod.cell('; '.join(parts) or 'not yet run')} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(time_table())
