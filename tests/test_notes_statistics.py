"""book/notes/statistics.md, numerically: the power-law fit's confidence interval
(nfdlib.metrics.power_law_fit) covers the true exponent about 95% of the time; the
Monte-Carlo floor of the 1-D Wasserstein distance (nfdlib.metrics.wasserstein1) falls like
N^{-1/2}; the closed form W1(N(0, a²), N(0, b²)) = |a - b| √(2/π) used at n = ∞ in the T4.3
chapter; and the coupling inequality W2(law a, law b)² ≤ E|a - b|² on which the book's
mean-square measurements rest (nfdlib.metrics.wasserstein2 is the sorted coupling, the
optimal one in one dimension). The two refinements: the offset fit λ(P) = λ∞ + c·P^(-α) with a
bootstrap interval (nfdlib.metrics.offset_power_law_fit) recovers a known limit on the A5.4
design where a log–log fit cannot; the plug-in W₂² (nfdlib.metrics.w2_squared_naive) sits on
the floor v_m(μ) + v_m(ν) derived in the note and the debiased D
(nfdlib.metrics.w2_squared_debiased) has mean Δ_m², the distance of the expected quantile
functions, with the expected order statistics computed by quadrature."""
import math

import numpy as np
from scipy import special, stats

from nfdlib.metrics import (offset_power_law_fit, power_law_fit, w2_squared_debiased, w2_squared_naive,
                            wasserstein1, wasserstein2)


def test_power_law_ci_has_its_nominal_coverage():
    rng = np.random.default_rng(0)
    x = np.array([4, 8, 16, 32, 64, 128], dtype=float)
    hits = 0
    trials = 400
    for _ in range(trials):
        y = 2.0 * x**-1.0 * np.exp(0.1 * rng.standard_normal(x.size))
        hits += power_law_fit(x, y).slope_within(-1.0)
    # binomial(400, 0.95): standard deviation 1.1%; a CI that ignores the t quantile (1.96
    # instead of 2.78 with 4 degrees of freedom) covers about 88% and fails here
    assert 0.92 <= hits / trials <= 0.98


def test_wasserstein_floor_falls_like_inverse_square_root_of_the_sample():
    rng = np.random.default_rng(1)
    sizes = [250, 1000, 4000, 16000]
    floor = [np.mean([wasserstein1(rng.standard_normal(N), rng.standard_normal(N)) for _ in range(40)])
             for N in sizes]
    fit = power_law_fit(sizes, floor)
    assert fit.slope_within(-0.5) and not fit.slope_within(-1.0)


def test_w1_of_two_centred_gaussians():
    rng = np.random.default_rng(2)
    a, b = 1.0, 1.3
    exact = abs(a - b) * math.sqrt(2 / math.pi)
    est = [wasserstein1(a * rng.standard_normal(50_000), b * rng.standard_normal(50_000)) for _ in range(8)]
    assert abs(np.mean(est) - exact) < 0.1 * exact


def test_a_coupling_bounds_w2_from_above_only():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(20_000)
    # two samples of the same law, coupled badly: large mean square, W2 near zero
    y = rng.permutation(x)
    assert np.mean((x - y) ** 2) > 1.5 and wasserstein2(x, y) < 1e-12
    # any coupling gives an upper bound; the sorted one attains W2
    z = x + 0.3 * rng.standard_normal(x.size)
    assert wasserstein2(x, z) ** 2 <= np.mean((x - z) ** 2)


# ----------------------------------------------------------------------------- the offset power law

A54_P = 2.0 ** np.arange(12, 19)  # the A5.4 design: seven P, four replicates each


def _offset_data(rng, lam=0.05, c=200.0, alpha=1.0):
    """Replicates of λ(P) = λ∞ + c·P^(-α) with Monte-Carlo noise of size 0.5·P^(-1/2)."""
    return [lam + c * P**-alpha + 0.5 * P**-0.5 * rng.standard_normal(4) for P in A54_P]


def test_offset_fit_recovers_a_known_limit_and_exponent():
    lam, trials = 0.05, 20
    fits = [offset_power_law_fit(A54_P, _offset_data(np.random.default_rng(100 + i), lam), n_boot=100, seed=i)
            for i in range(trials)]
    covered = sum(f["y_inf_ci"][0] <= lam <= f["y_inf_ci"][1] for f in fits)
    # nominal 95%: binomial(20, 0.95) falls below 17 with probability 1.6%
    assert covered >= 17, covered
    # the interval resolves the positive limit every time (the question A5.4 asks)
    assert all(f["y_inf_ci"][0] > 0 for f in fits)
    alphas = np.array([f["alpha"] for f in fits])
    assert abs(alphas.mean() - 1.0) < 3 * alphas.std(ddof=1) / math.sqrt(trials), alphas


def test_a_log_log_fit_misreads_a_sequence_with_a_limit():
    reps = _offset_data(np.random.default_rng(7))
    means = [r.mean() for r in reps]
    plain = power_law_fit(A54_P, means)
    # the bend towards the limit reads as a decay far slower than the true P^-1 ...
    assert plain.slope_ci[0] > -1.0
    # ... while the offset fit finds a limit inside its interval and away from 0
    fit = offset_power_law_fit(A54_P, reps, n_boot=100)
    assert fit["y_inf_ci"][0] <= 0.05 <= fit["y_inf_ci"][1] and fit["y_inf_ci"][0] > 0


