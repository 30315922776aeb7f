"""T4.3: Brownian paths, the FBSDE particle solver (backends vs the numpy reference), exact
moments, the claim checks (which must fail on data with the wrong signature) and the CLI
experiment at the smoke profile."""
import math

import numpy as np
import pytest

from nfdlib.experiments import execute, t43_fbsde_init as t43
from nfdlib.limits import fbsde
from nfdlib.limits.brownian import BrownianPath
from nfdlib.params import ParamError


def test_brownian_path_is_shared_across_grids():
    path = BrownianPath(50, 64, np.random.default_rng(0))
    fine, coarse = path.increments(64), path.increments(8)
    np.testing.assert_allclose(coarse, fine.reshape(8, 8, 50).sum(axis=1), atol=1e-14)
    np.testing.assert_allclose(path.values(8)[-1], path.values(64)[-1], atol=1e-12)
    # Brownian scaling: Var(B(1)) = 1, increments of variance 1/L
    big = BrownianPath(20000, 16, 1)
    assert abs(big.values(4)[-1].var() - 1) < 0.05
    assert abs(big.increments(4).var() - 0.25) < 0.01
    with pytest.raises(ParamError, match="depth"):
        path.increments(12)
    with pytest.raises(ParamError, match="particles"):
        BrownianPath(0, 8, 0)


@pytest.mark.parametrize("backend", ["numba", "torch"])
@pytest.mark.parametrize("act", ["tanh", "relu", "linear"])
def test_kernels_agree_with_numpy_reference(backend, act):
    rng = np.random.default_rng(3)
    P, L = 300, 17
    h0, v = 2 * rng.standard_normal(P), rng.standard_normal(P)
    dB, dBt = rng.standard_normal((L, P)) / math.sqrt(L), rng.standard_normal((L, P)) / math.sqrt(L)
    ref = fbsde.solve(h0, v, dB, dBt, act, "numpy")
    out = fbsde.solve(h0, v, dB, dBt, act, backend, "cpu")
    for a, b in zip(out, ref):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_solver_rejects_bad_input():
    z = np.zeros((4, 3))
    with pytest.raises(ParamError, match="backend"):
        fbsde.solve(np.zeros(3), np.zeros(3), z, z, "tanh", "jax")
    with pytest.raises(ParamError, match="activation"):
        fbsde.solve(np.zeros(3), np.zeros(3), z, z, "gelu")
    with pytest.raises(ParamError, match="dB"):
        fbsde.solve(np.zeros(2), np.zeros(3), z, z, "tanh")
    with pytest.raises(ParamError, match="device"):
        fbsde.solve(np.zeros(3), np.zeros(3), z, z, "tanh", "numba", "cuda")


def test_exact_moments():
    q, p = fbsde.chain_moments("relu", 8)
    assert q[-1] == pytest.approx((1 + 1 / 16) ** 8, rel=1e-12)
    assert p[0] == pytest.approx((1 + 1 / 16) ** 8, rel=1e-12)
    q1, p0 = fbsde.sde_moments("relu", [1.0, 0.0])
    assert q1[0] == pytest.approx(math.exp(0.5)) and p0[1] == pytest.approx(math.exp(0.5))
    # tanh: the ODE solution is the limit of the exact chain, at rate 1/L
    (qs,), (ps,) = (x[[0]] for x in fbsde.sde_moments("tanh", [1.0]))
    gaps = [abs(fbsde.chain_moments("tanh", L)[0][-1] - qs) for L in (16, 32, 64)]
    assert gaps[0] / gaps[1] == pytest.approx(2, rel=0.05) and gaps[1] / gaps[2] == pytest.approx(2, rel=0.05)
    assert abs(fbsde.chain_moments("tanh", 512)[1][0] - fbsde.sde_moments("tanh", [0.0])[1][0]) < 1e-3
    # linear activation: q(t) = e^t
    assert fbsde.sde_moments("linear", [1.0])[0][0] == pytest.approx(math.e)


def test_relu_moments_within_three_standard_errors():
    """Particle moments of the ReLU chain vs the closed form q_L = p_0 = (1 + 1/(2L))^L."""
    for L in (4, 32):
        reps = [fbsde.simulate(4096, L, "relu", np.random.default_rng([7, L, r])) for r in range(8)]
        h2 = [np.mean(hs[-1] ** 2) for hs, _ in reps]
        g2 = [np.mean(gs[0] ** 2) for _, gs in reps]
        exact = (1 + 1 / (2 * L)) ** L
        for x in (h2, g2):
            assert abs(np.mean(x) - exact) <= 3 * np.std(x, ddof=1) / math.sqrt(len(x))


