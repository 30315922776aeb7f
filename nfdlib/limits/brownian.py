"""Brownian paths that can be queried on any depth grid (T4.3, App. F; book/notes/fbsde.md).

A :class:`BrownianPath` holds ``P`` independent standard Brownian motions on ``[0, 1]``
through their increments on the finest grid ``t_k = k/N`` (``N = fine_depth``):

    ΔB_k = B(t_k) - B(t_{k-1}) = √(1/N) ε_k,      ε_k ~ N(0, I_P) i.i.d.

drawn once from a seeded numpy ``Generator``. The increments on a coarser grid of ``L``
steps (``L`` divides ``N``) are block sums of the fine ones,

    B(ℓ/L) - B((ℓ-1)/L) = Σ_{k=(ℓ-1)N/L+1}^{ℓN/L} ΔB_k,

so an ``L``-layer chain and a fine reference driven by the same object see one and the same
path: that is what a strong (pathwise) error needs.
"""
from __future__ import annotations

import numpy as np

from ..params import ParamError, require_memory


class BrownianPath:
    """``particles`` independent Brownian motions on [0, 1], resolved on ``fine_depth``
    equal steps (see the module docstring)."""

    def __init__(self, particles: int, fine_depth: int, rng: np.random.Generator | int):
        if not isinstance(particles, (int, np.integer)) or particles < 1:
            raise ParamError(f"parameter 'particles' = {particles!r} is not allowed; allowed: an integer >= 1")
        if not isinstance(fine_depth, (int, np.integer)) or fine_depth < 1:
            raise ParamError(f"parameter 'fine_depth' = {fine_depth!r} is not allowed; allowed: an integer >= 1")
        require_memory(8.0 * particles * fine_depth, f"a Brownian path of {particles} particles "
                       f"on {fine_depth} steps")
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self.particles = int(particles)
        self.fine_depth = int(fine_depth)
        self._fine = rng.standard_normal((self.fine_depth, self.particles))
        self._fine *= np.sqrt(1.0 / self.fine_depth)

    def increments(self, depth: int) -> np.ndarray:
        """The ``depth × particles`` increments ``B(ℓ/L) - B((ℓ-1)/L)``, ``L = depth``."""
        if not isinstance(depth, (int, np.integer)) or depth < 1 or self.fine_depth % depth:
            raise ParamError(f"parameter 'depth' = {depth!r} is not allowed; allowed: a divisor of "
                             f"the path's fine depth {self.fine_depth}")
        if depth == self.fine_depth:
            return self._fine.copy()
        return self._fine.reshape(depth, self.fine_depth // depth, self.particles).sum(axis=1)

    def values(self, depth: int) -> np.ndarray:
        """``B(ℓ/L)`` for ``ℓ = 0..L`` (``(L+1) × particles``, ``B(0) = 0``)."""
        out = np.zeros((depth + 1, self.particles))
        np.cumsum(self.increments(depth), axis=0, out=out[1:])
        return out
