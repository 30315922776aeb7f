"""NFD particle solver (D5.3) and the §5 experiments: backends against the numpy reference,
T = 1 against the initialisation chain, the linear case against an exact Gaussian
computation, kernel structure, shared Brownian paths, parameter errors, and checks that
fail on data with the wrong signature."""
import math

import numpy as np
import pytest

from nfdlib.experiments import a54_nondegeneracy as a54
from nfdlib.experiments import d53_nfd as d53
from nfdlib.experiments import t56_convergence as t56
from nfdlib.limits import fbsde, nfd
from nfdlib.params import ParamError
from nfdlib.store import RunStore


def _task(T=4, d=5, P=600, L=6, seed=1, dtype="float32"):
    X, y = nfd.synthetic_task(T, d, seed)
    return X, y, nfd.draw_noise(np.random.default_rng(seed), P, L, T, d, dtype)


@pytest.mark.parametrize("act", ["tanh", "relu"])
@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_backends_agree_with_reference(act, backend):
    X, y, noise = _task()
    ref = nfd.solve(X, y, 0.7, noise, act, "numpy", keep=(0, 3, 6))
    res = nfd.solve(X, y, 0.7, noise, act, backend, "cpu" if backend == "torch" else "auto", keep=(0, 3, 6))
    for k in ("f", "C", "G", "h", "g"):
        np.testing.assert_allclose(getattr(res, k), getattr(ref, k), rtol=1e-9, atol=1e-11)


def test_one_step_is_the_initialisation_chain():
    """T = 1: no training term; the recursion is the Euler chain of Thm. 4.3 (an identity of
    exact arithmetic: checked in the float64 layout, which rounds nothing it stores)."""
    X, y, noise = _task(T=1, L=8, dtype="float64")
    L = 8
    res = nfd.solve(X, y, 0.9, noise, "tanh", "numba", keep=tuple(range(L + 1)))
    h0 = noise.u @ X[0] / math.sqrt(X.shape[1])
    hs, gs = fbsde.solve_numpy(h0, noise.v, noise.eps[:, 0] / math.sqrt(L), noise.epsb[:, 0] / math.sqrt(L), "tanh")
    np.testing.assert_allclose(res.h[:, 0], hs, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.g[:, 0], gs, rtol=1e-10, atol=1e-12)
    assert res.f[0] == pytest.approx(np.mean(gs[L] * hs[L]), abs=1e-12)


def linear_exact(X, y, eta, L):
    """The linear NFD (φ = id) exactly: every h_ℓ^{(s)}, g_ℓ^{(s)} is a linear functional of
    the independent standard normals (u, v, ε, ε̂), kept as a coefficient vector; every
    expectation is an inner product. Same recursion as D5.3 with P = ∞."""
    T, d = X.shape
    D = d + 1 + 2 * L * T
    e = np.eye(D)
    fwd = lambda c, r: d + 1 + c * T + r  # noqa: E731
    bwd = lambda c, r: d + 1 + L * T + c * T + r  # noqa: E731
    h = np.zeros((L + 1, T, D))
    g = np.zeros((L + 1, T, D))
    C, G = np.zeros((L, T, T)), np.zeros((L, T, T))
    f, chi = np.zeros(T), np.zeros(T)
    gram = X @ X.T / d
    for s in range(T):
        h[0, s, :d] = X[s] / math.sqrt(d)
        h[0, s] -= sum(eta * chi[r] * gram[r, s] * g[0, r] for r in range(s))
        for layer in range(1, L + 1):
            c = layer - 1
            C[c, :s + 1, s] = C[c, s, :s + 1] = h[c, :s + 1] @ h[c, s]
            Rs = np.linalg.cholesky(C[c, :s + 1, :s + 1])[s]   # z^{(s)} = Σ_r R[s,r] ε^{(r)}
            z = sum(Rs[r] * e[fwd(c, r)] for r in range(s + 1))
            h[layer, s] = h[c, s] + z / math.sqrt(L) - sum(eta / L * chi[r] * C[c, r, s] * g[layer, r] for r in range(s))
        g[L, s] = e[d] - sum(eta * chi[r] * h[L, r] for r in range(s))
        f[s] = g[L, s] @ h[L, s]
        chi[s] = f[s] - y[s]
        for layer in range(L, 0, -1):
            c = layer - 1
            G[c, :s + 1, s] = G[c, s, :s + 1] = g[layer, :s + 1] @ g[layer, s]
            Rs = np.linalg.cholesky(G[c, :s + 1, :s + 1])[s]
            zb = sum(Rs[r] * e[bwd(c, r)] for r in range(s + 1))
            g[c, s] = g[layer, s] + zb / math.sqrt(L) - sum(eta / L * chi[r] * G[c, r, s] * h[c, r] for r in range(s))
    return f, C, G


