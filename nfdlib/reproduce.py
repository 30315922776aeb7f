"""``nfd reproduce``: every run of the book at one profile, with one executor for all of them.

Each run (:mod:`nfdlib.reproduce_plan`) is the experiment its chapter executes, with the
chapter's grids. The experiment's ``run`` is called inside :func:`nfdlib.executor.collecting`:
its first grid that is not stored yet comes back as :class:`nfdlib.executor.PointsPending`,
those points go to the pool (:mod:`nfdlib.pools`) together with the pending points of every
other run, largest first, and each finished point is stored at once with its cost. When a
run's pending points are all stored its ``run`` is called again: it resumes from the store and
either reaches its next grid or finishes, and then its claims are checked, its result stored
and recorded in the ledger (``record=True``: these are the chapters' own runs). A run killed
half-way resumes from the store; a result already stored is not made again.

Experiments whose ``run`` is no grid (:data:`nfdlib.reproduce_plan.WHOLE_RUNS`) are one point.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from . import claims as claims_mod
from . import costs as costs_mod
from . import experiments
from .executor import PointsPending, collecting
from .measure import measured, whole_run
from .params import ParamError, declared_memory
from .reproduce_plan import WHOLE_RUNS, Run, book_runs, select
from .store import RunStore, to_jsonable

WHOLE = "_whole_run"  # the point name of a run computed as one point


@dataclass
class Job:
    """One run of the plan while it is being reproduced."""
    run: Run
    exp: Any
    params: Any
    store: RunStore
    declared: float                   # bytes the parameter check declares for the largest point
    declared_what: str = ""           # ... and for what
    pending: int = 0
    computed: dict = field(default_factory=dict)  # point → cost, this invocation
    result: dict | None = None
    first_grid: int | None = None

    @property
    def whole(self) -> bool:
        return self.run.experiment in WHOLE_RUNS


def plan_jobs(profile: str, only: list[str] | None = None, root=None, create: bool = True) -> list[Job]:
    """The jobs of a profile's runs; every ParamError (a wrong profile, an unknown --only name,
    a parameter) is raised here, before anything is computed. Memory is declared, not checked:
    :func:`check_memory` checks it against where the points will run."""
    from .params import PROFILES
    if profile not in PROFILES:
        raise ParamError(f"--profile {profile!r} is not allowed; allowed: {', '.join(PROFILES)}")
    jobs = []
    for run in select(book_runs(profile), only):
        exp = experiments.get(run.experiment)
        with declared_memory() as sink:
            params = exp.Params.build(**run.settings)
        biggest = max(sink, default=(0.0, ""))
        jobs.append(Job(run, exp, params, RunStore(run.experiment, params.to_dict(), root=root, create=create),
                        *biggest))
    return jobs


def first_grid(job: Job) -> int | None:
    """The number of points of the run's first grid (1 for a whole run), found without
    computing any: the experiment's ``run`` stops at its first grid not stored yet."""
    if job.whole:
        return 1
    grids: list[int] = []
    try:
        with collecting() as grids:
            job.exp.run(job.params, job.store)
    except PointsPending:  # the grids met so far are in ``grids``
        pass
    return grids[0] if grids else None


def check_memory(jobs: list[Job], estimates: dict[str, costs_mod.Estimate], pool) -> None:
    """A ParamError (one line) when the plan's largest point does not fit where it would run."""
    limit, where = pool.memory_limit()
    label, est = max(estimates.items(), key=lambda kv: kv[1].peak_bytes)
    what = {job.run.label: job.declared_what for job in jobs}.get(label)
    if est.peak_bytes > limit:
        raise ParamError(f"the plan's largest point ({label}{': ' + what if what else ''}) needs {est.peak_bytes / 2**30:.1f} GiB, "
                         f"more than the {limit / 2**30:.1f} GiB of {where}; run it on workers with more "
                         "memory (--executor tcp://host:port, workers started with --resources "
                         "MEMORY=<bytes>), or choose a smaller profile or --only")


def _gib(x: float | None) -> str:
    return "?" if x is None else f"{x / 2**30:.2f}"


