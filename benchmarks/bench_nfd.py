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
   O(P·L·T) part lowers the T exponent);
4. the storage layouts at P = 2¹⁸, L = 64, T = 16: the float64 layout (every normal and
   history in float64, the solver before the lean layout) against the lean one (float32
   storage, float64 sums), each in a fresh process: time of a solve, the process's peak
   memory (noise + solve), their ratios, and the fraction of the bandwidth bound that the lean
   layout's minimal traffic (half the bytes of item 2) implies. It also prices the other way
   to save the noise's memory, regenerating each normal from a counter-based generator when a
   step needs it: per layer and step s the kernels read the rows 0..s of ε and ε̂, so a solve
   would draw L·P·T(T+1) normals instead of reading them; the rate of numpy's Philox (a
   counter-based generator) on float32 normals, on all cores, gives that cost.

Run: ``python benchmarks/bench_nfd.py [--quick] [--layouts-only]``. Times are the best of
``--repeat`` runs after a warm-up (numba compile excluded).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numba
import numpy as np
from numba import njit, prange

from nfdlib.backends.numba_backend import SAFE_FASTMATH
from nfdlib.limits import nfd
from nfdlib.metrics import power_law_fit


LAYOUT_RUN = """
import json, resource, sys, time
import numpy as np
from nfdlib.limits import nfd
P, L, T, dtype, repeat = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
X, y = nfd.synthetic_task(T, 8, 0)
noise = nfd.draw_noise(np.random.default_rng(0), P, L, T, 8, dtype)
nfd.solve(X, y, 0.5, nfd.draw_noise(np.random.default_rng(1), 16384, 2, T, 8, dtype), "tanh", "numba")  # compile
best = float("inf")
for _ in range(repeat):
    t0 = time.perf_counter()
    nfd.solve(X, y, 0.5, noise, "tanh", "numba")
    best = min(best, time.perf_counter() - t0)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": best, "peak_bytes": peak}))
"""


def layout_run(P: int, L: int, T: int, dtype: str, repeat: int) -> dict:
    """Best solve time and peak resident memory of one layout, in a fresh process."""
    out = subprocess.run([sys.executable, "-c", LAYOUT_RUN, str(P), str(L), str(T), dtype, str(repeat)],
                         check=True, capture_output=True, text=True, env=dict(os.environ)).stdout
    return json.loads(out.strip().splitlines()[-1])


def philox_rate(n: int = 2**22, repeat: int = 3) -> float:
    """float32 standard normals per second from numpy's Philox on one core (best of ``repeat``)."""
    gen = np.random.Generator(np.random.Philox(key=1))
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        gen.standard_normal(n, dtype=np.float32)
        best = min(best, time.perf_counter() - t0)
    return n / best


def layouts(P: int, L: int, T: int, repeat: int) -> None:
    """Item 4 of the module docstring."""
    old, new = layout_run(P, L, T, "float64", repeat), layout_run(P, L, T, "float32", repeat)
    gib = 2.0**30
    print(f"layouts at P={P} L={L} T={T} (numba, {numba.get_num_threads()} threads):")
    print(f"  float64 layout: {old['seconds']:.2f} s, peak memory {old['peak_bytes'] / gib:.2f} GiB")
    print(f"  lean layout:    {new['seconds']:.2f} s, peak memory {new['peak_bytes'] / gib:.2f} GiB")
    print(f"  speed-up {old['seconds'] / new['seconds']:.2f}x (goal >= 2x); memory ratio "
          f"{new['peak_bytes'] / old['peak_bytes']:.2f} (goal <= 0.5; the arrays alone: "
          f"{nfd.solver_bytes(P, L, T, 1) + nfd.noise_bytes(P, L, T, 8)} / "
          f"{nfd.solver_bytes(P, L, T, 1, 'float64') + nfd.noise_bytes(P, L, T, 8, 'float64')} bytes = "
          f"{(nfd.solver_bytes(P, L, T, 1) + nfd.noise_bytes(P, L, T, 8)) / (nfd.solver_bytes(P, L, T, 1, 'float64') + nfd.noise_bytes(P, L, T, 8, 'float64')):.2f})")
    traffic, bw = traffic_bytes(P, L, T) // 2, read_bandwidth(P // 2, L, T)  # arrays of the lean history's bytes
    bound = traffic / bw
    print(f"  lean minimal traffic {traffic / 1e9:.1f} GB at the measured read bandwidth {bw / 1e9:.1f} GB/s: "
          f"bound {bound:.2f} s; the lean solve reaches {bound / new['seconds']:.0%} of it (goal >= 70%)")
    normals = L * P * T * (T + 1)
    rate = philox_rate() * numba.get_num_threads()
    print(f"  regenerating the noise instead: {normals / 1e9:.2f} G normals at {rate / 1e6:.0f} M/s "
          f"(Philox, {numba.get_num_threads()} cores) = {normals / rate:.2f} s of generation alone, against "
          f"{4 * normals / bw:.2f} s to read them as float32: storing is "
          f"{'faster' if 4 * normals / bw < normals / rate else 'slower'}")


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
    ap.add_argument("--layouts-only", action="store_true", help="only item 4 (the storage layouts)")
    args = ap.parse_args()
    layouts(*((2**14, 16, 8) if args.quick else (2**18, 64, 16)), repeat=args.repeat)
    if args.layouts_only:
        return
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
