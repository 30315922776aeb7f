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

from nfdlib.limits import nfd
from nfdlib.limits import true_depth_limit as tdl
from nfdlib.limits import true_limit as tl
from timing import compare_solvers


def main() -> None:
    compare_solvers({"depth limit": lambda X, y, nz, be, dev: tdl.solve(X, y, 0.5, nz, "tanh", True, be, dev),
                     "Stein recursion": lambda X, y, nz, be, dev: tl.solve(X, y, 0.5, nz, "tanh", True, be, dev),
                     "NFD solver": lambda X, y, nz, be, dev: nfd.solve(X, y, 0.5, nz, "tanh", be, dev)},
                    P=2**16, L=256, T=2, repeat=3)


if __name__ == "__main__":
    main()
