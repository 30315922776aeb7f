"""P4.1: the Gaussian representation (identity, conditional redraws, coupling) and the
coupled backward kernel on every backend against the numpy reference."""
import math

import numpy as np
import pytest

from nfdlib.experiments import p41_gaussian_repr as p41
from nfdlib.gaussian.init import (coupled_passes, coupled_weights, gia_pair,
                                  redraw_given_forward, representation)
from nfdlib.params import ParamError


def draws(n=24, L=5, d=8, B=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((B, d))
    return (rng.standard_normal((n, d)), rng.standard_normal((L, n, n)), rng.standard_normal(n),
            X * math.sqrt(d) / np.linalg.norm(X, axis=1, keepdims=True),
            rng.standard_normal((L, B, n)))


@pytest.mark.parametrize("backend", ["numba", "torch"])
@pytest.mark.parametrize("act", ["tanh", "relu"])
def test_coupled_backward_matches_reference(backend, act):
    U, W, v, xi, zeta = draws()
    ref = gia_pair("numpy", U, W, v, xi, zeta, act, dtype="float64")
    for dtype, tol in [("float64", 1e-12), ("float32", 1e-5)]:
        out = gia_pair(backend, U, W, v, xi, zeta, act, device="cpu", dtype=dtype)
        for a, b in zip(ref, out):
            assert np.max(np.abs(a - b)) < tol * np.max(np.abs(a))


def test_coupled_weights_structure():
    """W̃ x̂ = ζ and W̃(I - P) = W(I - P): the coupling keeps W's orthogonal part."""
    U, W, v, xi, zeta = draws()
    xs = np.tanh(np.random.default_rng(1).standard_normal((W.shape[0], W.shape[1])))
    Wt = coupled_weights(W, xs, zeta[:, 0])
    for layer in range(W.shape[0]):
        e = xs[layer] / np.linalg.norm(xs[layer])
        Pperp = np.eye(len(e)) - np.outer(e, e)
        assert np.allclose(Wt[layer] @ e, zeta[layer, 0], atol=1e-12)
        assert np.allclose(Wt[layer] @ Pperp, W[layer] @ Pperp, atol=1e-12)


def test_coupled_weights_are_standard_gaussian():
    """Entries of W̃ are N(0,1) and W̃ x̂ is independent of W x̂ (correlation ≈ 0)."""
    rng = np.random.default_rng(2)
    n, L = 64, 40
    W = rng.standard_normal((L, n, n))
    xs = rng.standard_normal((L, n))
    zeta = rng.standard_normal((L, n))
    Wt = coupled_weights(W, xs, zeta)
    N = Wt.size
    assert abs(Wt.mean()) < 4 / math.sqrt(N)
    assert abs(Wt.var() - 1) < 4 * math.sqrt(2 / N)
    e = xs / np.linalg.norm(xs, axis=1, keepdims=True)
    a = np.einsum("lij,lj->li", W, e).ravel()
    b = np.einsum("lij,lj->li", Wt, e).ravel()
    assert abs(np.corrcoef(a, b)[0, 1]) < 4 / math.sqrt(a.size)


def test_redraw_keeps_forward_and_identity():
    rng = np.random.default_rng(3)
    W = rng.standard_normal((3, 16, 16))
    xs = rng.standard_normal((3, 16))
    Wk = redraw_given_forward(W, xs, rng)
    assert np.allclose(np.einsum("lij,lj->li", Wk, xs), np.einsum("lij,lj->li", W, xs), atol=1e-12)
    g = rng.standard_normal(16)
    u = W[0] @ xs[0] / 4.0
    coupling, residual = representation(W[0], xs[0], g, u)
    assert np.allclose(coupling + residual, W[0].T @ g / 4.0, atol=1e-13)
    assert abs(residual @ xs[0]) < 1e-12


def test_identity_fails_for_a_wrong_forward_pass():
    """The identity check is sensitive: perturbing u (the forward increment) breaks it."""
    p = p41.GaussParams.build(profile="smoke", backend="numpy")
    rng = np.random.default_rng(0)
    n, L = p.width, p.depth
    U, W, V = rng.standard_normal((n, p.d)), rng.standard_normal((L, n, n)), rng.standard_normal((n, 1))
    X = np.ones((1, p.d))
    hs, xs, gs = p41._passes(p, {"U": U, "W": W, "V": V}, X)
    assert p41.identity_error(W, hs, xs, gs, "tanh") < 1e-12
    bad = hs.copy()
    bad[1:] += 1e-6 * rng.standard_normal(bad[1:].shape)
    assert p41.identity_error(W, bad, xs, gs, "tanh") > 1e-8


def test_gaussian_tests_reject_wrong_laws():
    rng = np.random.default_rng(4)
    good = p41.gaussian_tests(rng.standard_normal((2000, 20)), 0.01, rng)
    assert all(t["p_value"] >= 0.01 for t in good)
    scaled = p41.gaussian_tests(1.1 * rng.standard_normal((2000, 20)), 0.01, rng)
    assert {t["test"] for t in scaled if t["p_value"] < 0.01} >= {"variance (chi-square)"}
    heavy = rng.standard_t(3, (2000, 20)) / math.sqrt(3)
    assert any(t["p_value"] < 0.01 for t in p41.gaussian_tests(heavy, 0.01, rng)
               if t["test"].startswith("shape"))
    corr = rng.standard_normal((2000, 20))
    corr[:, 1] = 0.6 * corr[:, 0] + 0.8 * corr[:, 1]
    assert any(t["p_value"] < 0.01 for t in p41.gaussian_tests(corr, 0.01, rng)
               if t["test"].startswith("covariance"))


def test_p41_smoke_reproduces_and_check_can_fail():
    from nfdlib.experiments import execute
    res = execute("p41_gaussian_repr", profile="smoke")
    (rec,) = res["claims"]
    assert rec["verdict"] == "reproduced"
    assert res["data"]["identity_max_rel_err"] < 1e-10
    p = p41.GaussParams.build(profile="smoke")
    broken = dict(res["data"], identity_max_rel_err=1e-6)
    assert p41.check(broken, p)[0]["verdict"] == "not reproduced"
    rejected = dict(res["data"], tests={"true_residual": [dict(t, p_value=1e-5) for t in
                                                           res["data"]["tests"]["true_residual"]]})
    assert p41.check(rejected, p)[0]["verdict"] == "partly reproduced"


def test_bad_parameters():
    with pytest.raises(ParamError, match="width"):
        p41.GaussParams.build(width=2)
    with pytest.raises(ParamError, match="activation"):
        p41.GaussParams.build(activation="sigmoid")
    with pytest.raises(ParamError, match="backend"):
        coupled_passes("jax", None, None, None, None, None, "tanh")
