"""The one-step gap experiment (P5.2, C5.7): the null experiment gives exactly zero, the
first-order formula of book/notes/one_step_gap.md matches small steps, the backends agree, and the claim
checks recover known signatures and fail on wrong ones."""
import numpy as np
import pytest

from nfdlib import experiments
from nfdlib.experiments import p52_one_step_gap as p52
from nfdlib.params import ParamError

SMALL = dict(profile="smoke", widths=[48], depths=[1, 3], seeds=2, d=8)


def test_gap_is_exactly_zero_when_both_sides_reuse_the_weights():
    res = experiments.execute("p52_one_step_gap", backend="numpy", comparison="reused", **SMALL)
    for row in res["data"]["rows"]:
        for key in ("gap_f", "gap_f_fresh", "gap_small", "dq_L", "dG_0", "w1_h_L"):
            assert row[f"{key}_mean"] == 0.0 and row[f"{key}_se"] == 0.0
        assert row["change_f_mean"] != 0.0


def test_cli_rows_and_first_order_formula():
    res = experiments.execute("p52_one_step_gap", backend="numpy", dtype="float64",
                              eta_small=1e-4, **SMALL)
    rows = res["data"]["rows"]
    assert [(r["width"], r["depth"]) for r in rows] == [(48, 1), (48, 3)]
    for r in rows:
        assert {"width", "depth", "activation", "train", "gap_f_mean", "gap_f_se",
                "change_f_mean"} <= set(r)
        # gap/η at η = 1e-4 equals the kernel prediction up to O(η)
        assert abs(r["gap_small_mean"] - r["pred1_mean"]) < 1e-3 * abs(r["pred1_mean"])
        assert abs(r["gap_small_fresh_mean"] - r["pred1_fresh_mean"]) < 1e-3 * abs(r["pred1_fresh_mean"]) + 1e-6


def test_numba_and_torch_give_the_same_gaps():
    grid = dict(SMALL, widths=[64], depths=[2, 4], seeds=3)
    rows = {be: experiments.execute("p52_one_step_gap", backend=be, device="cpu", **grid)["data"]["rows"]
            for be in ("numba", "torch")}
    for a, b in zip(rows["numba"], rows["torch"]):
        for key in ("gap_f", "gap_f_fresh", "gap_small", "w1_h_L"):
            # the same draws: float32 round-off, far inside the statistical error
            assert abs(a[f"{key}_mean"] - b[f"{key}_mean"]) < max(0.1 * a[f"{key}_se"], 1e-4)


def test_linear_exact_first_order_limit():
    assert p52.linear_first_order(1, "hidden")["gap_over_eta"] == pytest.approx(0.0)
    assert p52.linear_first_order(10**6, "all")["gap_over_eta"] == pytest.approx(np.e, rel=1e-5)
    assert p52.linear_first_order(10**6, "hidden")["gap_over_eta"] == pytest.approx(1.0, rel=1e-5)


def synthetic_rows(widths, depths, law, se=0.01, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for n in widths:
        for L in depths:
            r = {"width": n, "depth": L, "seeds": 8}
            for key in p52.SCALARS:
                r[f"{key}_mean"] = law(n, L) + se * rng.standard_normal()
                r[f"{key}_se"] = se
            rows.append(r)
    return {"rows": rows}


DEPTHS = [4, 8, 16, 32, 64, 128]
WIDTHS = [128, 256, 512, 1024, 2048]
PARAMS = p52.GapParams.build(profile="smoke")


@pytest.mark.parametrize("law, verdict", [
    (lambda n, L: 2.0 / L, "reproduced"),               # the claimed O(1/L)
    (lambda n, L: 2.0 / L**2, "reproduced"),            # faster than claimed
    (lambda n, L: 2.0 / np.sqrt(L), "partly reproduced"),
    (lambda n, L: 0.3, "not reproduced"),               # no depth suppression
])
def test_depth_exponent_check(law, verdict):
    data = synthetic_rows([1024], DEPTHS, law, se=1e-4)
    (rec,) = p52.check(data, PARAMS)
    assert rec["id"] == "C5.7" and rec["verdict"] == verdict


def test_depth_fit_recovers_a_known_exponent():
    data = synthetic_rows([1024], DEPTHS, lambda n, L: 0.7 * L**-1.3, se=1e-5)
    n, fit = p52.depth_fit(data["rows"], "gap_f", 4)
    assert n == 1024 and fit.slope_within(-1.3) and abs(fit.slope + 1.3) < 0.05


@pytest.mark.parametrize("law, verdict", [
    (lambda n, L: 0.3 + 1.0 / np.sqrt(n), "reproduced"),   # survives width: a = 0.3
    (lambda n, L: 2.0 / np.sqrt(n), "not reproduced"),     # a finite-width effect
])
def test_width_limit_check(law, verdict):
    data = synthetic_rows(WIDTHS, [4], law, se=1e-3)
    (rec,) = p52.check(data, PARAMS)
    assert rec["id"] == "P5.2" and rec["verdict"] == verdict
    if verdict == "reproduced":
        lo, hi = rec["measured"]["L=4"]["a_ci"]
        assert lo < 0.3 < hi


@pytest.mark.parametrize("bad, name", [
    (dict(eta_small=2.0), "eta_small"), (dict(train="U"), "train"),
    (dict(activation="relu"), "activation"), (dict(seeds=1), "seeds"),
])
def test_bad_parameters(bad, name):
    with pytest.raises(ParamError, match=name):
        p52.GapParams.build(profile="smoke", **bad)


@pytest.mark.parametrize("weight, verdict", [
    ("adjacent", "reproduced"),     # b_ℓ = C_{ℓ-1}/L, as Eq. 17 (App. E) has it
    ("beta", "not reproduced"),     # b_ℓ = β_{ℓ-1}, the book's compounding account
])
def test_eq17_check_can_go_either_way(weight, verdict):
    rng = np.random.default_rng(0)
    rows = []
    for L in DEPTHS:
        C = 1.0 + 0.1 * rng.standard_normal(L)
        adjacent = np.concatenate([[0.0], C[:-1]]) / L
        beta = np.cumsum(C / L) + 1.0
        b = (adjacent if weight == "adjacent" else beta) * (1 + 0.01 * rng.standard_normal(L))
        rows.append({"width": 1024, "depth": L, "adjacent": adjacent.tolist(), "beta": beta.tolist(),
                     "b_r": b.tolist()})
    got, measured = p52.eq17_check(rows, 1024, 4)
    assert got == verdict
    if weight == "beta":  # the book's account: b follows β with slope 1
        assert measured["b_on_beta_ci"][0] <= 1 <= measured["b_on_beta_ci"][1]
    assert p52.eq17_check([dict(r, b_r=(3 * np.array(r["adjacent"])).tolist()) for r in rows],
                          1024, 4)[0] == "not reproduced"