def test_linear_exact_oracle_at_one_step():
    """The oracle itself: for T = 1, C_ℓ = (1 + 1/L)^{ℓ-1}, G_ℓ = (1 + 1/L)^{L-ℓ}."""
    X, y = nfd.synthetic_task(1, 3, 0)
    L = 5
    _, C, G = linear_exact(X, y, 0.5, L)
    ell = np.arange(1, L + 1)
    np.testing.assert_allclose(C[:, 0, 0], (1 + 1 / L) ** (ell - 1), rtol=1e-12)
    np.testing.assert_allclose(G[:, 0, 0], (1 + 1 / L) ** (L - ell), rtol=1e-12)


def test_linear_particles_match_exact_kernels():
    """Large P: the particle system's f and kernels agree with the exact linear computation
    within 5 Monte-Carlo standard errors (scale |K|·√(2/P))."""
    T, d, L, P = 3, 4, 4, 2**16
    X, y = nfd.synthetic_task(T, d, 2)
    f_ex, C_ex, G_ex = linear_exact(X, y, 0.6, L)
    noise = nfd.draw_noise(np.random.default_rng(3), P, L, T, d)
    res = nfd.solve(X, y, 0.6, noise, "linear", "numba")
    tol = 5 * math.sqrt(2 / P)
    assert np.max(np.abs(res.C - C_ex)) < tol * np.max(np.abs(C_ex))
    assert np.max(np.abs(res.G - G_ex)) < tol * np.max(np.abs(G_ex))
    assert np.max(np.abs(res.f - f_ex)) < tol * max(1.0, np.max(np.abs(f_ex)))
    # and the oracle can tell a wrong recursion apart: η_c off by 20 %
    f_bad, C_bad, _ = linear_exact(X, y, 0.72, L)
    assert np.max(np.abs(res.f - f_bad)) > tol * max(1.0, np.max(np.abs(f_ex)))


def test_kernels_symmetric_psd():
    X, y, noise = _task(T=6, P=2000)
    res = nfd.solve(X, y, 0.5, noise, "tanh", "numba")
    for K in (res.C, res.G):
        np.testing.assert_allclose(K, np.swapaxes(K, 1, 2), atol=0)
        assert np.linalg.eigvalsh(K).min() > -1e-12
    lam = nfd.min_eigenvalues(res.G)
    assert lam.shape == (6, 6) and np.all(lam[:, 0] == res.G[:, 0, 0])


