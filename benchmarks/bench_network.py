"""Benchmark: milliseconds per mini-batch SGD step (depth 64, batch 128, float32, depth-µP,
tanh, reused backward) for the numba and torch (CPU) backends and the numpy reference, at
widths 128–1024, and each as a fraction of the sgemm-bound time measured in the same run.

One step costs three matrix products per layer (forward, backward, weight gradient), i.e.
6·B·n²·L flops; the sgemm-bound time is that count divided by the best single-precision
matrix-multiply rate of this machine (numpy or torch, n×n by n×B products, measured here).

Usage: python benchmarks/bench_network.py [--widths 128 256 512 1024] [--depth 64] [--repeats 3]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from nfdlib.model import NetworkSpec
from nfdlib.network import Network


def sgemm_rate(n: int, batch: int, repeats: int = 5) -> float:
    """Best flop rate of a (B×n)·(n×n) single-precision product, numpy or torch."""
    a = np.random.default_rng(0).standard_normal((batch, n)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((n, n)).astype(np.float32)
    ta, tw = torch.from_numpy(a), torch.from_numpy(w)
    best = 0.0
    for mult in (lambda: a @ w.T, lambda: ta @ tw.T):
        mult()
        t0 = time.perf_counter()
        for _ in range(repeats * 10):
            mult()
        best = max(best, 2 * batch * n * n * repeats * 10 / (time.perf_counter() - t0))
    return best


def ms_per_step(backend: str, width: int, depth: int, batch: int, repeats: int) -> float:
    spec = NetworkSpec.build(width=width, depth=depth, d=64, n_out=10, backend=backend,
                             dtype="float32", device="cpu")
    net = Network(spec, rng=0)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((batch, 64))
    Y = rng.integers(0, 10, batch)
    net.step(X, Y, 0.01, loss="cross_entropy")  # compile / warm up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        net.step(X, Y, 0.01, loss="cross_entropy")
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--widths", type=int, nargs="+", default=[128, 256, 512, 1024])
    ap.add_argument("--depth", type=int, default=64)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; depth {args.depth}, batch {args.batch}, float32")
    print(f"{'width':>6} {'sgemm GF/s':>10} {'bound ms':>9} | {'numba':>8} {'torch':>8} {'numpy':>8} ms/step"
          f" | numba/torch  numba/numpy | %sgemm numba torch numpy")
    for n in args.widths:
        rate = sgemm_rate(n, args.batch)
        bound = 1e3 * 6 * args.batch * n * n * args.depth / rate
        ms = {b: ms_per_step(b, n, args.depth, args.batch, args.repeats) for b in ("numba", "torch", "numpy")}
        print(f"{n:6d} {rate / 1e9:10.1f} {bound:9.1f} | {ms['numba']:8.1f} {ms['torch']:8.1f} {ms['numpy']:8.1f}"
              f"         | {ms['numba'] / ms['torch']:11.2f} {ms['numba'] / ms['numpy']:11.2f}"
              f" | {100 * bound / ms['numba']:11.0f}% {100 * bound / ms['torch']:4.0f}% {100 * bound / ms['numpy']:4.0f}%")


if __name__ == "__main__":
    main()
