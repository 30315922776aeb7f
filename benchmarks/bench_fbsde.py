"""Speed of the FBSDE particle solver (nfdlib.limits.fbsde): particles × layers per second
for the numba kernel, torch on the CPU (and CUDA when present) and the numpy-vectorised
reference, on the same draws, P = 2¹⁶ particles and L = 256 layers (forward and backward
sweeps). Goal: numba ≥ 5× numpy. Prints one line per backend and the ratios.

    python benchmarks/bench_fbsde.py [--particles 65536] [--depth 256] [--repeat 3]
"""
from __future__ import annotations

import argparse
import math

import numpy as np

from nfdlib.limits import fbsde
from timing import best_time


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--particles", type=int, default=2**16)
    ap.add_argument("--depth", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    P, L = args.particles, args.depth
    rng = np.random.default_rng(0)
    h0, v = rng.standard_normal(P), rng.standard_normal(P)
    dB = rng.standard_normal((L, P)) / math.sqrt(L)
    dBt = rng.standard_normal((L, P)) / math.sqrt(L)
    targets = [("numba", "cpu"), ("torch", "cpu"), ("numpy", "cpu")]
    try:
        import torch
        if torch.cuda.is_available():
            targets.insert(2, ("torch", "cuda"))
    except ImportError:
        pass
    for act in ("tanh", "relu"):
        rates = {}
        for backend, device in targets:
            t = best_time(lambda: fbsde.solve(h0, v, dB, dBt, act, backend, device), args.repeat)
            rates[f"{backend}/{device}"] = P * L / t
            print(f"{act:5s} {backend:6s} {device:5s} {t * 1e3:9.1f} ms  {P * L / t / 1e6:9.1f} M particle-layers/s")
        base = rates["numpy/cpu"]
        print(f"{act:5s} ratios vs numpy: " + ", ".join(f"{k} {r / base:.2f}x" for k, r in rates.items()
                                                      if k != "numpy/cpu")
              + f"   (goal numba >= 5x: {'met' if rates['numba/cpu'] >= 5 * base else 'not met'})")


if __name__ == "__main__":
    main()
