"""book/notes/true_limit.md, numerically, on the exact (P = ∞) linear recursion
nfdlib.limits.true_limit.linear_exact: each layer's reuse correction to the feature and
gradient increments is O(1/L) (the mean squares E[ż²], E[ẑ̇²] of the corrections before
the 1/√L multiplier are O(1/L), so L times them converges as a profile in t = ℓ/L), and the
accumulated correction to f converges to a non-zero limit at rate about 1/L instead of
vanishing. The one-step closed form is tests/test_true_limit.py::
test_linear_closed_form_and_exact_recursion; the Stein estimator of the expected
derivatives is tests/test_true_limit.py::test_stein_solve_recovers_expected_derivatives."""
import numpy as np

from nfdlib.limits import nfd
from nfdlib.limits import true_limit as tl

ETA = 0.5
DEPTHS = (8, 32, 128)


def _runs():
    X, y = nfd.synthetic_task(3, 6, 4)
    out = {}
    for L in DEPTHS:
        on, off = tl.linear_exact(X, y, ETA, L, True), tl.linear_exact(X, y, ETA, L, False)
        out[L] = {"df": on["f"] - off["f"], "fwd": L * on["corr_fwd"][L // 2 - 1],
                  "bwd": L * on["corr_bwd"][L // 2 - 1]}
    return out


RUNS = _runs()


def test_per_layer_corrections_are_order_one_over_L():
    for key in ("fwd", "bwd"):
        a, b, c = (RUNS[L][key][-1] for L in DEPTHS)
        assert a > 0 and b > 0 and c > 0
        # L × mean square at t = 1/2 settles: successive changes shrink, last ratio near 1
        assert abs(c - b) < abs(b - a)
        assert 0.8 < c / b < 1.25            # ż = O(L^{-3/2}) would give 1/16


def test_accumulated_correction_converges_to_a_non_zero_limit():
    d8, d32, d128 = (RUNS[L]["df"][-1] for L in DEPTHS)
    assert abs(d128) > 0.1                                # not O(1/L) → 0
    assert abs(d128 - d32) < 0.5 * abs(d32 - d8)          # converging, at rate about 1/L
    assert np.sign(d8) == np.sign(d32) == np.sign(d128)