def format_plan(profile: str, jobs: list[Job], estimates: dict[str, costs_mod.Estimate], pool) -> str:
    """The dry run's table: run, experiment, points, stored, core-hours, peak memory, source."""
    lines = [f"plan: profile {profile}, {len(jobs)} runs, executor {pool.describe()}",
             f"{'run':11s} {'experiment':22s} {'points':>7s} {'stored':>6s} {'core-h':>8s} "
             f"{'peak GiB':>8s}  estimate"]
    total_s, unknown = 0.0, []
    for job in jobs:
        est = estimates[job.run.label]
        pts = "1" if job.whole else "?" if est.points is None else {"measured": f"{est.points}", "extrapolated": f"~{est.points}"}.get(est.source, f"{est.points}+")
        stored = len(job.store.point_names()) if job.store.folder.exists() else 0
        ch = "?" if est.core_seconds is None else f"{est.core_seconds / 3600:.3f}"
        lines.append(f"{job.run.label:11s} {job.run.experiment:22s} {pts:>7s} {stored:>6d} {ch:>8s} "
                     f"{_gib(est.peak_bytes):>8s}  {est.source}")
        if est.core_seconds is None:
            unknown.append(job.run.label)
        else:
            total_s += est.core_seconds
    lines.append(f"total: {total_s / 3600:.2f} core-hours"
                 + (f" (not counting {', '.join(unknown)}: not measured)" if unknown else "")
                 + f"; about {total_s / 3600 / max(pool.workers, 1):.2f} h on {pool.workers} worker(s)")
    if any(e.source == "extrapolated" for e in estimates.values()):
        lines.append(f"model: {costs_mod.MODEL}")
    lines.append("peak GiB: the larger of the measured peak and the memory the parameters declare")
    return "\n".join(lines)


class Reproduction:
    """Runs the jobs on a pool: submits the pending points of all runs, stores each finished
    point and its cost, resumes a run whose points are all stored."""

    def __init__(self, jobs: list[Job], pool, profile: str, costs: dict, progress: bool = True):
        self.jobs, self.pool, self.profile, self.costs = jobs, pool, profile, costs
        self.bar = tqdm(total=0, desc="points", unit="pt", disable=not progress, file=sys.stderr)
        self.left_s = 0.0  # estimated seconds of the submitted points not yet back
        self.unmeasured = 0  # submitted points without a measured cost

    def _submit(self, job: Job, name: str, fn, kwargs: dict) -> None:
        known = costs_mod.point_cost(self.profile, job.run.label, name, self.costs)
        seconds = known[0] if known else 1.0
        self.unmeasured += not known
        memory = max(known[1] * 1.5, 64 << 20) if known else (job.declared or costs_mod.DEFAULT_BYTES)
        self.pool.submit(measured, (fn, kwargs), size=seconds, memory=memory, tag=(job, name, seconds))
        self.left_s += seconds
        job.pending += 1
        self.bar.total += 1

    def advance(self, job: Job) -> None:
        """Call the run again: submit its next pending grid, or finish it."""
        stored = job.store.load_result()
        if stored is not None:
            job.result = stored
            claims_mod.write_ledger(stored) if claims_mod.belongs_in_ledger(stored, True) else None
            return
        if job.whole:
            self._submit(job, WHOLE, whole_run, {"experiment": job.run.experiment,
                                                 "params": job.params.to_dict()})
            self.bar.refresh()
            return
        t0 = time.perf_counter()
        try:
            with collecting() as grids:
                data = job.exp.run(job.params, job.store)
        except PointsPending as pend:
            job.first_grid = job.first_grid or grids[0]
            for name, kwargs in sorted(pend.todo, key=lambda t: -self._size(job, t[0])):
                self._submit(job, name, pend.compute, kwargs)
            self.bar.refresh()
            return
        job.first_grid = job.first_grid or (grids[0] if grids else None)
        self.finish(job, data, time.perf_counter() - t0)

    def _size(self, job: Job, name: str) -> float:
        known = costs_mod.point_cost(self.profile, job.run.label, name, self.costs)
        return known[0] if known else 1.0

    def finish(self, job: Job, data: dict, seconds: float) -> None:
        spent = sum(c["seconds"] for c in point_costs(job.store).values()) + seconds
        job.result = experiments.complete(job.exp, job.params, job.store, data, spent, record=True)

    def run(self) -> None:
        try:
            for job in self.jobs:
                self.advance(job)
            while self.pool.busy():
                (job, name, est), (out, cost) = self.pool.next_done()
                self.left_s -= est
                if name != WHOLE:
                    job.store.save_point(name, to_jsonable(out))  # first the record: nothing lost
                job.store.save_cost(name, cost)
                job.computed[name] = cost
                job.pending -= 1
                self.bar.update(1)
                left = "" if self.unmeasured else \
                    f"; {max(self.left_s, 0) / max(self.pool.workers, 1) / 60:.1f} min left by measured costs"
                self.bar.set_postfix_str(job.run.label + left, refresh=False)
                if name == WHOLE:
                    self.finish(job, out, 0.0)
                elif job.pending == 0:
                    self.advance(job)
        finally:
            self.bar.close()
            self.pool.close()