def test_coarsen_shares_the_path_and_converges():
    X, y, fine = _task(T=3, P=3000, L=32)
    one = nfd.coarsen(fine, 32)
    # the float32 coarse normal is the exact scaled sum rounded once (relative error <= 2^-24)
    np.testing.assert_allclose(one.eps[0], fine.eps.sum(0, dtype=np.float64) / math.sqrt(32), rtol=2.0**-24, atol=0)
    assert nfd.coarsen(fine, 1).eps is not fine.eps and np.array_equal(nfd.coarsen(fine, 1).eps, fine.eps)
    with pytest.raises(ParamError, match="factor"):
        nfd.coarsen(fine, 3)
    ref = nfd.solve(X, y, 0.5, fine, "tanh", "numba", keep=(32,))
    errs = [np.mean((nfd.solve(X, y, 0.5, nfd.coarsen(fine, 32 // L), "tanh", "numba", keep=(L,)).h - ref.h) ** 2)
            for L in (2, 4, 8)]
    assert errs[0] > errs[1] > errs[2]


def test_bad_input_is_rejected_before_computing():
    X, y, noise = _task()
    with pytest.raises(ParamError, match="activation"):
        nfd.solve(X, y, 0.5, noise, "sigmoid")
    with pytest.raises(ParamError, match="Xi"):
        nfd.solve(X[:2], y[:2], 0.5, noise)
    with pytest.raises(ParamError, match="keep"):
        nfd.solve(X, y, 0.5, noise, keep=(7,))
    with pytest.raises(ParamError, match="eta_c"):
        nfd.solve(X, y, -1.0, noise)
    with pytest.raises(ParamError, match="GiB"):
        nfd.draw_noise(np.random.default_rng(0), 2**40, 64, 16, 8)
    with pytest.raises(ParamError, match="particles"):
        d53.D53Params.build(profile="smoke", particles=[64, 128])
    with pytest.raises(ParamError, match="GiB"):
        a54.A54Params.build(particles=[2**12, 2**13, 2**14, 2**36])
    with pytest.raises(ParamError, match="particles"):
        a54.A54Params.build(particles=[2**14, 2**12, 2**13, 2**15])  # not increasing


def _d53_data(mc_slope, strong_slope):
    P = np.array([256, 1024, 4096, 16384.0])
    L = np.array([2, 4, 8, 16.0])
    rng = np.random.default_rng(0)
    noise = lambda n: np.exp(0.02 * rng.standard_normal(n))  # noqa: E731
    return {"mc": {"particles": P.tolist(), "f_rmse": (P ** mc_slope * noise(4)).tolist(),
                   "f_rmse_se": (0.05 * P ** mc_slope).tolist(), "kernel_rel": (P ** mc_slope * noise(4)).tolist(),
                   "kernel_rel_se": (0.05 * P ** mc_slope).tolist()},
            "strong": {"depths": L.tolist(), "h_err": (L ** strong_slope * noise(4)).tolist(),
                       "g_err": (L ** strong_slope * noise(4)).tolist(), "f_err": (L ** strong_slope).tolist()},
            "diverged": []}


def test_d53_check_can_fail():
    p = d53.D53Params.build(profile="smoke")
    assert d53.check(_d53_data(-0.5, -1.0), p)[0]["verdict"] == "verified"
    assert d53.check(_d53_data(-0.2, -0.3), p)[0]["verdict"] == "not verified"
    assert d53.check(_d53_data(-0.5, -0.3), p)[0]["verdict"] == "not verified"  # no "partly"


def test_a54_runs_and_its_check_can_fail(tmp_path):
    p = a54.A54Params.build(profile="smoke", eta_cs=[0.5, 0.0], n_boot=50)
    data = a54.run(p, RunStore("a54_test", p.to_dict(), root=tmp_path))
    # η_c = 0: G_ℓ^{(r,s)} = E[v²] for all r, s at t = 1, a rank-one kernel
    assert max(max(r) for r in data["sweep"][1]["min_G"]) < 1e-10 and data["fits"][0]["G"]["y_inf"] > 1e-4
    rec = a54.check(data, p)
    assert [r["verdict"] for r in rec[:2]] == ["partly reproduced"] * 2 and rec[0]["status"][1] == "degenerate"
    assert rec[2]["activation"] == "linear" and rec[2]["verdict"] == "reproduced"
    swapped = dict(data, **{k: data[k][::-1] for k in ("eta_cs", "sweep", "diverged_at", "fits")})
    assert a54.check(swapped, p)[0]["verdict"] == "not reproduced"


def _t56_data(width_slope, depth_slope):
    n = np.array([64, 128, 256, 512.0])
    L = np.array([2, 4, 8, 16.0])
    rows = lambda s: {"f_mse": (n ** s).tolist(), "f_mse_se": (0.05 * n ** s).tolist(),  # noqa: E731
                      "kernel_err": (n ** s).tolist(), "bias2_same": [1e-3] * 4}
    drows = lambda s: {"bias2_ref": (L ** s * np.exp(0.02 * np.arange(4))).tolist()}  # noqa: E731
    return {"widths": n.tolist(), "depths": L.tolist(), "diverged": [],
            "width": {"decoupled": rows(width_slope), "reused": rows(width_slope)},
            "depth": {"decoupled": drows(depth_slope), "reused": drows(depth_slope)}}


def test_t56_check_can_fail():
    p = t56.T56Params.build(profile="smoke")
    def verdicts(width_slope, depth_slope):
        return {r["id"]: r["verdict"] for r in t56.check(_t56_data(width_slope, depth_slope), p)
                if r["id"].startswith("T5.6")}
    assert verdicts(-1.0, -1.2) == {"T5.6-decoupled": "reproduced", "T5.6-true": "reproduced"}
    assert verdicts(-1.0, 0.0) == {"T5.6-decoupled": "reproduced", "T5.6-true": "not reproduced"}
    assert verdicts(-0.3, -1.2) == {"T5.6-decoupled": "not reproduced", "T5.6-true": "reproduced"}
    diverged = dict(_t56_data(-1.0, 0.0), diverged=["w64_L2_reused_0"])
    assert [r["verdict"] for r in t56.check(diverged, p)][:2] == ["reproduced", "inconclusive"]


def test_f1_train_check_can_fail():
    p = t56.T56Params.build(profile="smoke")
    f1 = {(w, d): next(r for r in t56.check(_t56_data(w, d), p) if r["id"] == "F1-train")["verdict"]
          for w, d in ((-1.0, -1.2), (-1.0, 0.5), (0.5, -1.2))}
    assert f1 == {(-1.0, -1.2): "reproduced", (-1.0, 0.5): "not reproduced", (0.5, -1.2): "not reproduced"}


def test_t56_network_trajectory_starts_from_its_own_output():
    """The recorded f_s is the network's output on ξ_s before the step s update."""
    p = t56.T56Params.build(profile="smoke")
    f, C, G, hL = t56.train_network(p, 16, 2, "decoupled", 0)
    assert f.shape == (p.steps,) and C.shape == G.shape == (2, p.steps, p.steps)
    np.testing.assert_allclose(C, np.swapaxes(C, 1, 2))


def test_a54_reports_a_diverged_learning_rate_and_leaves_it_out():
    """A trajectory that blew up is 'diverged at step k', not 'degenerate', and does not
    decide the verdict."""
    p = a54.A54Params.build(profile="smoke", n_boot=50)
    P = [256, 512, 1024, 2048]
    rng = np.random.default_rng(0)
    good = {"min_C": [[0.03 + 0.1 / q + 1e-4 * rng.standard_normal() for _ in range(2)] for q in P],
            "min_G": [[1e-3 + 0.1 / q + 1e-5 * rng.standard_normal() for _ in range(2)] for q in P],
            "max_C": [[1.0] * 2] * 4, "max_G": [[1.0] * 2] * 4, "pred": [[2e-3] * 2] * 4, "diverged_at": None}
    blown = dict(good, min_G=[[-3e54] * 2] * 4, max_G=[[1e120] * 2] * 4, diverged_at=2)
    data = {"eta_cs": [0.5, 0.1, 1.0], "particles": P, "reps": 2, "sweep": [good, good, blown],
            "diverged_at": [None, None, 2]}
    rec = a54.check_tanh(data, p)
    assert rec[0]["status"] == ["positive", "positive", "diverged at step 2"]
    assert rec[0]["verdict"] == "reproduced" and rec[0]["measured"]["eta_c=1"] == {"status": "diverged at step 2"}
    data = dict(data, sweep=data["sweep"][::-1], diverged_at=[2, None, None])  # the default η_c diverged
    assert a54.check_tanh(data, p)[0]["verdict"] == "inconclusive"
    assert nfd.divergence_step([0.1, 5e200, None]) == 2 and nfd.divergence_step([1.0]) is None
