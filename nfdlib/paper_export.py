"""Compact paper-scale results kept in the repository (``book/_paper``).

A finished paper-profile run that goes to the ledger (:func:`nfdlib.claims.belongs_in_ledger`)
also writes ``book/_paper/<experiment>.<key>.json``, ``key`` being its ledger file's
(:func:`nfdlib.claims.ledger_key`): the part of its data that the experiment's
``plot(data, params, path)`` reads (the top-level entries it touches, found by drawing the
figure once), unrounded (a JSON float reads back as the same double), the parameters and the
setting, the provenance (date, code fingerprint, git revision, nfdlib version, backend,
device) and the run's cost (:func:`nfdlib.store.run_cost`). Plain JSON: nothing is unpickled.
A re-export of the same stored run writes the same bytes. ``nfd export-paper NAME`` makes
it again from a stored run, without computing anything.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

from .claims import ledger_dir, ledger_key, setting_of
from .store import atomic_write_bytes, results_root, run_cost, to_jsonable

FORMAT = 1
PROVENANCE_KEYS = ("date", "code", "git", "nfdlib", "backend", "device", "machine", "python", "numpy")
REQUIRED = ("format", "experiment", "setting", "params", "provenance", "run", "data")


class PaperResultError(ValueError):
    """A compact paper result that cannot be read (the message names the file)."""


def paper_dir() -> Path:
    """``$NFD_PAPER``, else ``_paper`` beside the ledger folder (``book/_paper``)."""
    return Path(os.environ.get("NFD_PAPER", ledger_dir().parent / "_paper"))


class _Reads(dict):
    """A dict that notes which of its keys are read (all of them when it is iterated)."""

    def __init__(self, data: dict):
        super().__init__(data)
        self.read: set[str] = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)

    def __contains__(self, key):
        self.read.add(key)
        return super().__contains__(key)

    def __iter__(self):
        self.read.update(self.keys())
        return super().__iter__()

    def items(self):
        self.read.update(self.keys())
        return super().items()

    def values(self):
        self.read.update(self.keys())
        return super().values()


def plotted_data(plot: Callable[..., Any], data: dict, params: Any) -> dict:
    """The entries of ``data`` that ``plot(data, params, None)`` reads (it draws the figure
    once, saving nothing, and closes it)."""
    import matplotlib.pyplot as plt
    reads = _Reads(data)
    fig = plot(reads, params, None)
    plt.close(fig if fig is not None else "all")
    return {k: data[k] for k in data if k in reads.read}


def export(result: dict, plot: Callable[..., Any] | None, params: Any) -> Path | None:
    """Write the compact form of a finished paper-profile ``result`` (its ``folder`` holds
    the stored run) for an experiment with a ``plot``; ``params``: its Params. Replaces an
    export of the same experiment and setting made from other parameters (as the ledger does).
    Returns the file, or None for another profile or an experiment without a figure."""
    if result.get("params", {}).get("profile") != "paper" or plot is None:
        return None
    folder = paper_dir()
    setting = setting_of(result)
    prov = result.get("provenance", {})
    key = ledger_key(result["params"])
    doc = {"format": FORMAT, "experiment": result["experiment"], "profile": "paper", "setting": setting,
           "key": key, "params": result["params"], "overrides": result.get("overrides", {}),
           "provenance": {k: prov[k] for k in PROVENANCE_KEYS if k in prov},
           "run": run_cost(Path(result["folder"]), result),
           "data": plotted_data(plot, result["data"], params)}
    path = folder / f"{result['experiment']}.{key}.json"
    for other in folder.glob(f"{result['experiment']}.*.json"):
        if other != path and load(other)["setting"] == setting:
            other.unlink()
    text = json.dumps(to_jsonable(doc), indent=1).encode()
    if not path.exists() or path.read_bytes() != text:
        atomic_write_bytes(path, text)
    return path


def load(path: Path) -> dict:
    """A compact paper result; PaperResultError naming ``path`` when it cannot be read."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PaperResultError(f"paper result {path} is unreadable ({type(err).__name__}: {err}); "
                               f"make it again with `nfd export-paper {path.name.split('.')[0]}`") from None
    missing = [k for k in REQUIRED if k not in doc] if isinstance(doc, dict) else list(REQUIRED)
    if missing or doc["format"] != FORMAT:
        what = f"lacks {', '.join(missing)}" if missing else f"has format {doc['format']!r}, not {FORMAT}"
        raise PaperResultError(f"paper result {path} {what}; make it again with "
                               f"`nfd export-paper {path.name.split('.')[0]}`")
    return doc


def plot_params(params_class: type, params: dict, source: str) -> Any:
    """The Params that a stored paper run's ``plot`` takes, built from its parameters with
    today's class: parameters it no longer has are left out, and the memory the profile
    declares is not checked (nothing is computed); a ParamError names ``source``."""
    from .params import ParamError, declared_memory
    known = set(params_class.names())
    try:
        with declared_memory():
            return params_class.build(**{k: v for k, v in params.items() if k in known})
    except ParamError as err:
        raise ParamError(f"{source}: its parameters no longer build ({err})") from None


def stored(experiment: str) -> list[dict]:
    """The compact paper results of ``experiment``, by setting (each with its ``path``)."""
    docs = [dict(load(p), path=str(p)) for p in sorted(paper_dir().glob(f"{experiment}.*.json"))]
    return sorted(docs, key=lambda d: d["setting"])


def stored_runs(experiment: str, root: Path | None = None) -> list[dict]:
    """The finished paper-profile runs of ``experiment`` stored under the results folder,
    whatever code made them (a run is found by its parameters, not by the code's
    fingerprint), newest first; each result with its ``folder``."""
    found = []
    for path in sorted((Path(root or results_root()) / experiment).glob("*/result.json")):
        try:
            result = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(result, dict) and result.get("params", {}).get("profile") == "paper":
            found.append(dict(result, folder=str(path.parent)))
    return sorted(found, key=lambda r: r.get("provenance", {}).get("date", ""), reverse=True)