def point_costs(store: RunStore) -> dict[str, dict]:
    """The stored costs of a run's points (those computed by a reproduce run)."""
    found = {name: store.load_cost(name) for name in store.point_names() + [WHOLE]}
    return {name: c for name, c in found.items() if c is not None}


def store_entry(job: Job, store: RunStore) -> dict | None:
    """The costs.json entry of ``job``'s run as stored in ``store``: points, core-seconds, the
    largest point's peak, per-point costs (None when no point cost is stored)."""
    per = point_costs(store)
    if not per:
        return None
    return {
        "experiment": job.run.experiment, "points": len(per),
        "first_grid": job.first_grid or first_grid(job),
        "core_seconds": round(sum(c["seconds"] for c in per.values()), 2),
        "peak_bytes": max(c["peak_bytes"] for c in per.values()),
        "declared_bytes": job.declared,
        "per_point": {name: [c["seconds"], c["peak_bytes"]] for name, c in sorted(per.items())},
    }


def measured_entries(jobs: list[Job]) -> dict[str, dict]:
    """costs.json entries of finished jobs (:func:`store_entry`)."""
    found = {job.run.label: store_entry(job, job.store) for job in jobs if job.result is not None}
    return {label: entry for label, entry in found.items() if entry is not None}


def save_paper_costs(result: dict) -> list[str]:
    """Write to costs.json, under the ``paper`` profile, the point costs of the finished paper
    run ``result`` stored in ``result["folder"]`` (whatever code made it), for each run of the
    paper plan with its parameters, dated by the run; ``nfd reproduce --dry-run`` then
    estimates that run from this measurement rather than by :data:`nfdlib.costs.MODEL`.
    Returns the labels written (none for a run whose points store no cost)."""
    jobs = [job for job in plan_jobs("paper", [result["experiment"]], create=False)
            if job.store.params == result["params"]]
    date = result.get("provenance", {}).get("date", "")[:10]
    store = RunStore.at(result["folder"])
    entries = {job.run.label: entry for job in jobs if (entry := store_entry(job, store)) is not None}
    costs_mod.save("paper", {label: dict(entry, date=date) for label, entry in entries.items()})
    return sorted(entries)


def _short(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def claims_table(jobs: list[Job]) -> str:
    """The final table: one row per claim record of every run: claim, verdict, the deciding
    number (the headline of the measured figure), the run and its compute time."""
    rows = [f"{'claim':14s} {'verdict':18s} {'run':11s} {'time':>8s}  deciding number"]
    for job in jobs:
        if job.result is None:
            continue
        seconds = job.result.get("provenance", {}).get("seconds") or 0.0
        for rec in job.result["claims"]:
            rows.append(f"{rec['id']:14s} {rec['verdict']:18s} {job.run.label:11s} {seconds:7.1f}s  "
                        f"{_short(claims_mod.headline(rec['measured']))}")
    return "\n".join(rows)


def main(profile: str, only: list[str] | None, executor: str, dry_run: bool, root=None,
         save_costs: bool = False, progress: bool = True, out=print) -> int:
    """The command: plan (ParamErrors first), dry run or reproduction, the claims table."""
    from .pools import make_pool
    t0 = time.perf_counter()
    jobs = plan_jobs(profile, only, root=root, create=not dry_run)
    pool = make_pool(executor)
    costs = costs_mod.load()
    try:
        estimates = {job.run.label: costs_mod.estimate(profile, job.run.label, job.declared,
                                                       first_grid(job) if dry_run else None, costs)
                     for job in jobs}
        if dry_run:
            out(format_plan(profile, jobs, estimates, pool))
        check_memory(jobs, estimates, pool)
    except BaseException:
        pool.close()
        raise
    if dry_run:
        pool.close()
        return 0
    Reproduction(jobs, pool, profile, costs, progress=progress).run()
    out(claims_table(jobs))
    found = {rec["id"] for job in jobs for rec in (job.result or {}).get("claims", [])}
    missing = [cid for cid in claims_mod.CLAIMS if cid not in found]
    if only is None and missing:
        out(f"claims without a record: {', '.join(missing)}")
    if save_costs:
        costs_mod.save(profile, measured_entries(jobs))
        out(f"measured costs written to {costs_mod.COSTS_PATH}")
    ledger = "the ledger and its dashboard (" + str(claims_mod.ledger_dir()) + ")" \
        if profile in claims_mod.LEDGER_PROFILES else "the results folder only (smoke runs stay out of the ledger)"
    out(f"reproduced {len(jobs)} runs of the {profile} profile in {time.perf_counter() - t0:.0f} s; "
        f"claims recorded in {ledger}")
    return 0
