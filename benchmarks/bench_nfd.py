"""Speed of the NFD particle solver (D5.3).

1. numba (and torch) against the numpy-vectorised reference at P = 2¹⁶, L = 64, T = 16
   (target: numba ≥ 10× numpy);
2. cost exponents in P, L and T (expected P·L·T²: exponents 1, 1, 2; at small T the
   O(P·L·T) part lowers the T exponent).

Run: ``python benchmarks/bench_nfd.py [--quick]``. Times are the best of ``--repeat`` runs
after a warm-up (numba compile excluded).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from nfdlib.limits import nfd
from nfdlib.metrics import power_law_fit


def best_time(backend: str, P: int, L: int, T: int, repeat: int, d: int = 8) -> float:
    X, y = nfd.synthetic_task(T, d, 0)
    noise = nfd.draw_noise(np.random.default_rng(0), P, L, T, d)
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        nfd.solve(X, y, 0.5, noise, "tanh", backend, "auto" if backend != "numba" else "cpu")
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a CI smoke run)")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    P, L, T = (2**12, 16, 8) if args.quick else (2**16, 64, 16)
    best_time("numba", 2048, 2, 2, 1)  # compile
    t = {b: best_time(b, P, L, T, args.repeat) for b in ("numpy", "numba", "torch")}
    print(f"P={P} L={L} T={T}: " + ", ".join(f"{b} {s:.3f}s" for b, s in t.items()))
    print(f"speed-up numba/numpy = {t['numpy'] / t['numba']:.2f}x, torch/numpy = {t['numpy'] / t['torch']:.2f}x")
    base = dict(P=2**13, L=8, T=8) if not args.quick else dict(P=2**11, L=4, T=4)
    grids = {"P": [base["P"] * 2**k for k in range(4)], "L": [base["L"] * 2**k for k in range(4)],
             "T": [base["T"] * 2**k for k in range(4)]}
    for name, values in grids.items():
        times = []
        for v in values:
            kw = dict(base, **{name: v})
            times.append(best_time("numba", kw["P"], kw["L"], kw["T"], args.repeat))
        fit = power_law_fit(values, times)
        print(f"cost exponent in {name}: {fit.slope:.2f} (95% CI {fit.slope_ci[0]:.2f}..{fit.slope_ci[1]:.2f}); "
              f"times {', '.join(f'{s:.3f}' for s in times)} s")


if __name__ == "__main__":
    main()
