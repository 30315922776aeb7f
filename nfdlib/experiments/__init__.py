"""Experiments: one module per claim or figure.

Each module of this package defines ``EXPERIMENT = Experiment(...)``: a name (the CLI's),
a one-line description, its validated ``Params`` class, ``run(params, store) -> data``,
``check(data, params) -> [claim records]`` and optionally ``plot(data, params, path)``.
Modules are discovered automatically; :func:`execute` runs one end to end.
"""
from __future__ import annotations

import importlib
import os
import pkgutil
import time
from dataclasses import dataclass
from typing import Any, Callable

from .. import claims as claims_mod
from .. import paper_export
from ..params import ParamError, Params  # noqa: F401  (Params: the type of Experiment.Params)
from ..store import RunStore, provenance, to_jsonable


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    Params: type
    run: Callable[[Params, RunStore], dict]
    check: Callable[[dict, Params], list]
    plot: Callable[..., Any] | None = None


def save_figure(fig, path, name: str, dpi: int = 120) -> None:
    """Save ``fig`` as ``<path>/<name>.pdf`` and ``.png`` (nothing when ``path`` is None)."""
    if path is None:
        return
    from pathlib import Path
    Path(path).mkdir(parents=True, exist_ok=True)
    for ext in ("pdf", "png"):
        fig.savefig(Path(path) / f"{name}.{ext}", dpi=dpi)


def registry() -> dict[str, Experiment]:
    """All experiments of this package, by name."""
    found = {}
    for mod in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{mod.name}")
        exp = getattr(module, "EXPERIMENT", None)
        if isinstance(exp, Experiment):
            found[exp.name] = exp
    return dict(sorted(found.items()))


def get(name: str) -> Experiment:
    exps = registry()
    if name not in exps:
        raise ParamError(f"unknown experiment {name!r}; available: {', '.join(exps)}")
    return exps[name]


def execute(name: str, root=None, record: bool | None = None, **settings: Any) -> dict:
    """Validate ``settings``, run the experiment (resuming stored points), check its claims
    and store the result; return ``{"experiment", "params", "overrides", "claims", "data",
    "provenance", "folder"}`` (``overrides``: the parameters set away from the profile's
    defaults; ``folder``: where the run's points and result are stored). A result already
    stored for the same parameters and the same code (by ``nfd reproduce``, say) is returned
    as it is, unless one of its points is damaged. The claims also go to the book's ledger when
    the run kept a ledger profile's defaults, or with ``record=True``
    (:func:`nfdlib.claims.belongs_in_ledger`); any other run is stored under the results
    folder only."""
    exp = get(name)
    params = exp.Params.build(**settings)
    store = RunStore(name, params.to_dict(), root=root)
    stored = store.load_result()
    if stored is not None:
        stored["folder"] = str(store.folder)
        record_run(exp, params, stored, record)
        return stored
    data, seconds = measured_session(exp, params, store)
    return complete(exp, params, store, data, seconds, record)


def peak_resident_bytes() -> int | None:
    """The peak resident memory of this process or of its largest finished child process
    (the workers of ``executor="processes"``), from ``getrusage``; None where unavailable.
    In a fresh ``nfd run`` process it is the run's peak plus the interpreter's own; in a
    notebook kernel that ran other work before, an upper bound."""
    try:
        import resource
    except ImportError:
        return None
    kib = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
              resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return int(kib) * 1024


def measured_session(exp: Experiment, params: Params, store: RunStore) -> tuple[dict, float]:
    """``(exp.run(params, store), wall seconds)``; the session's cost (seconds, peak resident
    memory, points computed, executor and its workers where known) is stored in the run's
    folder even when the run is interrupted, so that :func:`nfdlib.store.run_cost` sums every
    session of a run that was killed and resumed."""
    executor = getattr(params, "executor", "serial")
    before = len(store.point_names())
    t0 = time.perf_counter()
    try:
        data = exp.run(params, store)
    finally:
        seconds = time.perf_counter() - t0
        workers = {"serial": 1, "processes": os.cpu_count()}.get(executor)
        local = executor in ("serial", "processes")  # Dask workers are no children of ours
        store.save_session({"seconds": round(seconds, 2), "peak_bytes": peak_resident_bytes() if local else None,
                            "points": len(store.point_names()) - before, "executor": executor,
                            **({"workers": workers} if workers else {})})
    return data, seconds


def complete(exp: Experiment, params: Params, store: RunStore, data: dict, seconds: float,
             record: bool | None = None) -> dict:
    """Check the claims of a finished run's ``data``, store the result and record it in the
    ledger (and a paper run's compact result in ``book/_paper``) where it belongs (the end of
    :func:`execute`, which ``nfd reproduce`` shares)."""
    claims = exp.check(data, params)
    result = to_jsonable({
        "experiment": exp.name, "params": params.to_dict(), "overrides": params.overrides(),
        "claims": claims, "data": data,
        "provenance": provenance(backend=getattr(params, "backend", None),
                                 device=getattr(params, "device", None), seconds=seconds),
        "folder": str(store.folder),
    })
    store.save_result(result)
    record_run(exp, params, result, record)
    return result


def record_run(exp: Experiment, params: Params, result: dict, record: bool | None = None) -> None:
    """Where a finished run belongs in the ledger (:func:`nfdlib.claims.belongs_in_ledger`),
    write its claims there and, for a paper-profile run with a figure, its compact result to
    ``book/_paper`` (:func:`nfdlib.paper_export.export`)."""
    if claims_mod.belongs_in_ledger(result, record):
        claims_mod.write_ledger(result)
        paper_export.export(result, exp.plot, params)
