"""The note book/notes/nfd.md, numerically: in the finite-L NFD recursion (the particle
solver nfdlib.limits.nfd.solve) the forward feature of step 1 depends on the backward
normals of step 0, so φ'(h_{ℓ-1}^{(s)}) and the backward noise of layer ℓ are not
independent at finite depth. The note derives the size of that dependence exactly,

    E[h_{ℓ-1}^{(1)} ε̂_ℓ^{(0)}] = -η_c χ_0 [ρ + (1/L) Σ_{k<ℓ} C_k^{(0,1)}] √(G_ℓ^{(0,0)}) E[φ'(h_{ℓ-1}^{(0)})] / √L,

which is O(L^{-1/2}); and, for an odd φ, E[φ'(h_{ℓ-1}^{(1)}) ε̂_ℓ^{(0)}] = 0 by the sign symmetry
of the particle system. Both are checked here against the particles."""
import math

import numpy as np
import pytest

from nfdlib.limits import nfd

D, RHO, ETA, P = 8, 0.8, 1.0, 2**15


def _inputs():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, D))
    a *= math.sqrt(D) / np.linalg.norm(a)
    b -= (a @ b / D) * a
    b *= math.sqrt(D) / np.linalg.norm(b)
    return np.stack([a, RHO * a + math.sqrt(1 - RHO**2) * b]), np.array([1.0, 0.0])


def _dependence(L: int, seed: int = 1):
    """(measured covariance, its standard error, the note's prediction, E[φ'(h^{(1)}) ε̂],
    its standard error) at layer ℓ = L/2."""
    Xi, y = _inputs()
    layer = L // 2
    noise = nfd.draw_noise(np.random.default_rng([seed, L]), P, L, 2, D)
    res = nfd.solve(Xi, y, ETA, noise, "tanh", "numpy", keep=(layer - 1,))
    h0, h1 = res.h[0, 0], res.h[0, 1]
    e = noise.epsb[layer - 1, 0]                      # ε̂_ℓ^{(0)} drives layer ℓ at step 0
    cov, se = float(h1 @ e / P), float(np.std(h1 * e) / math.sqrt(P))
    bracket = Xi[0] @ Xi[1] / D + sum(res.C[k - 1][0, 1] for k in range(1, layer)) / L
    pred = (-ETA * res.chi[0] * bracket * math.sqrt(res.G[layer - 1][0, 0]) / math.sqrt(L)
            * float(np.mean(1 - np.tanh(h0) ** 2)))
    dp = 1 - np.tanh(h1) ** 2
    return cov, se, pred, float(dp @ e / P), float(np.std(dp * e) / math.sqrt(P))


@pytest.mark.parametrize("L", [4, 16, 64])
def test_forward_feature_depends_on_earlier_backward_noise_as_derived(L):
    cov, se, pred, _, _ = _dependence(L)
    assert abs(pred) > 6 * se                       # the dependence is resolved ...
    assert abs(cov - pred) < 4 * se                 # ... and has the derived size


def test_dependence_is_order_L_to_minus_half_and_odd_phi_cancels_its_mean():
    preds = {L: _dependence(L)[2] for L in (4, 64)}
    # the bracket converges as L grows, so √L · prediction settles: the ratio is near 1
    assert 0.7 < preds[64] * 8 / (preds[4] * 2) < 1.3
    _, _, _, dcov, dse = _dependence(16)
    assert abs(dcov) < 4 * dse
