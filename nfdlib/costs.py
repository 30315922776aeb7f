"""Measured costs of the book's runs, kept in the repository (``nfdlib/costs.json``).

``nfd reproduce --profile P --save-costs`` writes, for each run of the profile, what its points
cost on the machine that computed them: the number of points, each point's wall seconds and
peak extra memory (:mod:`nfdlib.measure`), and the memory its parameter check declares for its
largest point. ``nfd reproduce --dry-run`` reads them back to estimate a plan.

``nfd export-paper`` writes the same for a finished ``paper`` run (its points' costs, from its
store). A run of a profile that was never measured is extrapolated from the ``book``
measurement with one stated model (:data:`MODEL`), and the plan says so.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path

from .store import _PACKAGE_DIR, atomic_write_json

COSTS_PATH = _PACKAGE_DIR / "costs.json"
MODEL = ("extrapolated from the book profile's measurement: core-seconds x (points of the run's "
         "first grid, paper/book) x (declared memory of the largest point, paper/book), i.e. a "
         "point's time grows like the bytes it touches; epochs and steps are not in the model, "
         "so read it as an order of magnitude")
DEFAULT_BYTES = 256 << 20  # a point of a run that declares no memory and was never measured


def load(path: Path | None = None) -> dict:
    """The stored measurements, ``{"profiles": {profile: {label: entry}}}`` (empty when none)."""
    try:
        return json.loads(Path(path or COSTS_PATH).read_text())
    except (OSError, json.JSONDecodeError):
        return {"profiles": {}}


def machine() -> str:
    """The measuring machine in words: cores, memory, processor."""
    mem = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    return f"{os.cpu_count()} cores, {mem:.0f} GiB, {platform.processor() or platform.machine()}"


def save(profile: str, entries: dict[str, dict], path: Path | None = None) -> None:
    """Replace the entries of ``profile``'s runs named in ``entries`` (label → entry), each
    stamped with this machine and, unless the entry has its own, today's date."""
    costs = load(path)
    prof = costs.setdefault("profiles", {}).setdefault(profile, {})
    stamp = {"machine": machine(),
             "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d")}
    for label, entry in entries.items():
        prof[label] = dict(stamp, **entry)
    costs["profiles"][profile] = dict(sorted(prof.items()))
    atomic_write_json(Path(path or COSTS_PATH), costs)


@dataclass
class Estimate:
    """A run's estimated cost: number of points, core-seconds, peak memory of its largest point
    (measured, or the declared bound when larger) and where the numbers come from."""
    points: int | None
    core_seconds: float | None
    peak_bytes: float
    source: str  # "measured", "extrapolated" or "not measured"


def entry(profile: str, label: str, costs: dict) -> dict | None:
    return costs.get("profiles", {}).get(profile, {}).get(label)


def estimate(profile: str, label: str, declared: float, first_grid: int | None,
             costs: dict) -> Estimate:
    """The estimate of run ``label`` at ``profile``: its own measurement when there is one,
    else the book measurement extrapolated by :data:`MODEL` (``declared``: the bytes its
    parameter check declares now; ``first_grid``: the number of points of its first grid)."""
    own = entry(profile, label, costs)
    if own is not None:
        return Estimate(own["points"], own["core_seconds"], max(own["peak_bytes"], declared), "measured")
    book = entry("book", label, costs)
    if book is None or profile == "smoke":
        return Estimate(first_grid, None, declared or DEFAULT_BYTES, "not measured")
    grid_ratio = (first_grid / book["first_grid"]) if first_grid and book.get("first_grid") else 1.0
    mem_ratio = (declared / book["declared_bytes"]) if declared and book.get("declared_bytes") else 1.0
    points = round(book["points"] * grid_ratio)
    return Estimate(points, book["core_seconds"] * grid_ratio * mem_ratio,
                    declared or book["peak_bytes"] * mem_ratio, "extrapolated")


def point_cost(profile: str, label: str, name: str, costs: dict) -> tuple[float, float] | None:
    """``(seconds, peak bytes)`` measured for one point, or None."""
    own = entry(profile, label, costs)
    found = (own or {}).get("per_point", {}).get(name)
    return tuple(found) if found else None