def _strong_rows(h_order, g_order, noise=0.02, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for L in [4, 8, 16, 32, 64, 128, 256, 512]:
        h, g = 1e-3 * L ** -h_order, 0.1 * L ** -g_order
        rows.append({"depth": L, "activation": "tanh", "h_mse": h * (1 + noise * rng.standard_normal()),
                     "h_se": noise * h, "g_mse": g * (1 + noise * rng.standard_normal()), "g_se": noise * g})
    return rows


def _moments(shift_se=0.0):
    q, p = fbsde.chain_moments("relu", 16)
    return [{"depth": 16, "activation": "relu", "E_h2_at_1": q[-1] + shift_se * 0.01, "E_h2_se": 0.01,
             "E_g2_at_0": p[0], "E_g2_se": 0.01, "chain_q_L": q[-1], "chain_p_0": p[0]}]


def test_t43_check_passes_on_the_predicted_signature():
    rec = t43.check_t43({"moments": _moments(1.0), "strong_error": _strong_rows(2.0, 1.0)})
    assert rec["verdict"] == "reproduced"
    assert rec["measured"]["h_order_tanh"] == pytest.approx(2.0, abs=0.1)


def test_t43_check_fails_on_wrong_rate_or_moments():
    slow_g = t43.check_t43({"moments": _moments(), "strong_error": _strong_rows(2.0, 0.5)})
    assert slow_g["verdict"] != "reproduced" and not slow_g["g_bound_ok"]
    both = t43.check_t43({"moments": _moments(), "strong_error": _strong_rows(0.5, 0.5)})
    assert both["verdict"] == "not reproduced"
    flat = t43.check_t43({"moments": _moments(), "strong_error": _strong_rows(2.0, 0.0)})
    assert not flat["g_bound_ok"]
    off = t43.check_t43({"moments": _moments(10.0), "strong_error": _strong_rows(2.0, 1.0)})
    assert off["verdict"] != "reproduced" and not off["moments_ok"]


# F1's check (debiased W2², fits in n and L) is tested in test_decisive_estimators.py.


def test_params_rejected_before_work():
    with pytest.raises(ParamError, match="strong_depths"):
        t43.FBSDEParams.build(profile="smoke", strong_depths=[3, 4, 8])
    with pytest.raises(ParamError, match="widths"):
        t43.FBSDEParams.build(profile="smoke", widths=[48])
    with pytest.raises(ParamError, match="activations"):
        t43.FBSDEParams.build(activations=["gelu"])
    with pytest.raises(ParamError, match="unknown"):
        t43.FBSDEParams.build(width=3)


def test_smoke_run_and_resume(tmp_path):
    res = execute("t43_fbsde_init", root=tmp_path, profile="smoke", moment_depths=[4], strong_depths=[4, 8, 16],
                  widths=[16, 32], depths=[2, 4, 8], fig1_reps=2, activations=["relu"], fig1_activation="relu", inputs=1)
    data = res["data"]
    assert {"depth", "activation", "E_h2_at_1", "E_g2_at_0"} <= set(data["moments"][0])
    assert {"depth", "h_mse", "g_mse"} <= set(data["strong_error"][0])
    assert [c["id"] for c in res["claims"]] == ["T4.3", "F1"]
    again = execute("t43_fbsde_init", root=tmp_path, profile="smoke", moment_depths=[4], strong_depths=[4, 8, 16],
                    widths=[16, 32], depths=[2, 4, 8], fig1_reps=2, activations=["relu"], fig1_activation="relu", inputs=1)
    assert again["data"] == data
    fig = t43.plot(data, path=tmp_path)
    assert (tmp_path / "fig1_init.png").exists() and fig is not None
    t43.plot_rates(data, path=tmp_path)
    assert (tmp_path / "fbsde_rates.pdf").exists()


def test_relu_fig1_needs_single_input():
    with pytest.raises(ParamError, match="inputs"):
        t43.FBSDEParams.build(profile="smoke", fig1_activation="relu", inputs=8)


def test_chain_samples_hold_one_chunk_at_a_time(traced_peak):
    """A chain sample of many chunks keeps only each chunk's end values: its peak memory is
    one chunk's particle system plus the two outputs, not every chunk's histories."""
    size, depth, chunk = 8 * 4096, 64, 4096
    one_system = t43.CHAIN_ARRAYS * 8 * (depth + 1) * chunk
    t43._chain_samples(chunk, 2, "tanh", np.random.default_rng(0), "numpy", "cpu", chunk=chunk)
    (h, g), peak = traced_peak(t43._chain_samples, size, depth, "tanh", np.random.default_rng(0),
                               "numpy", "cpu", chunk=chunk)
    assert h.shape == g.shape == (size,) and np.all(np.isfinite(h)) and np.all(np.isfinite(g))
    assert one_system < peak < 1.5 * one_system + 2 * 8 * size


def test_depth_error_memory_counts_the_reference_chain():
    """The depth error's reference chain (ref_depth steps) is what its memory check sizes."""
    with pytest.raises(ParamError, match="depth-error particle systems"):
        t43.FBSDEParams.build(profile="smoke", ref_depth=2**22, depth_particles=2**16)


def test_network_samples_hold_one_network_at_a_time(traced_peak):
    """Pooling several networks' coordinates holds one network (its weights and one pass) at a
    time: the peak memory of four networks is that of one."""
    def samples(count):
        return t43._network_samples(128, 64, count, 2, "tanh", "float64", "numpy", "cpu",
                                    np.random.default_rng(0))

    t43._network_samples(128, 2, 1, 2, "tanh", "float64", "numpy", "cpu", np.random.default_rng(0))
    _, one = traced_peak(samples, 1)
    (h, g), four = traced_peak(samples, 4)
    assert h.shape == g.shape == (4 * 128 * 2,) and h.dtype == g.dtype == np.float64
    assert 8 * 64 * 128**2 < one and four < 1.2 * one
