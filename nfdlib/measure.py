"""What one point costs: wall seconds and peak extra memory, measured where it is computed.

:func:`measured` is the function that ``nfd reproduce`` sends to its executor (a process pool
or a Dask worker): it calls the point's own function and returns its record together with the
cost, which the store keeps beside the record (the record itself stays free of timings).
"""
from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable

SAMPLE_S = 0.005  # how often the resident memory is read while a point runs
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """This process's resident memory (Linux ``/proc/self/statm``; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


class PeakSampler:
    """Reads the resident memory every SAMPLE_S seconds in a thread; ``peak - base`` is the
    most the computation held on top of what the process held before it."""

    def __init__(self):
        self.base = self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self._stop.wait(SAMPLE_S):
            self.peak = max(self.peak, rss_bytes())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())

    @property
    def extra(self) -> int:
        return max(0, self.peak - self.base)


def measured(compute: Callable[..., Any], kwargs: dict[str, Any]) -> tuple[Any, dict]:
    """``(compute(**kwargs), {"seconds": wall time, "peak_bytes": peak extra memory})``."""
    with PeakSampler() as mem:
        t0 = time.perf_counter()
        out = compute(**kwargs)
        seconds = time.perf_counter() - t0
    return out, {"seconds": round(seconds, 4), "peak_bytes": int(mem.extra)}


def whole_run(experiment: str, params: dict[str, Any]) -> Any:
    """The data of an experiment whose ``run`` is not a grid of stored points, computed as one
    point (on a cluster's worker, say): ``run(params, None)``."""
    from . import experiments
    exp = experiments.get(experiment)
    from .params import declared_memory
    with declared_memory():  # checked before it was sent, against the worker's memory
        p = exp.Params.build(**params)
    return exp.run(p, None)
