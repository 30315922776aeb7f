"""NB-TW, NB-TD, NB-TG (the book's own claims on the limit true networks follow): each check
on synthetic data with the right signature and with wrong ones, parameter errors before any
computation, and a smoke run end to end."""
import copy

import numpy as np
import pytest

from nfdlib import claims
from nfdlib.experiments import execute
from nfdlib.experiments import nb_true_limit_scaling as nb
from nfdlib.experiments.nbtl_check import DEPTH_SERIES, joint_fit
from nfdlib.params import ParamError

WIDTHS = [128, 256, 512, 1024]
DEPTHS = [4, 16, 64]
RNG = np.random.default_rng(0)


def _width(err):
    """Width data with error err(n, L) (2% multiplicative noise, se 5%)."""
    w = {"widths": WIDTHS, "net_depths": DEPTHS, "skipped": []}
    for L in DEPTHS:
        for tag in ("true", "nfd", "true_vs_nfd"):
            e = [err(n, L) * (1 + 0.02 * RNG.standard_normal()) for n in WIDTHS]
            w[f"{tag}_L{L}"] = {"widths": WIDTHS, "f_err": e, "f_se": [0.05 * x for x in e], "w2": e,
                                "w2_se": [0.05 * x for x in e]}
    return w


def _depth(err):
    Ls = [4, 8, 16, 32, 64]
    d = {"depths": Ls, "ref_depth": 256}
    for k in DEPTH_SERIES:
        e = [err(L) * (1 + 0.02 * RNG.standard_normal()) for L in Ls]
        d[k], d[f"{k}_se"] = e, [0.05 * x for x in e]
    return d


def _gap(rms):
    """Gap data whose RMS at depth L is rms(L) (3 paths, se 2% of the value)."""
    rows = []
    for eta in (0.25, 0.5, 1.0):
        vals = [eta * rms(L) for L in (32, 64, 128)]
        ext = 2 * vals[2] - vals[1]
        rows.append({"eta_c": eta, "rms": vals, "rms_extrap": ext, "rms_extrap_se": 0.02 * vals[2],
                     "gap1_extrap": -0.1 * eta, "gap1_extrap_se": 0.001, "gap1_direct_extrap": -0.1 * eta,
                     "gap1_direct_extrap_se": 0.001, "ratio1": 1.0, "ratio1_se": 0.05, "ratio1_stein": 1.1})
    return {"reps": 3, "depths": [32, 64, 128], "steps": 6, "by_eta": rows}


def _data(width=lambda n, L: 2 * n**-0.5, depth=lambda L: 0.1 / L, gap=lambda L: 0.1):
    return {"width": _width(width), "depth": _depth(depth), "gap": _gap(gap), "diverged": []}


P = nb.NBTLParams.build(profile="smoke")


def _verdicts(data):
    return {r["id"]: r["verdict"] for r in nb.check(copy.deepcopy(data), P)}


def test_right_signature_is_reproduced():
    assert _verdicts(_data()) == {"NB-TW": "reproduced", "NB-TD": "reproduced", "NB-TG": "reproduced"}


def test_width_wrong_signatures():
    # no decay in n at any depth
    assert _verdicts(_data(width=lambda n, L: 0.05 + 0 * n))["NB-TW"] == "not reproduced"
    # the constant grows like L^{1/2}: the rate holds, the uniformity does not
    assert _verdicts(_data(width=lambda n, L: 2 * n**-0.5 * L**0.5))["NB-TW"] == "partly reproduced"
    # the exponent degrades at the largest depth
    assert _verdicts(_data(width=lambda n, L: 2 * n ** (-0.5 if L < 64 else -0.1)))["NB-TW"] == "partly reproduced"


def test_depth_wrong_signatures():
    assert _verdicts(_data(depth=lambda L: 0.01 + 0 * L))["NB-TD"] == "not reproduced"


def test_gap_wrong_signatures():
    # a gap that vanishes like 1/L extrapolates to 0
    assert _verdicts(_data(gap=lambda L: 1.0 / L))["NB-TG"] == "not reproduced"
    # a slower decay, L^{-0.8}, keeps less than half of the value at the largest depth
    assert _verdicts(_data(gap=lambda L: L**-0.8))["NB-TG"] == "not reproduced"


def test_diverged_points_make_a_study_inconclusive():
    data = _data()
    data["diverged"] = ["gap_eta0.5_r1"]
    v = _verdicts(data)
    assert v["NB-TG"] == "inconclusive" and v["NB-TW"] == "reproduced"


def test_joint_fit_recovers_exponents():
    n = np.repeat(WIDTHS, 3).astype(float)
    L = np.tile(DEPTHS, 4).astype(float)
    e = 3 * n**-0.5 * L**0.2 * np.exp(0.01 * RNG.standard_normal(n.size))
    f = joint_fit(n, L, e)
    assert f["b_ci"][0] < -0.5 < f["b_ci"][1] and f["c_ci"][0] < 0.2 < f["c_ci"][1]


def test_claim_ids_are_the_books_own():
    for cid in ("NB-TW", "NB-TD", "NB-TG"):
        assert cid in claims.CLAIMS and claims.CLAIMS[cid].chapter == "ch5_true_limit_scaling"


@pytest.mark.parametrize("bad, match", [
    ({"widths": [256, 128, 512]}, "widths"),
    ({"ref_depth": 24}, "ref_depth"),
    ({"gap_depth": 9}, "gap_depth"),
    ({"net_max_gb": 1e-6}, "net_max_gb"),
    ({"gap_etas": [0.5, 0.0]}, "gap_etas"),
    ({"activation": "gelu"}, "activation"),
])
def test_parameter_errors(bad, match):
    with pytest.raises(ParamError, match=match):
        nb.NBTLParams.build(profile="smoke", **bad)


def test_smoke_run(tmp_path):
    res = execute(nb.NAME, profile="smoke")
    assert [r["id"] for r in res["claims"]] == ["NB-TW", "NB-TD", "NB-TG"]
    assert all(r["verdict"] in claims.VERDICTS for r in res["claims"])
    fig = nb.plot(res["data"], nb.NBTLParams.build(profile="smoke"), path=tmp_path)
    assert (tmp_path / "fig1_true_limit.png").exists()
    import matplotlib.pyplot as plt
    plt.close(fig)
