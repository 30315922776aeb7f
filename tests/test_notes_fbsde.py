"""book/notes/fbsde.md, numerically: on a shared Brownian path (nfdlib.limits.fbsde.
strong_errors, nfdlib.limits.brownian.BrownianPath) the L-layer chain converges to the
SDE at different orders for h and g. The forward noise is additive (its coefficient is a
number), so the forward error is of order L^{-2} in mean square; the backward noise is
multiplied by φ'(h) evaluated at the left end of each step, which costs one order: L^{-1}
for tanh. For ReLU, whose φ' jumps, the backward order falls below one. (The exact second
moments are tests/test_fbsde.py::test_exact_moments.)"""
import numpy as np

from nfdlib.limits import fbsde
from nfdlib.metrics import power_law_fit

DEPTHS = [4, 8, 16, 32]


def _orders(act, particles=16384, seed=0):
    rows = fbsde.strong_errors(DEPTHS, 256, particles, act, np.random.default_rng(seed), backend="numpy")
    return (power_law_fit(DEPTHS, [r["h_mse"] for r in rows]),
            power_law_fit(DEPTHS, [r["g_mse"] for r in rows]))


def test_tanh_forward_order_two_backward_order_one():
    h, g = _orders("tanh")
    assert h.slope_ci[1] < -1.6 and h.slope_ci[0] < -2.0 + 0.3
    assert g.slope_within(-1.0) and g.slope_ci[0] > -1.5
    assert h.slope < g.slope - 0.7


def test_relu_backward_order_below_one():
    _, g = _orders("relu")
    assert g.slope_ci[1] < -0.2 and g.slope_ci[0] > -0.9
