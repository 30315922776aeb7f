"""Cost of the true-backprop limit (NB-E1) relative to the NFD solver (D5.3).

At P = 2¹⁶, L = 64, T = 8 (tanh), for each backend: the time of
:func:`nfdlib.limits.true_limit.solve` with corrections on, with corrections off, and of
:func:`nfdlib.limits.nfd.solve`, and the ratios on/NFD and off/NFD. The corrections add,
per layer and step, one Stein moment row (E[F ε], like a kernel row), one T×T triangular
solve and one linear combination of ≤ T stored vectors in each direction: expected ratio
on/NFD about 1.5–2.

Run: ``python benchmarks/bench_true_limit.py [--quick] [--repeat N] [--backends numba,torch]``.
Best of ``--repeat`` interleaved rounds after a warm-up (compile excluded).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from nfdlib.limits import nfd
from nfdlib.limits import true_limit as tl


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="P = 2^12, L = 16 (a CI smoke run)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--backends", default="numba,torch")
    args = ap.parse_args()
    P, L, T, d = (2**12, 16, 8, 8) if args.quick else (2**16, 64, 8, 8)
    X, y = nfd.synthetic_task(T, d, 0)
    noise = nfd.draw_noise(np.random.default_rng(0), P, L, T, d)
    small = nfd.draw_noise(np.random.default_rng(0), 2048, 2, T, d)
    print(f"P = {P}, L = {L}, T = {T}")
    for be in args.backends.split(","):
        dev = "auto" if be == "torch" else "cpu"
        runs = {"true limit (on)": lambda nz, be=be, dev=dev: tl.solve(X, y, 0.5, nz, "tanh", True, be, dev),
                "true limit (off)": lambda nz, be=be, dev=dev: tl.solve(X, y, 0.5, nz, "tanh", False, be, dev),
                "NFD solver": lambda nz, be=be, dev=dev: nfd.solve(X, y, 0.5, nz, "tanh", be, dev)}
        for fn in runs.values():
            fn(small)  # compile / warm up
        t = best_times({k: (lambda fn=fn: fn(noise)) for k, fn in runs.items()}, args.repeat)
        for k, v in t.items():
            print(f"{be:6s} {k:17s} {v:8.3f} s")
        print(f"{be:6s} ratio on/NFD = {t['true limit (on)'] / t['NFD solver']:.2f}, "
              f"off/NFD = {t['true limit (off)'] / t['NFD solver']:.2f}")


if __name__ == "__main__":
    main()
