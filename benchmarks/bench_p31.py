"""Speed of one P3.1 grid point (both designs, ReLU and tanh, and the classic block, on the
same weights): numba vs torch, and numba with one thread vs its default thread count.

    python benchmarks/bench_p31.py [--width 128] [--depth 256] [--repeats 3]

Prints seconds per point (median of the repeats, after one warm-up) and the ratios.
"""
from __future__ import annotations

import argparse
import time

import numba
import numpy as np

from nfdlib.data import load
from nfdlib.experiments.p31_post_activation import compute_init


def seconds(backend: str, width: int, depth: int, repeats: int) -> float:
    X = load("digits", seed=0).X_test[:8]
    kw = dict(width=width, depth=depth, seed=(0, 0, width, depth), X=X, acts=["relu", "tanh"],
              classic=True, backend=backend, device="auto", dtype="float32")
    compute_init(**kw)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        compute_init(**kw)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--depth", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    default_threads = numba.get_num_threads()
    t_numba = seconds("numba", a.width, a.depth, a.repeats)
    numba.set_num_threads(1)
    t_numba1 = seconds("numba", a.width, a.depth, a.repeats)
    numba.set_num_threads(default_threads)
    t_torch = seconds("torch", a.width, a.depth, a.repeats)
    print(f"width {a.width}, depth {a.depth}: seconds per grid point")
    print(f"  numba ({default_threads} threads) {t_numba:.3f}   numba (1 thread) {t_numba1:.3f}   torch {t_torch:.3f}")
    print(f"  ratio numba/torch {t_numba / t_torch:.2f}   numba {default_threads} threads / 1 thread "
          f"{t_numba / t_numba1:.2f}")


if __name__ == "__main__":
    main()
