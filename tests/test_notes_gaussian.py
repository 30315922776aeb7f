"""The closed forms of book/notes/gaussian.md that the checks use, against Monte Carlo and
against the exact chain: Gaussian moments of ReLU, tanh and the identity
(nfdlib.limits.fbsde.moments_of_gaussian), the positive-dominance mean of ReLU
(nfdlib.experiments.p31_theory.gauss_moment), and the second moments of the linear chain
and its depth limit (nfdlib.limits.fbsde.chain_moments, sde_moments). Each comparison
uses a tolerance of four standard errors, so a wrong constant (a factor 1/2 lost, a moment of
φ' squared twice) fails."""
import math

import numpy as np
import pytest

from nfdlib.experiments import p31_theory
from nfdlib.limits import fbsde

N = 400_000


def _mc(f, q, seed=0):
    z = math.sqrt(q) * np.random.default_rng([seed, int(1000 * q)]).standard_normal(N)
    x = f(z)
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(N))


@pytest.mark.parametrize("act", ["relu", "tanh", "linear"])
@pytest.mark.parametrize("q", [0.3, 1.0, 2.5])
def test_gaussian_moments_against_monte_carlo(act, q):
    e_phi2, e_dphi2 = fbsde.moments_of_gaussian(act, q)
    for exact, f in ((e_phi2, lambda z: fbsde.phi(z, act) ** 2), (e_dphi2, lambda z: fbsde.dphi(z, act) ** 2)):
        m, se = _mc(f, q)
        assert abs(m - exact) <= 4 * se + 1e-12


def test_relu_closed_forms_are_the_ones_the_note_states():
    for q in (0.5, 2.0):
        assert fbsde.moments_of_gaussian("relu", q) == (q / 2, 0.5)
        # positive dominance of ReLU: E relu(σZ) = σ/√(2π)
        sigma = math.sqrt(q)
        assert p31_theory.gauss_moment("relu", sigma) == pytest.approx(sigma / math.sqrt(2 * math.pi), rel=1e-8)
        m, se = _mc(lambda z: np.maximum(z, 0), q, seed=1)
        assert abs(m - sigma / math.sqrt(2 * math.pi)) <= 4 * se


def test_a_wrong_constant_is_detected():
    """The Monte-Carlo comparison has the power to see an error of a few per cent."""
    m, se = _mc(lambda z: np.maximum(z, 0) ** 2, 1.0)
    assert abs(m - 0.5 * 1.03) > 4 * se


@pytest.mark.parametrize("L", [1, 4, 32])
def test_linear_chain_and_its_depth_limit(L):
    q, p = fbsde.chain_moments("linear", L)
    ell = np.arange(L + 1)
    np.testing.assert_allclose(q, (1 + 1 / L) ** ell, rtol=1e-12)
    np.testing.assert_allclose(p, (1 + 1 / L) ** (L - ell), rtol=1e-12)
    qs, ps = fbsde.sde_moments("linear", ell / L)
    np.testing.assert_allclose(qs, np.exp(ell / L), rtol=1e-12)
    np.testing.assert_allclose(ps, np.exp(1 - ell / L), rtol=1e-12)
    # the chain lies below its limit by O(1/L): q_L = (1 + 1/L)^L = e (1 - 1/(2L) + O(L^-2))
    assert 0 < math.e - q[-1] <= math.e / (2 * L) + 1e-12
