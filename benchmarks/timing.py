"""Timing shared by the benchmark scripts (run as ``python benchmarks/bench_<topic>.py``, so
this folder is on the import path)."""
from __future__ import annotations

import argparse
import time

import numpy as np

from nfdlib.limits import nfd


def best_time(fn, repeat: int) -> float:
    """Best of ``repeat`` timed calls of ``fn``, after one untimed call (compile / warm up)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def best_times(fns: dict, repeat: int) -> dict:
    """Best of ``repeat`` rounds per function; the rounds interleave the functions, so a
    change of machine load affects them alike."""
    best = {k: np.inf for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t0)
    return best


def compare_solvers(runs: dict, P: int, L: int, T: int, repeat: int, reference: str = "NFD solver") -> dict:
    """Command line and run of a particle-solver comparison. ``runs`` maps a name to
    ``fn(X, y, noise, backend, device)``; the task is :func:`nfdlib.limits.nfd.synthetic_task`
    (T inputs of dimension 8), the noise one draw of P particles and L layers (``--quick``:
    P = 2¹², L = 16). For each backend of ``--backends``, every solver is compiled and warmed
    up on a small draw, then timed by :func:`best_times` (``--repeat`` rounds, default
    ``repeat``). Prints the times and each time divided by that of ``reference``; returns
    {backend: {name: seconds}}."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="P = 2^12, L = 16 (a CI smoke run)")
    ap.add_argument("--repeat", type=int, default=repeat)
    ap.add_argument("--backends", default="numba,torch")
    args = ap.parse_args()
    P, L, d = (2**12, 16, 8) if args.quick else (P, L, 8)
    X, y = nfd.synthetic_task(T, d, 0)
    noise = nfd.draw_noise(np.random.default_rng(0), P, L, T, d)
    small = nfd.draw_noise(np.random.default_rng(0), 2048, 2, T, d)
    print(f"P = {P}, L = {L}, T = {T}")
    width = max(map(len, runs))
    out = {}
    for be in args.backends.split(","):
        dev = "auto" if be == "torch" else "cpu"
        for fn in runs.values():
            fn(X, y, small, be, dev)  # compile / warm up
        t = out[be] = best_times({k: (lambda fn=fn: fn(X, y, noise, be, dev)) for k, fn in runs.items()}, args.repeat)
        for k, v in t.items():
            print(f"{be:6s} {k:{width}s} {v:8.3f} s")
        print(f"{be:6s} ratio to the {reference}: "
              + ", ".join(f"{k} {v / t[reference]:.2f}" for k, v in t.items() if k != reference))
    return out
