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

from nfdlib.limits import nfd
from nfdlib.limits import true_limit as tl
from timing import compare_solvers


def main() -> None:
    compare_solvers({"true limit (on)": lambda X, y, nz, be, dev: tl.solve(X, y, 0.5, nz, "tanh", True, be, dev),
                     "true limit (off)": lambda X, y, nz, be, dev: tl.solve(X, y, 0.5, nz, "tanh", False, be, dev),
                     "NFD solver": lambda X, y, nz, be, dev: nfd.solve(X, y, 0.5, nz, "tanh", be, dev)},
                    P=2**16, L=64, T=8, repeat=2)


if __name__ == "__main__":
    main()
