"""The lean layout of the particle solvers (float32 noise and histories, float64 sums;
:mod:`nfdlib.limits.particles`) against the float64 layout on the same draws: the difference
is rounding, far below Monte Carlo error, and the strong orders of D5.3 do not move."""
from __future__ import annotations

import numpy as np
import pytest

from nfdlib.limits import particles as pt
from nfdlib.limits import true_depth_limit as tdl
from nfdlib.metrics import power_law_fit
from nfdlib.params import ParamError


def _both(P, L, T, d=4, seed=3):
    return [pt.draw_noise(np.random.default_rng(seed), P, L, T, d, dt) for dt in ("float32", "float64")]


def test_lean_noise_is_the_float64_draw_rounded_once():
    lean, full = _both(500, 4, 3)
    assert lean.eps.dtype == np.float32 and full.eps.dtype == np.float64
    assert np.array_equal(lean.u, full.u) and np.array_equal(lean.v, full.v)
    for a, b in ((lean.eps, full.eps), (lean.epsb, full.epsb)):
        assert np.array_equal(a, b.astype(np.float32))
    with pytest.raises(ParamError, match="dtype"):
        pt.draw_noise(np.random.default_rng(0), 10, 2, 2, 2, "float16")


@pytest.mark.parametrize("corrections", [False, True])
def test_lean_solve_agrees_with_float64_far_inside_monte_carlo_error(corrections):
    """f, C, G of the two layouts differ by less than 1% of the Monte Carlo spread of f
    across independent draws (in fact by ~1e-7 relative)."""
    P, L, T = 4096, 8, 5
    X, y = pt.synthetic_task(T, 4, 0)
    lean, full = (pt.solve(X, y, 0.5, nz, "tanh", corrections, "numba") for nz in _both(P, L, T))
    spread = np.std([pt.solve(X, y, 0.5, pt.draw_noise(np.random.default_rng(100 + k), P, L, T, 4),
                              "tanh", corrections, "numba").f for k in range(4)], axis=0, ddof=1)
    assert np.all(np.abs(lean.f - full.f) < 0.01 * spread)
    for k in ("C", "G"):
        np.testing.assert_allclose(getattr(lean, k), getattr(full, k), rtol=1e-5, atol=1e-8)


def test_one_step_depth_limit_lean_agrees_with_float64():
    X, y = pt.synthetic_task(2, 4, 0)
    lean, full = (tdl.solve(X, y, 0.5, nz, "tanh", True, "numba") for nz in _both(4096, 32, 2))
    np.testing.assert_allclose(lean.f, full.f, rtol=1e-5)
    np.testing.assert_allclose(lean.A, full.A, rtol=1e-5, atol=1e-9)


def test_strong_orders_do_not_move():
    """D5.3's strong errors (coarse grids driven by block sums of one fine path) and their
    slope in L are the same in both layouts."""
    X, y = pt.synthetic_task(3, 4, 1)
    Lf, depths = 64, [2, 4, 8, 16]
    slopes, errors = [], []
    for fine in _both(2048, Lf, 3):
        ref = pt.solve(X, y, 0.5, fine, "tanh", False, "numba", keep=(Lf,))
        err = [float(np.mean((pt.solve(X, y, 0.5, pt.coarsen(fine, Lf // L), "tanh", False, "numba",
                                       keep=(L,)).h - ref.h) ** 2)) for L in depths]
        errors.append(err)
        slopes.append(power_law_fit(depths, err).slope)
    np.testing.assert_allclose(errors[0], errors[1], rtol=1e-4)
    assert abs(slopes[0] - slopes[1]) < 1e-3
    assert slopes[0] < -0.5  # the errors do fall with L (the test is not vacuous)


def test_memory_estimate_halves():
    assert pt.solver_bytes(2**18, 64, 16, 1, "float32") < 0.55 * pt.solver_bytes(2**18, 64, 16, 1, "float64")
    assert pt.noise_bytes(2**18, 64, 16, 8, "float32") < 0.51 * pt.noise_bytes(2**18, 64, 16, 8, "float64")
