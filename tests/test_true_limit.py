"""NB-E1: the true-backprop limit (NFD + reuse corrections). Backends against the numpy
reference, corrections off = the NFD solver, Stein's lemma on a known function, the linear
closed form and exact recursion, reused/decoupled networks against the two limits, parameter
errors, and a check that fails on data with the wrong signature."""
import copy
import math

import numpy as np
import pytest

from nfdlib.experiments import e1_true_limit as e1
from nfdlib.experiments import execute
from nfdlib.limits import nfd
from nfdlib.limits import true_limit as tl
from nfdlib.model import NetworkSpec
from nfdlib.network import Network
from nfdlib.params import ParamError


def _task(T=3, d=5, P=500, L=5, seed=3):
    X, y = nfd.synthetic_task(T, d, seed)
    return X, y, nfd.draw_noise(np.random.default_rng(seed), P, L, T, d)


@pytest.mark.parametrize("act", ["tanh", "relu"])
@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_backends_agree_with_reference(act, backend):
    X, y, noise = _task()
    ref = tl.solve(X, y, 0.6, noise, act, True, "numpy", keep=(0, 2, 5))
    res = tl.solve(X, y, 0.6, noise, act, True, backend, "cpu" if backend == "torch" else "auto", keep=(0, 2, 5))
    assert np.max(ref.corr_fwd[:, 1:]) > 0 and np.max(ref.corr_bwd) > 0
    for k in ("f", "C", "G", "h", "g", "corr_fwd", "corr_bwd"):
        np.testing.assert_allclose(getattr(res, k), getattr(ref, k), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("corrections", [True, False])
def test_numba_chunks_and_row_blocks_agree_with_reference(corrections):
    """Above PARALLEL_MIN_P the numba kernel splits the particles into chunks (the last one
    shorter here) and sums over earlier steps four rows at a time: T = 7 uses full blocks
    and remainders."""
    X, y, noise = _task(T=7, P=tl.PARALLEL_MIN_P + 37, L=3)
    ref = tl.solve(X, y, 0.6, noise, "tanh", corrections, "numpy", keep=(0, 3))
    res = tl.solve(X, y, 0.6, noise, "tanh", corrections, "numba", keep=(0, 3))
    for k in ("f", "C", "G", "h", "g", "corr_fwd", "corr_bwd"):
        np.testing.assert_allclose(getattr(res, k), getattr(ref, k), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_corrections_switch(backend):
    """corrections=False (the NFD solver, nfd.solve) leaves ż, ẑ̇ at zero; switched on they are
    non-zero from step 1 and change the trajectory."""
    X, y, noise = _task(T=4)
    off = tl.solve(X, y, 0.6, noise, "tanh", False, backend)
    on = tl.solve(X, y, 0.6, noise, "tanh", True, backend)
    assert not np.any(off.corr_fwd) and not np.any(off.corr_bwd)
    assert np.all(on.corr_fwd[:, 1:] > 0) and np.all(on.corr_bwd > 0)
    assert np.max(np.abs(on.f - off.f)) > 1e-3


def test_stein_solve_recovers_expected_derivatives():
    """F = sin(z_0) + z_1² + 3 z_2 with z = R ε: E[∂F/∂z] = (e^{-C00/2}, 0, 3) from E[F ε]."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((3, 3))
    K = A @ A.T + 0.3 * np.eye(3)
    R = np.zeros((3, 3))
    for s in range(3):
        nfd.chol_row(R, K, s)
    eps = rng.standard_normal((3, 400_000))
    z = R @ eps
    F = np.sin(z[0]) + z[1] ** 2 + 3 * z[2]
    D = tl.stein_solve(R, eps @ F / eps.shape[1], 3)
    np.testing.assert_allclose(D, [math.exp(-K[0, 0] / 2), 0.0, 3.0], atol=0.03)


def test_linear_closed_form_and_exact_recursion():
    X, y = nfd.synthetic_task(2, 6, 4)
    gram01 = X[0] @ X[1] / 6
    for L in (1, 3, 8):
        on, off = tl.linear_exact(X, y, 0.4, L, True), tl.linear_exact(X, y, 0.4, L, False)
        assert on["f"][0] == off["f"][0] == 0.0
        assert on["f"][1] - off["f"][1] == pytest.approx(
            float(e1.one_step_closed_form(0.4, -y[0], gram01, L)), rel=1e-10, abs=1e-13)


def test_linear_particles_approach_exact_recursion():
    X, y = nfd.synthetic_task(3, 5, 2)
    ex = tl.linear_exact(X, y, 0.5, 3, True)["f"]
    errs = []
    for P in (2**8, 2**14):
        e = [np.max(np.abs(tl.solve(X, y, 0.5, nfd.draw_noise(np.random.default_rng([P, r]), P, 3, 3, 5),
                                    "linear", True, "numba").f - ex)) for r in range(4)]
        errs.append(np.mean(e))
    assert errs[1] < errs[0] / 3  # P^{-1/2}: a factor 8 expected


def test_reused_network_follows_true_limit_decoupled_follows_nfd():
    """Linear, L = 2, T = 3: the reused network's f is nearer the true limit, the decoupled
    network's nearer NFD (means over seeds at n = 768)."""
    T, d, L, eta = 3, 5, 2, 0.5
    X, y = nfd.synthetic_task(T, d, 6)
    on, off = tl.linear_exact(X, y, eta, L, True)["f"], tl.linear_exact(X, y, eta, L, False)["f"]
    assert np.max(np.abs(on - off)) > 0.05
    for mode, near, far in (("reused", on, off), ("decoupled", off, on)):
        fs = []
        for seed in range(3):
            net = Network(NetworkSpec(width=768, depth=L, activation="linear", d=d, backward=mode,
                                      backend="numpy", dtype="float64"), seed)
            f = []
            for s in range(T):
                f.append(net.predict(X[s:s + 1])[0, 0])
                net.step(X[s:s + 1], y[s:s + 1], eta, loss="mse")
            fs.append(f)
        f = np.mean(fs, axis=0)
        assert np.sqrt(np.mean((f - near) ** 2)) < 0.5 * np.sqrt(np.mean((f - far) ** 2)), mode


def test_parameter_errors():
    X, y, noise = _task()
    with pytest.raises(ParamError, match="corrections"):
        tl.solve(X, y, 0.5, noise, "tanh", "yes")
    with pytest.raises(ParamError, match="activation"):
        tl.solve(X, y, 0.5, noise, "gelu")
    with pytest.raises(ParamError, match="eta_c"):
        tl.solve(X, y, -1.0, noise)
    with pytest.raises(ParamError, match="depth"):
        tl.linear_exact(X, y, 0.5, 0)
    with pytest.raises(ParamError, match="depths"):
        e1.E1Params.build(profile="smoke", depths=[1, 3, 8])
    with pytest.raises(ParamError, match="widths"):
        e1.E1Params.build(profile="smoke", widths=[64, 32, 128])
    with pytest.raises(ParamError, match="fit_min_depth"):
        e1.E1Params.build(profile="smoke", fit_min_depth=8)


def test_smoke_run_and_check_can_fail():
    smoke = execute("e1_true_limit", profile="smoke")  # results under the test's tmp folder
    data, p = smoke["data"], e1.E1Params.build(profile="smoke")
    assert data["nfd_match"] < 1e-9
    assert smoke["claims"][0]["id"] == "NB-E1"
    Ls = np.array(data["depth"]["depths"], float)
    good = copy.deepcopy(data)
    good["diverged"] = []
    for k in ("true", "nfd"):  # an ideal width study: error to the true limit ∝ n^{-1/2}, to NFD flat
        for act in e1.WIDTH_ACTS:
            n = np.array(good["width"]["widths"], float)
            e = good["width"][f"{act}_{k}"]
            e["f_err"] = list(0.3 * n**-0.5 * (1 + 0.01 * np.sin(n))) if k == "true" else [0.2] * len(n)
            e["f_se"] = [1e-3] * len(n)
            e["k_err"], e["k_se"] = list(0.3 * n**-0.5 * (1 + 0.01 * np.cos(n))), [1e-3] * len(n)
            good["width"][f"{act}_mse_gap"], good["width"][f"{act}_mse_gap_se"] = 0.01, 1e-3
    good["width"]["deep"].update(mse_gap=0.01, mse_gap_se=1e-3)
    lin = good["linear"]
    P = np.array(lin["mc_particles"], float)
    lin["mc_f_rmse"], lin["mc_f_se"] = list(P**-0.5 * (1 + 0.01 * np.sin(P))), [1e-4] * len(P)
    decay = copy.deepcopy(good)
    for k in ("df", "dK", "dW"):
        decay["depth"][k] = list(0.1 / Ls * (1 + 0.01 * np.sin(Ls)))
        decay["depth"][f"{k}_se"] = [1e-4] * len(Ls)
    decay["linear"]["one_step_exact"] = list(0.1 / Ls * (1 + 0.01 * np.cos(Ls)))
    decay["linear"]["one_step_closed"] = decay["linear"]["one_step_exact"]
    rec = e1.check(decay, p)[0]
    assert rec["verdict"] == "reproduced", rec["validation"]
    flat = copy.deepcopy(decay)
    for k in ("df", "dK", "dW"):
        flat["depth"][k] = list(0.1 * (1 + 0.01 * np.sin(Ls)))
    flat["linear"]["one_step_exact"] = list(0.1 * (1 + 0.01 * np.cos(Ls)))
    flat["linear"]["one_step_closed"] = flat["linear"]["one_step_exact"]
    assert e1.check(flat, p)[0]["verdict"] == "not reproduced"
    broken = copy.deepcopy(decay)  # the solver misses the network: no verdict on depth
    broken["width"]["tanh_true"]["f_err"] = [0.2] * len(broken["width"]["widths"])
    broken["width"]["tanh_mse_gap"] = 0.0
    assert e1.check(broken, p)[0]["verdict"] == "inconclusive"
    fig = e1.plot(data, p)
    assert len(fig.axes) == 4
