"""Experiments: one module per claim or figure.

Each module of this package defines ``EXPERIMENT = Experiment(...)``: a name (the CLI's),
a one-line description, its validated ``Params`` class, ``run(params, store) -> data``,
``check(data, params) -> [claim records]`` and optionally ``plot(data, params, path)``.
Modules are discovered automatically; :func:`execute` runs one end to end.
"""
from __future__ import annotations

import importlib
import pkgutil
import time
from dataclasses import dataclass
from typing import Any, Callable

from .. import claims as claims_mod
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
        if claims_mod.belongs_in_ledger(stored, record):
            claims_mod.write_ledger(stored)
        return stored
    t0 = time.perf_counter()
    data = exp.run(params, store)
    return complete(exp, params, store, data, time.perf_counter() - t0, record)


def complete(exp: Experiment, params: Params, store: RunStore, data: dict, seconds: float,
             record: bool | None = None) -> dict:
    """Check the claims of a finished run's ``data``, store the result and record it in the
    ledger where it belongs (the end of :func:`execute`, which ``nfd reproduce`` shares)."""
    claims = exp.check(data, params)
    result = to_jsonable({
        "experiment": exp.name, "params": params.to_dict(), "overrides": params.overrides(),
        "claims": claims, "data": data,
        "provenance": provenance(backend=getattr(params, "backend", None),
                                 device=getattr(params, "device", None), seconds=seconds),
        "folder": str(store.folder),
    })
    store.save_result(result)
    if claims_mod.belongs_in_ledger(result, record):
        claims_mod.write_ledger(result)
    return result
