"""Cost of the one-step depth-limit solver (NB-TD, :mod:`nfdlib.limits.true_depth_limit`)
relative to the NFD solver (D5.3) at the same P, L, T.

The depth-limit equation is defined for one SGD step (T = 2 inputs), so the comparison runs at
T = 2: per backend, the time of :func:`nfdlib.limits.true_depth_limit.solve` (reuse drift on),
of the true-limit recursion with Stein estimates (:func:`nfdlib.limits.true_limit.solve`) and of
:func:`nfdlib.limits.nfd.solve`, and the ratios to NFD. The depth-limit solver does per layer
one pass over the particles for its four moments and one for the update (NFD: a kernel row and
an update per direction), with no Stein moments or triangular solves: expected ratio about 1 or
below.

Run: ``python benchmarks/bench_true_depth_limit.py [--quick] [--repeat N] [--backends numba,torch]``.
Best of ``--repeat`` interleaved rounds after a warm-up (compile excluded).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from nfdlib.limits import nfd
from nfdlib.limits import true_depth_limit as tdl
from nfdlib.limits import true_limit as tl


def best_times(fns: dict, repeat: int) -> dict:
    """Best of ``repeat`` rounds per function, the rounds interleaving the functions."""
    best = {k: np.inf for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="P = 2^12, L = 16 (a CI smoke run)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--backends", default="numba,torch")
    args = ap.parse_args()
    P, L, T, d = (2**12, 16, 2, 8) if args.quick else (2**16, 256, 2, 8)
    X, y = nfd.synthetic_task(T, d, 0)
    noise = nfd.draw_noise(np.random.default_rng(0), P, L, T, d)
    small = nfd.draw_noise(np.random.default_rng(0), 2048, 2, T, d)
    print(f"P = {P}, L = {L}, T = {T}")
    for be in args.backends.split(","):
        dev = "auto" if be == "torch" else "cpu"
        runs = {"depth limit": lambda nz, be=be, dev=dev: tdl.solve(X, y, 0.5, nz, "tanh", True, be, dev),
                "Stein recursion": lambda nz, be=be, dev=dev: tl.solve(X, y, 0.5, nz, "tanh", True, be, dev),
                "NFD solver": lambda nz, be=be, dev=dev: nfd.solve(X, y, 0.5, nz, "tanh", be, dev)}
        for fn in runs.values():
            fn(small)  # compile / warm up
        t = best_times({k: (lambda fn=fn: fn(noise)) for k, fn in runs.items()}, args.repeat)
        for k, v in t.items():
            print(f"{be:6s} {k:16s} {v:8.3f} s")
        print(f"{be:6s} ratio depth limit/NFD = {t['depth limit'] / t['NFD solver']:.2f}, "
              f"Stein recursion/NFD = {t['Stein recursion'] / t['NFD solver']:.2f}")


if __name__ == "__main__":
    main()
