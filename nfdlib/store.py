"""Results on disk: one folder per (experiment, parameter set), one file per finished grid
point, written atomically, so that a killed run re-run with the same parameters resumes
where it stopped and loses nothing. Arrays are ``.npz`` read with ``allow_pickle=False``;
records and provenance are JSON. Nothing is ever unpickled.
"""
from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import os
import platform
import subprocess
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__

_PACKAGE_DIR = Path(__file__).resolve().parent


class CorruptPointWarning(UserWarning):
    """A stored grid point could not be read and is computed again."""


def results_root() -> Path:
    """``$NFD_RESULTS`` if set, else ``results/`` beside the ``nfdlib`` package."""
    return Path(os.environ.get("NFD_RESULTS", _PACKAGE_DIR.parent / "results"))


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays (and nested containers) to plain JSON types;
    non-finite floats become None."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        x = float(obj)
        return x if np.isfinite(x) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and
    ``os.replace``, so a reader never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(to_jsonable(obj), indent=1, sort_keys=False).encode())


def git_revision() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=_PACKAGE_DIR,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(**extra: Any) -> dict[str, Any]:
    """Who computed a result, where and with what (nfdlib version, git revision, library
    versions, host, UTC time) plus ``extra`` (backend, device, seconds, ...)."""
    info = {
        "nfdlib": __version__,
        "git": git_revision(),
        "code": code_fingerprint(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    info.update(extra)
    return info


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """A hash of nfdlib's source files (taken once per process): results computed by other
    code are never resumed."""
    digest = hashlib.sha1()
    for path in sorted(_PACKAGE_DIR.rglob("*.py")):
        digest.update(path.relative_to(_PACKAGE_DIR).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def params_key(params: dict[str, Any]) -> str:
    """A short stable hash of a parameter dictionary and of the code that computes it."""
    blob = json.dumps(to_jsonable(params), sort_keys=True).encode() + code_fingerprint().encode()
    return hashlib.sha1(blob).hexdigest()[:12]


class RunStore:
    """The folder of one experiment run: ``<root>/<experiment>/<params-hash>/``.

    ``save_point``/``load_point`` keep JSON records of finished grid points (a damaged record
    reads as missing, with a warning); ``save_arrays``/``load_arrays`` keep arrays;
    ``save_result``/``load_result`` keep the final result; ``save_cost``/``load_cost`` what a
    point cost (seconds, peak memory), beside it, so that the records stay free of timings.
    ``create=False`` writes nothing (a dry run looks at what is stored).
    """

    def __init__(self, experiment: str, params: dict[str, Any], root: Path | None = None,
                 create: bool = True):
        self.experiment = experiment
        self.params = to_jsonable(params)
        self.key = params_key(self.params)
        self.folder = Path(root or results_root()) / experiment / self.key
        if create:
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.folder / "params.json", self.params)

    @classmethod
    def at(cls, folder: Path) -> "RunStore":
        """The store of the existing run folder ``folder`` (``<root>/<experiment>/<key>``),
        whatever code made it; nothing is written."""
        store = cls.__new__(cls)
        store.folder = Path(folder)
        store.experiment, store.key = store.folder.parent.name, store.folder.name
        params = store.folder / "params.json"
        store.params = json.loads(params.read_text()) if params.exists() else {}
        return store

    def _point(self, name: str, suffix: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_.=" else "_" for c in name)
        return self.folder / "points" / f"{safe}{suffix}"

    def save_point(self, name: str, record: dict[str, Any]) -> None:
        atomic_write_json(self._point(name, ".json"), record)

    def load_point(self, name: str) -> dict[str, Any] | None:
        """The stored record of point ``name``; None when there is none, or when its file cannot
        be read as a JSON object (truncated, edited, a full disk): a warning names that file,
        and the point is computed again."""
        path = self._point(name, ".json")
        if not path.exists():
            return None
        try:
            record = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            problem = f"{type(err).__name__}: {err}"
        else:
            if isinstance(record, dict):
                return record
            problem = f"a JSON {type(record).__name__}, not an object"
        warnings.warn(f"stored point {path} is unreadable ({problem}); computing it again",
                      CorruptPointWarning, stacklevel=2)
        return None

    def save_cost(self, name: str, cost: dict[str, Any]) -> None:
        atomic_write_json(self._point(name, ".cost.json"), cost)

    def load_cost(self, name: str) -> dict[str, Any] | None:
        """The cost of a point computed by ``nfd reproduce`` (None when not measured)."""
        try:
            cost = json.loads(self._point(name, ".cost.json").read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return None
        return cost if isinstance(cost, dict) else None

    def save_session(self, cost: dict[str, Any]) -> None:
        """What one ``nfd run`` session of this run cost (wall seconds, peak resident memory,
        the points it computed, executor), in ``sessions/``: a run killed and resumed keeps
        the cost of every session."""
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        atomic_write_json(self.folder / "sessions" / f"{stamp}-{os.getpid()}.json", cost)

    def costs(self) -> list[dict[str, Any]]:
        """Every stored cost of this run: its points' (computed by ``nfd reproduce``) and its
        sessions' (``nfd run``); unreadable files are left out."""
        files = sorted((self.folder / "points").glob("*.cost.json")) + sorted((self.folder / "sessions").glob("*.json"))
        out = []
        for path in files:
            try:
                cost = json.loads(path.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                continue
            if isinstance(cost, dict):
                out.append(cost)
        return out

    def point_names(self) -> list[str]:
        """The names (file stems) of the stored point records."""
        return sorted(p.name[:-5] for p in (self.folder / "points").glob("*.json")
                      if not p.name.endswith(".cost.json"))

    def has_arrays(self, name: str) -> bool:
        return self._point(name, ".npz").exists()

    def save_arrays(self, name: str, **arrays: np.ndarray) -> None:
        import io
        buf = io.BytesIO()
        np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
        atomic_write_bytes(self._point(name, ".npz"), buf.getvalue())

    def load_arrays(self, name: str) -> dict[str, np.ndarray]:
        with np.load(self._point(name, ".npz"), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

    def save_result(self, result: dict[str, Any]) -> Path:
        path = self.folder / "result.json"
        atomic_write_json(path, result)
        return path

    def load_result(self) -> dict[str, Any] | None:
        """The stored result of this run (same parameters, same code), or None when there is
        none, when it cannot be read, or when one of its stored points is damaged (a warning
        names it): then the run is made again and recomputes that point."""
        path = self.folder / "result.json"
        if not path.exists():
            return None
        try:
            result = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return None
        if not isinstance(result, dict) or result.get("params") != self.params:
            return None
        if not all(self.load_point(name) is not None for name in self.point_names()):
            return None
        return result


def run_cost(folder: Path, result: dict[str, Any]) -> dict[str, Any]:
    """How the finished run stored in ``folder`` was made: ``seconds``, the sum of its stored
    costs (:meth:`RunStore.costs`; where none is stored, the wall time of the session that
    finished it, ``result["provenance"]["seconds"]``, and ``source`` says so); ``peak_gib``, the
    largest peak memory among them (a point's own, measured by ``nfd reproduce``, or a
    session's peak resident memory; None when none was measured); ``points``, the number of
    stored points (1 for a run that stores none); ``executor`` and ``workers`` where every
    cost names the same."""
    store = RunStore.at(folder)
    costs = store.costs()
    peaks = [c["peak_bytes"] for c in costs if isinstance(c.get("peak_bytes"), (int, float))]
    if costs:
        seconds = sum(float(c.get("seconds") or 0.0) for c in costs)
        source = "stored costs" if len(costs) > 1 else "stored cost"
    else:
        seconds = float(result.get("provenance", {}).get("seconds") or 0.0)
        source = "the wall time of the session that finished it; no cost stored"
    out = {"seconds": round(seconds, 1), "peak_gib": round(max(peaks) / 2**30, 2) if peaks else None,
           "points": len(store.point_names()) or 1, "source": source}
    # a session names its executor; a point computed by ``nfd reproduce`` does not (its pool
    # is not the run's parameter), nor does a run without stored costs but for its parameter
    executors = {c.get("executor") for c in costs} if costs else {result.get("params", {}).get("executor")}
    if len(executors) == 1 and None not in executors:
        out["executor"] = executors.pop()
    workers = {c.get("workers") for c in costs}
    if len(workers) == 1 and None not in workers:
        out["workers"] = workers.pop()
    return out
