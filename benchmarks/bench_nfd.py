"""Speed of the NFD particle solver (D5.3), and the memory-bandwidth bound on it.

1. numba (and torch) against the numpy-vectorised reference at P = 2¹⁶, L = 64, T = 16
   (the issue's goal: numba ≥ 10× numpy), and at smaller P, where the stored history
   (4·P·L·T float64) comes closer to the caches;
2. the bound that memory bandwidth puts on any kernel. Per layer ℓ and step s the
   recursion (module docstring of :mod:`nfdlib.limits.nfd`) reads, for all P particles,
   the stored rows ε_ℓ^{(0..s)}, g_ℓ^{(0..s-1)}, φ(h_ℓ)^{(0..s)} (forward: innovation, drift,
   kernel row C_ℓ) and ε̂_ℓ^{(0..s)}, φ(h_{ℓ-1})^{(0..s-1)}, g_{ℓ-1}^{(0..s)} (backward), and
   writes φ(h)^{(s)}, g^{(s)}: 6s + 6 rows of P float64. Each coefficient depends on the kernel
   row just reduced over all particles, so a row cannot be reused from cache before the other
   L - 1 layers have passed (2 GB at these sizes against a 32 MB cache). The traffic is
   8·P·L·Σ_s(6s + 6) = 24·P·L·T(T + 1) bytes, and no kernel is faster than that traffic
   divided by the machine's read bandwidth, measured here on arrays of the history's size
   (BLAS gemv and a plain streaming sum, the best of both; the bandwidth of this shared
   machine varies by ±20% between runs, so the measured time can come out slightly below it);
3. cost exponents in P, L and T (expected P·L·T²: exponents 1, 1, 2; at small T the
   O(P·L·T) part lowers the T exponent).

Run: ``python benchmarks/bench_nfd.py [--quick]``. Times are the best of ``--repeat`` runs
after a warm-up (numba compile excluded).
"""
from __future__ import annotations

import argparse
import time

import numba
import numpy as np
from numba import njit, prange

from nfdlib.backends.numba_backend import SAFE_FASTMATH
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


def traffic_bytes(P: int, L: int, T: int) -> int:
    """Bytes one solve must move between memory and the cores (module docstring, item 2)."""
    return 24 * P * L * T * (T + 1)


@njit(parallel=True, fastmath=SAFE_FASTMATH)
def _stream_sum(flat, nchunk):
    """Σ of a 1-D array, read once in ``nchunk`` contiguous pieces by all threads."""
    size = (flat.size + nchunk - 1) // nchunk
    part = np.zeros(nchunk)
    for ch in prange(nchunk):
        acc = 0.0
        for q in range(ch * size, min(flat.size, (ch + 1) * size)):
            acc += flat[q]
        part[ch] = acc
    return part.sum()


def read_bandwidth(P: int, L: int, T: int, repeat: int = 5) -> float:
    """Bytes per second read from memory, the best of three ways of reading L arrays X_ℓ of
    T×P float64 (the size of the solver's history): numpy's BLAS gemv in both directions
    (w·X_ℓ and X_ℓ·v, the solver's two operations, layer after layer) and a plain parallel
    streaming sum; best of ``repeat`` sweeps each."""
    X = np.random.default_rng(0).standard_normal((L, T, P))
    w, v = np.ones(T), np.ones(P)
    out_p, out_t = np.empty(P), np.empty(T)
    flat = X.reshape(-1)
    _stream_sum(flat[:1024], 8)  # compile
    sweeps = (lambda: [np.dot(w, X[layer], out=out_p) for layer in range(L)],
              lambda: [np.dot(X[layer], v, out=out_t) for layer in range(L)],
              lambda: _stream_sum(flat, 8 * numba.get_num_threads()))
    best = np.inf
    for _ in range(repeat):
        for sweep in sweeps:
            t0 = time.perf_counter()
            sweep()
            best = min(best, time.perf_counter() - t0)
    return X.nbytes / best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a CI smoke run)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    P, L, T = (2**12, 16, 8) if args.quick else (2**16, 64, 16)
    best_time("numba", 2048, 2, 2, 1)  # compile
    for p in [P // 64, P // 16, P // 4, P]:
        t = {b: best_time(b, p, L, T, args.repeat) for b in ("numpy", "numba", "torch")}  # numpy first:
        # numba's idle OpenMP threads keep spinning for a while and slow BLAS down after them
        print(f"P={p} L={L} T={T} (history {32 * p * L * T / 2**20:.0f} MiB): "
              + ", ".join(f"{b} {s:.4f}s" for b, s in t.items())
              + f"; numba/numpy = {t['numpy'] / t['numba']:.2f}x, torch/numpy = {t['numpy'] / t['torch']:.2f}x")
    traffic, bw = traffic_bytes(P, L, T), read_bandwidth(P, L, T)
    bound = traffic / bw
    print(f"at P={P}: memory traffic of one solve {traffic / 1e9:.1f} GB; read bandwidth "
          f"{bw / 1e9:.1f} GB/s -> no kernel takes less than {bound:.3f} s here")
    for b, s in t.items():
        print(f"  {b:6s} moves {traffic / s / 1e9:5.1f} GB/s = {bound / s:4.0%} of the bound")
    print(f"the bound caps any kernel's speed-up over numpy at {t['numpy'] / bound:.2f}x; "
          f"10x numpy would need {10 * traffic / t['numpy'] / 1e9:.0f} GB/s")
    base = dict(P=2**14, L=16, T=8) if not args.quick else dict(P=2**11, L=4, T=4)
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
