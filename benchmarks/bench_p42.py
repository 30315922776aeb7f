"""Speed of the P4.2 kernel (forward pass + true and coupled-decoupled backward passes):
numba and torch against the numpy reference (which builds each input's coupled weights
explicitly), on the same draws, in one run. Prints seconds and ratios.

    python benchmarks/bench_p42.py [--width 512] [--depth 32] [--inputs 8] [--repeat 3]
"""
from __future__ import annotations

import argparse

import numpy as np

from nfdlib.gaussian.init import gia_pair
from timing import best_time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--depth", type=int, default=32)
    ap.add_argument("--inputs", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    n, L, B, d = a.width, a.depth, a.inputs, 32
    U, W, v = rng.standard_normal((n, d)), rng.standard_normal((L, n, n)), rng.standard_normal(n)
    X = rng.standard_normal((B, d))
    X *= np.sqrt(d) / np.linalg.norm(X, axis=1, keepdims=True)
    zeta = rng.standard_normal((L, B, n))
    t_draw = best_time(lambda: rng.standard_normal((L, n, n), dtype=np.float32), a.repeat)
    rows = {"numpy reference (float64)": best_time(
        lambda: gia_pair("numpy", U, W, v, X, zeta, "tanh", dtype="float64"), a.repeat)}
    for backend in ("numba", "torch"):
        for dtype in ("float64", "float32"):
            rows[f"{backend} ({dtype})"] = best_time(
                lambda: gia_pair(backend, U, W, v, X, zeta, "tanh", device="auto", dtype=dtype), a.repeat)
    ref = rows["numpy reference (float64)"]
    print(f"P4.2 kernel, n={n}, L={L}, B={B} inputs (best of {a.repeat})")
    for name, t in rows.items():
        print(f"  {name:28s} {t * 1e3:9.1f} ms   speed-up vs reference {ref / t:6.1f}x")
    print(f"  drawing the weights (float32)  {t_draw * 1e3:9.1f} ms")


if __name__ == "__main__":
    main()
