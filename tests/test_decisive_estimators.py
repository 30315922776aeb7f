"""The estimators of issue 16 on synthetic data with a known answer, and the checks built on
them fed data with the wrong signature (each must be able to fail)."""
import math

import numpy as np
import pytest

from nfdlib import metrics
from nfdlib.experiments import a54_nondegeneracy as a54
from nfdlib.experiments import t43_fbsde_init as t43
from nfdlib.limits import nfd
from nfdlib.limits import true_limit as tl


# ----------------------------------------------------------------------------- debiased W2²

def _d2(rng, m, shift=0.0, scale=1.0, reps=60):
    return np.array([metrics.w2_squared_debiased(rng.standard_normal(m), rng.standard_normal(m),
                                                 shift + scale * rng.standard_normal(m),
                                                 shift + scale * rng.standard_normal(m)) for _ in range(reps)])


def test_debiased_w2_is_exact_for_a_shift_and_has_no_floor():
    rng = np.random.default_rng(0)
    m = 2048
    for delta in (0.0, 0.1, 0.3):
        d = _d2(rng, m, shift=delta)
        se = d.std(ddof=1) / math.sqrt(d.size)
        # E D = δ² exactly for a shift (expected order statistics differ by δ)
        assert abs(d.mean() - delta**2) < 4 * se, (delta, d.mean(), se)
    naive = np.mean([metrics.w2_squared_naive(rng.standard_normal(m), rng.standard_normal(m)) for _ in range(20)])
    assert naive > 20 * abs(_d2(rng, m).mean())  # the plug-in estimator sits on a floor


def test_debiased_w2_gaussian_scale_matches_closed_form():
    rng = np.random.default_rng(1)
    d = _d2(rng, 4096, scale=1.2)
    se = d.std(ddof=1) / math.sqrt(d.size)
    # W2²(N(0,1), N(0,1.44)) = (1.2 - 1)² up to the O(1/m) bias of the order statistics
    assert abs(d.mean() - 0.04) < 4 * se + 0.04 * 5 / 4096


def test_debiased_w2_detects_a_difference_it_should_not_hide():
    """Wrong signature: two different laws must not look equal."""
    rng = np.random.default_rng(2)
    d = _d2(rng, 2048, scale=1.1, reps=20)
    assert d.mean() > 5 * d.std(ddof=1) / math.sqrt(d.size)
    with pytest.raises(ValueError):
        metrics.w2_squared_debiased(np.zeros(3), np.zeros(3), np.zeros(4), np.zeros(3))


# ----------------------------------------------------------------------------- fits

def test_power_law_nls_recovers_a_known_exponent_and_keeps_nonpositive_points():
    rng = np.random.default_rng(3)
    x = np.array([4, 8, 16, 32, 64, 128, 256], float)
    se = 2e-5 + 0.05 * 0.1 * x**-2.0
    y = 0.1 * x**-2.0 + se * rng.standard_normal(x.size)
    fit = metrics.power_law_fit_nls(x, y, se)
    assert fit["slope_ci"][0] <= -2.0 <= fit["slope_ci"][1] and fit["n"] == 7
    flat = metrics.power_law_fit_nls(x, 1e-3 + 1e-5 * rng.standard_normal(x.size), np.full(x.size, 1e-5))
    assert flat["slope_ci"][0] <= 0.0 <= flat["slope_ci"][1]  # no decrease: the CI says so


def test_offset_power_law_recovers_the_limit_and_can_put_it_at_zero():
    rng = np.random.default_rng(4)
    P = 2.0 ** np.arange(10, 18)
    reps = [0.02 + 3.0 * p**-0.5 + 0.1 * p**-0.5 * rng.standard_normal(6) for p in P]
    fit = metrics.offset_power_law_fit(P, reps, n_boot=200)
    assert fit["y_inf_ci"][0] <= 0.02 <= fit["y_inf_ci"][1] and fit["y_inf_ci"][0] > 0
    zero = [3.0 * p**-0.5 + 0.1 * p**-0.5 * rng.standard_normal(6) for p in P]
    z = metrics.offset_power_law_fit(P, zero, n_boot=200)
    assert z["y_inf_ci"][0] < 2e-3  # a limit at 0: the interval does not lift off zero


# ----------------------------------------------------------------------------- A5.4

def test_chi_prediction_is_the_v_boundary_identity():
    """Δ_r from G_L equals η_c² χ_r² E[(h_L^{(r)})²] in the particle system (same draws; an
    identity of exact arithmetic, so in the float64 layout)."""
    X, y = nfd.synthetic_task(4, 4, 0)
    noise = nfd.draw_noise(np.random.default_rng(0), 512, 3, 4, 4, "float64")
    eta = 0.4
    res = nfd.solve(X, y, eta, noise, "tanh", "numpy", keep=(3,))
    hL = res.h[0]
    pred = min(eta**2 * res.chi[r] ** 2 * np.mean(hL[r] ** 2) for r in range(3)) / 2
    assert a54.chi_prediction(res.G) == pytest.approx(pred, rel=1e-9)
    lam = nfd.min_eigenvalues(res.G)[-1, -1]
    assert 0 < lam <= a54.chi_prediction(res.G) * (1 + 1e-9)  # the Rayleigh bound


