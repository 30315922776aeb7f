"""The one-step depth limit of the true-backprop limit (nfdlib.limits.true_depth_limit,
book/notes/true_depth_limit.md): backends against the numpy reference on the same draws, the
equation without the reuse drift against the NFD solver, the linear limit -e η_c χ_0 ρ, the
equation on the L-step grid against the exact linear recursion at depth L, the first-order
formula, and parameter errors."""
import math

import numpy as np
import pytest

from nfdlib.limits import particles as pt
from nfdlib.limits import true_depth_limit as tdl
from nfdlib.limits import true_limit as tl
from nfdlib.params import ParamError


def _setup(P=600, N=16, d=5, seed=2, same=True, dtype="float32"):
    X, y = pt.synthetic_task(2, d, seed)
    if same:  # one step on ξ_0, evaluated again at ξ_0
        X, y = X[[0, 0]], y[[0, 0]]
    return X, y, pt.draw_noise(np.random.default_rng(seed), P, N, 2, d, dtype)


@pytest.mark.parametrize("act", ["tanh", "relu", "linear"])
@pytest.mark.parametrize("backend", ["numba", "torch"])
@pytest.mark.parametrize("reuse", [True, False])
def test_backends_agree_with_reference(act, backend, reuse):
    X, y, noise = _setup()
    ref = tdl.solve(X, y, 0.7, noise, act, reuse, "numpy")
    res = tdl.solve(X, y, 0.7, noise, act, reuse, backend, "cpu" if backend == "torch" else "auto")
    if reuse:
        assert np.max(np.abs(ref.Gamma)) > 1e-3
    for k in ("f", "chi", "A", "K", "C01", "h1", "g0"):
        np.testing.assert_allclose(getattr(res, k), getattr(ref, k), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("act", ["tanh", "linear"])
def test_without_reuse_drift_is_nfd(act):
    """reuse=False is the NFD recursion with T = 2 on the same path (f and h_L^{(1)}): an
    identity of exact arithmetic, checked in the float64 layout (the two solvers store
    different intermediate rows, so in float32 they differ by rounding)."""
    X, y, noise = _setup(same=False, dtype="float64")
    a = tdl.solve(X, y, 0.7, noise, act, False, "numpy")
    b = pt.solve(X, y, 0.7, noise, act, False, "numpy", keep=(16,))
    np.testing.assert_allclose(a.f, b.f, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(a.h1, b.h[0, 1], rtol=1e-12, atol=1e-13)


def test_linear_limit_and_exact_recursion():
    """φ = id: on the grid of L steps the equation is the true-limit recursion with exact
    expected derivatives, so its gap equals linear_exact's -κ(1 + 1/L)^{L-1} up to Monte Carlo
    error (here P = 2^15, error about 1%); its L → ∞ value is -e κ. The Stein recursion on the
    same draws has a larger Monte Carlo error, which the tolerance does not need to cover."""
    X, y, noise = _setup(P=2**15, N=32, d=6, seed=4)
    on = tdl.solve(X, y, 0.5, noise, "linear", True, "numba")
    off = tdl.solve(X, y, 0.5, noise, "linear", False, "numba")
    ex_on = tl.linear_exact(X, y, 0.5, 32, True)
    ex_off = tl.linear_exact(X, y, 0.5, 32, False)
    exact = ex_on["f"][1] - ex_off["f"][1]
    kappa = 0.5 * ex_on["chi"][0] * 1.0
    assert exact == pytest.approx(-kappa * (1 + 1 / 32) ** 31, rel=1e-9)
    assert on.f[1] - off.f[1] == pytest.approx(exact, rel=0.05)
    assert tdl.linear_gap(0.5, ex_on["chi"][0], 1.0) == pytest.approx(-math.e * kappa, rel=1e-12)
    # the coefficient path of the Euler scheme of tdl-ode with K = 1, C_k = ρ(1+1/L)^k:
    # A_k = -κ(1+1/L)^{k-1}(1 + (k+1)/L), κ from the run's own χ_0 (Monte Carlo in f_0)
    k, L = np.arange(33), 32
    kap = 0.5 * on.chi[0]
    np.testing.assert_allclose(on.A, -kap * (1 + 1 / L) ** (k - 1) * (1 + (k + 1) / L), rtol=0.02)


def test_depth_limit_converges_to_linear_value():
    """The gap on a fine grid is closer to -e κ than on a coarse one (same path)."""
    X, y, noise = _setup(P=2**14, N=256, d=6, seed=5)
    errs = []
    for m in (64, 1):
        nz = pt.coarsen(noise, m)
        gap = tdl.solve(X, y, 0.5, nz, "linear", True).f[1] - tdl.solve(X, y, 0.5, nz, "linear", False).f[1]
        chi0 = tdl.solve(X, y, 0.5, nz, "linear", False).chi[0]
        errs.append(abs(gap - tdl.linear_gap(0.5, chi0, 1.0)))
    assert errs[1] < errs[0]


def test_first_order_formula():
    """At small η_c the one-step gap over η_c matches -χ_0[ρ(p_0 - 1) + (1/L)Σ C(p - 1)] from the
    NFD kernels (book/notes/true_depth_limit.md, tdl-first-order), tanh."""
    from nfdlib.experiments.nbtl_compute import first_order_gap
    X, y, noise = _setup(P=2**14, N=16, d=6, seed=6)
    eta = 0.02
    on = tdl.solve(X, y, eta, noise, "tanh", True)
    off = pt.solve(X, y, eta, noise, "tanh", False, keep=(0,))
    pred = first_order_gap(off, 1.0, eta)
    assert abs(pred) > 1e-4
    assert (on.f[1] - off.f[1]) / pred == pytest.approx(1.0, abs=0.1)


def test_parameter_errors():
    X, y, noise = _setup()
    with pytest.raises(ParamError, match="T = 2"):
        tdl.solve(np.vstack([X, X[:1]]), np.r_[y, y[:1]], 0.5, noise)
    with pytest.raises(ParamError, match="backend"):
        tdl.solve(X, y, 0.5, noise, backend="jax")
    with pytest.raises(ParamError, match="activation"):
        tdl.solve(X, y, 0.5, noise, activation="gelu")
    with pytest.raises(ParamError, match="eta_c"):
        tdl.solve(X, y, -1.0, noise)