# ----------------------------------------------------------------------------- debiased W2²

def gaussian_order_statistics(m: int) -> tuple[np.ndarray, np.ndarray]:
    """Means and variances of the order statistics of m standard normal draws, by quadrature of
    the density m!/((k-1)!(m-k)!) Φ^(k-1) (1-Φ)^(m-k) φ."""
    x = np.linspace(-10.0, 10.0, 20001)
    lc, ls, lp = stats.norm.logcdf(x), stats.norm.logsf(x), stats.norm.logpdf(x)
    means, variances = [], []
    for k0 in range(1, m + 1, 128):
        k = np.arange(k0, min(k0 + 128, m + 1))[:, None]
        w = np.exp(special.gammaln(m + 1) - special.gammaln(k) - special.gammaln(m - k + 1)
                   + (k - 1) * lc + (m - k) * ls + lp)
        assert np.allclose(np.trapezoid(w, x, axis=1), 1.0, atol=1e-10)
        mu = np.trapezoid(w * x, x, axis=1)
        means.append(mu)
        variances.append(np.trapezoid(w * x**2, x, axis=1) - mu**2)
    return np.concatenate(means), np.concatenate(variances)


def uniform_order_statistics(m: int) -> tuple[np.ndarray, np.ndarray]:
    """The same for the uniform law on [-√3, √3] (variance 1), in closed form."""
    k = np.arange(1, m + 1)
    return math.sqrt(3) * (2 * k / (m + 1) - 1), 12 * k * (m - k + 1) / ((m + 1) ** 2 * (m + 2))


def _mean_se(estimator, draw_x, draw_y, m, rng, samples=2, reps=4000):
    """Mean and standard error over ``reps`` replicates of ``estimator`` on ``samples``
    independent samples of each law."""
    out = np.array([estimator(*[draw_x(rng, m) for _ in range(samples)], *[draw_y(rng, m) for _ in range(samples)])
                    for _ in range(reps)])
    return out.mean(), out.std(ddof=1) / math.sqrt(reps)


def _normal(rng, m, s=1.0):
    return s * rng.standard_normal(m)


def _uniform(rng, m):
    return rng.uniform(-math.sqrt(3), math.sqrt(3), m)


def test_plugin_w2_carries_the_floor_and_the_debiased_one_does_not():
    m = 128
    v = gaussian_order_statistics(m)[1].mean()
    rng = np.random.default_rng(5)
    d, d_se = _mean_se(w2_squared_debiased, _normal, _normal, m, rng)
    naive, naive_se = _mean_se(w2_squared_naive, _normal, _normal, m, rng, samples=1)
    assert abs(d) < 3 * d_se                        # two samples of one law: E D = 0
    assert abs(naive - 2 * v) < 3 * naive_se        # the plug-in mean is the floor 2 v_m
    assert 2 * v > 30 * d_se                        # and the floor is far outside D's error bar
    # the note's sizes of the Gaussian floor, m·v_m = 2.79 (m = 128) and 3.15 (m = 1024)
    assert round(m * v, 2) == 2.79 and round(1024 * gaussian_order_statistics(1024)[1].mean(), 2) == 3.15


def test_debiased_w2_has_the_mean_derived_for_it():
    m = 128
    a, va = gaussian_order_statistics(m)
    b, vb = uniform_order_statistics(m)
    delta2, floor = np.mean((a - b) ** 2), np.mean(va + vb)
    rng = np.random.default_rng(6)
    d, d_se = _mean_se(w2_squared_debiased, _normal, _uniform, m, rng)
    naive, naive_se = _mean_se(w2_squared_naive, _normal, _uniform, m, rng, samples=1)
    assert abs(d - delta2) < 3 * d_se                    # E D = Δ_m²
    assert abs(naive - (delta2 + floor)) < 3 * naive_se  # E Ŵ² = Δ_m² + v_m(μ) + v_m(ν)
    # a change of scale: Δ_m² = (s - 1)² (1 - v_m), the floor entering as a relative bias only
    s = 1.2
    d, d_se = _mean_se(w2_squared_debiased, _normal, lambda r, n: _normal(r, n, s), m, rng)
    assert abs(d - (s - 1) ** 2 * (1 - va.mean())) < 3 * d_se


def test_expected_quantile_distance_approaches_w2_faster_than_the_floor():
    w2 = 2 - 2 * math.sqrt(3 / math.pi)  # W2²(N(0, 1), U[-√3, √3]), the note's closed form
    u = np.linspace(0, 1, 400_001)[1:-1]
    assert abs(np.mean((stats.norm.ppf(u) - math.sqrt(3) * (2 * u - 1)) ** 2) - w2) < 1e-4
    gaps = []
    for m, delta2_note in ((128, 0.0386), (1024, 0.0444)):
        a, va = gaussian_order_statistics(m)
        b, vb = uniform_order_statistics(m)
        delta2, floor = np.mean((a - b) ** 2), np.mean(va + vb)
        assert round(delta2, 4) == delta2_note
        gap, plugin_gap = abs(delta2 - w2), abs(delta2 + floor - w2)
        assert gap < plugin_gap / 3
        gaps.append(gap)
    assert gaps[1] < gaps[0] / 4  # Δ_m² → W2², about like 1/m