def test_linear_exact_two_steps_matches_the_prediction_and_scales_as_eta_squared():
    X, y = nfd.synthetic_task(2, 8, 0)
    lams = []
    for eta in (0.05, 0.1, 0.2):
        e = tl.linear_exact(X, y, eta, 8, corrections=False)
        lam = float(np.nanmin(nfd.min_eigenvalues(e["G"])))
        assert lam == pytest.approx(a54.chi_prediction(e["G"]), rel=2e-2)
        lams.append(lam)
    assert math.log(lams[2] / lams[0]) / math.log(4.0) == pytest.approx(2.0, abs=0.05)


def _lin(lam_G):
    return {"steps": [2, 4], "eta_cs": [0.1, 0.2, 0.4], "lam_C": [[0.9] * 3, [0.4] * 3],
            "lam_G": [[lam_G * 1, lam_G * 4, lam_G * 16]] * 2, "max_C": [[2.0] * 3] * 2,
            "max_G": [[2.0] * 3] * 2, "pred": [[lam_G, 4 * lam_G, 16 * lam_G]] * 2,
            "diverged": [[False] * 3] * 2}


def test_a54_linear_check_can_fail():
    assert a54.check_linear(_lin(1e-4))["verdict"] == "reproduced"
    assert a54.check_linear(_lin(-1e-6))["verdict"] == "not reproduced"
    assert a54.check_linear(_lin(1e-16))["verdict"] == "inconclusive"  # under float64 resolution


def _sweep(lam_inf, rng):
    P = [2**k for k in range(10, 17)]
    mins = [[lam_inf + 0.5 * p**-0.5 + 0.02 * p**-0.5 * rng.standard_normal() for _ in range(4)] for p in P]
    return P, {"min_C": [[0.03 + 0.1 * p**-1 for _ in range(4)] for p in P], "min_G": mins,
               "max_C": [[2.0] * 4] * len(P), "max_G": [[2.0] * 4] * len(P),
               "pred": [[1e-3] * 4] * len(P), "diverged_at": None}


def test_a54_tanh_check_extrapolates_and_can_fail():
    rng = np.random.default_rng(5)
    p = a54.A54Params.build(profile="smoke", n_boot=100)
    P, good = _sweep(1e-3, rng)
    _, zero = _sweep(0.0, rng)
    base = {"eta_cs": [0.5], "particles": P, "reps": 4, "diverged_at": [None]}
    assert a54.check_tanh(dict(base, sweep=[good]), p)[0]["verdict"] == "reproduced"
    # λ_min(G) → 0 as P → ∞ (a finite-P artefact): the extrapolation must not call it positive
    assert a54.check_tanh(dict(base, sweep=[zero]), p)[0]["verdict"] != "reproduced"
    div = dict(base, sweep=[dict(good, diverged_at=3)], diverged_at=[3])
    assert a54.check_tanh(div, p)[0]["verdict"] == "inconclusive"


# ----------------------------------------------------------------------------- F1 (initialisation)

def _fig1(width_exp, depth_growth, depth_exp=-2.0, se=2e-5):
    widths, depths = [4, 8, 16, 32, 64, 128], [4, 16, 64]
    rng = np.random.default_rng(7)
    pts = []
    for n in widths:
        for L in depths:
            v = 0.05 * n**-width_exp * (1 + depth_growth * math.log2(L / 4)) + se * rng.standard_normal()
            pts.append({"width": n, "depth": L, "h_d2": v, "h_d2_se": se, "g_d2": v, "g_d2_se": se,
                        "h_naive": v + 1e-4, "g_naive": v + 1e-4})
    rows = [{"depth": L, "h_d2": 1e-3 * L**depth_exp + 1e-7 * rng.standard_normal(), "h_d2_se": 1e-7,
             "g_d2": 1e-3 * L**depth_exp + 1e-7 * rng.standard_normal(),
             "g_d2_se": 1e-7, "h_d2_exact": 1e-3 * L**depth_exp} for L in (2, 4, 8, 16)]
    return {"activation": "tanh", "widths": widths, "depths": depths, "pool": 1024, "reps": 8,
            "depth_depths": [2, 4, 8, 16], "depth_particles": 4096, "ref_depth": 64,
            "points": pts, "depth_error": rows}


def test_fig1_check_can_fail():
    ok = t43.check_fig1(_fig1(2.0, 0.0))
    assert ok["verdict"] == "reproduced"
    assert ok["measured"]["g"]["width_slope_by_depth"]["4"][1][0] <= -2.0 <= ok["measured"]["g"]["width_slope_by_depth"]["4"][1][1]
    grows = t43.check_fig1(_fig1(2.0, 0.5))  # the width error builds up with depth, without bound
    assert grows["verdict"] == "not reproduced" and grows["measured"]["h"]["grows_with_depth"]
    assert grows["measured"]["h"]["grows_first_to_last"]
    assert t43.check_fig1(_fig1(0.0, 0.0))["verdict"] == "not reproduced"  # no width convergence
    assert t43.check_fig1(_fig1(2.0, 0.0, depth_exp=0.0))["verdict"] == "not reproduced"  # no depth convergence
