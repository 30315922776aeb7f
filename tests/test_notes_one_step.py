"""book/notes/one_step_gap.md, numerically. The first-order expansion of the one-step gap
between true and decoupled backprop, and the β recursion for the weight of the reused
direction W_ℓᵀg_ℓ in the second-pass input, as nfdlib.experiments.p52_one_step_gap computes
them (compute_point: "pred1", "beta", "b_r", "b_d"):

- the β the experiment computes from a wide network's own kernels is the infinite-width
  recursion β_ℓ = β_{ℓ-1}(1 + κ_ℓ/L) + C_ℓ/L, β_0 = 1 (U trained), with C_ℓ, κ_ℓ the
  Gaussian moments of the chain (linear: the closed form (1 + 1/L)^ℓ (1 + ℓ/(L + 1)));
- its depth limit is the solution of β' = κ(t) β + C(t), β(0) = 1, reached at rate 1/L
  (linear: β(t) = e^t (1 + t));
- the measured coefficient b_ℓ of the reused direction follows β_{ℓ-1} (regression slope
  near 1) in the true network and not in the decoupled one (slope near 0);
- the measured small-step gap equals the first-order formula, whose n → ∞ value for the
  linear network is p52_one_step_gap.linear_first_order."""
import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from nfdlib.experiments import p52_one_step_gap as p52
from nfdlib.limits import fbsde


def _point(act, width, depth, rep=0):
    p = p52.GapParams.build(backend="numpy", dtype="float64", activation=act, widths=[width],
                            depths=[depth], seeds=2, eta_small=1e-4, d=16, threads=0)
    return p52.compute_point(width, depth, rep, p.to_dict())


def beta_infinite_width(act, L):
    """β_0..β_L from the exact Gaussian moments of the L-layer chain (q_0 = 1)."""
    q, _ = fbsde.chain_moments(act, L)
    beta = [1.0]
    for ell in range(1, L + 1):
        C, kappa = fbsde.moments_of_gaussian(act, q[ell - 1])
        beta.append(beta[-1] * (1 + kappa / L) + C / L)
    return np.array(beta)


def beta_limit(act, t=1.0):
    """β(t) from β' = κ β + C with C(t) = E φ(h_t)², κ(t) = E φ'(h_t)², h_t ~ N(0, q(t))."""
    def rhs(_, y):
        C, kappa = fbsde.moments_of_gaussian(act, y[0])
        return [C, kappa * y[1] + C]
    sol = solve_ivp(rhs, (0.0, t), [1.0, 1.0], method="DOP853", rtol=1e-11, atol=1e-12)
    return float(sol.y[1, -1])


@pytest.mark.parametrize("L", [4, 16])
def test_linear_beta_closed_form(L):
    ell = np.arange(L + 1)
    np.testing.assert_allclose(beta_infinite_width("linear", L), (1 + 1 / L) ** ell * (1 + ell / (L + 1)),
                               rtol=1e-12)


@pytest.mark.parametrize("act", ["linear", "tanh"])
def test_experiment_beta_is_the_infinite_width_recursion(act):
    r = _point(act, 512, 8)
    # finite-width fluctuations of the kernels are a few per cent at n = 512; Appendix E's
    # adjacent-layer count, C_{ℓ-1}/L, would be off by a factor of L
    np.testing.assert_allclose(r["beta"], beta_infinite_width(act, 8)[:-1], rtol=0.1)


@pytest.mark.parametrize("act", ["linear", "tanh"])
def test_beta_depth_limit_at_rate_one_over_L(act):
    limit = beta_limit(act)
    if act == "linear":
        assert limit == pytest.approx(2 * math.e, rel=1e-9)
    errs = [abs(beta_infinite_width(act, L)[-1] - limit) for L in (16, 32, 64)]
    assert errs[0] / errs[1] == pytest.approx(2, rel=0.1) and errs[1] / errs[2] == pytest.approx(2, rel=0.1)
    assert limit > 1.5                      # an O(1) weight, not C_{ℓ-1}/L → 0


def test_measured_weight_of_the_reused_direction_follows_beta():
    beta, b_true, b_dec = [], [], []
    for rep in range(3):
        r = _point("tanh", 512, 8, rep)
        beta += r["beta"]
        b_true += r["b_r"]
        b_dec += r["b_d"]
    beta, b_true, b_dec = map(np.asarray, (beta, b_true, b_dec))
    assert beta @ b_true / (beta @ beta) == pytest.approx(1.0, abs=0.15)
    assert abs(beta @ b_dec / (beta @ beta)) < 0.3


def test_small_step_gap_is_the_first_order_formula_and_its_width_limit():
    L, gaps, limits = 4, [], []
    for rep in range(4):
        r = _point("linear", 512, L, rep)
        assert r["gap_small"] == pytest.approx(r["pred1"], rel=1e-3)     # eta_c = 1 in pred1
        # n → ∞ with χ → -y: gap/η_c → y [(1+1/L)^L - 1 + 1 - (1/L)(1+1/L)^{L-1}]; χ is the
        # network's own residual here, so compare with -χ times the y = 1 value
        gaps.append(r["gap_small"])
        limits.append(-r["chi"] * p52.linear_first_order(L, "all")["gap_over_eta"])
    assert np.mean(gaps) == pytest.approx(np.mean(limits), rel=0.05)
