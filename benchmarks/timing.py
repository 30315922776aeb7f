"""Timing shared by the benchmark scripts (run as ``python benchmarks/bench_<topic>.py``, so
this folder is on the import path)."""
from __future__ import annotations

import time


def best_time(fn, repeat: int) -> float:
    """Best of ``repeat`` timed calls of ``fn``, after one untimed call (compile / warm up)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)
