"""P4.2: the experiment runs, resumes, validates its parameters, and its claim check fails on
data with the wrong rate in width or a growth in depth."""
import json

import numpy as np
import pytest

from nfdlib.__main__ import main
from nfdlib.experiments import execute
from nfdlib.experiments import p42_gia_init as p42
from nfdlib.params import ParamError

WIDTHS = [64, 128, 256, 512, 1024]
DEPTHS = [4, 16, 64, 256]


def synthetic(rate_n=-1.0, rate_L=0.0, noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for L in DEPTHS:
        for n in WIDTHS:
            m = 0.7 * n**rate_n * L**rate_L * np.exp(noise * rng.standard_normal())
            rows.append({"width": n, "depth": L, "activation": "tanh", "sup_mse": m, "se": noise * m})
    return {"mse": rows, "profiles": []}


P = p42.GIAParams.build(profile="smoke")


def test_check_reproduces_on_the_predicted_signature():
    verdicts = [p42.check(synthetic(seed=s), P)[0]["verdict"] for s in range(10)]
    assert "not reproduced" not in verdicts
    assert verdicts.count("reproduced") >= 7      # simultaneous 95% CIs: ~1 miss in 20


@pytest.mark.parametrize("rate_n, rate_L", [(-0.5, 0.0), (-2.0, 0.0), (-1.0, 0.5), (-1.0, 1.0)])
def test_check_fails_on_wrong_rates(rate_n, rate_L):
    (rec,) = p42.check(synthetic(rate_n, rate_L), P)
    assert rec["verdict"] == "not reproduced"


def test_check_inconclusive_when_noisy():
    (rec,) = p42.check(synthetic(noise=2.0, seed=3), P)
    assert rec["verdict"] in ("inconclusive", "not reproduced")


def test_smoke_run_json_and_resume(tmp_path, monkeypatch):
    out = tmp_path / "p42.json"
    assert main(["run", "p42_gia_init", "--set", "profile=smoke", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    rows = res["data"]["mse"]
    assert {"width", "depth", "activation", "sup_mse", "se"} <= set(rows[0])
    assert len(rows) == 2 * 3 * 2       # activations × widths × depths
    assert all(r["sup_mse"] > 0 for r in rows)
    assert {c["activation"] for c in res["claims"]} == {"tanh", "relu"}
    # resume: every point is stored, nothing is recomputed
    monkeypatch.setattr(p42, "gia_point", lambda **kw: pytest.fail("recomputed a stored point"))
    again = execute("p42_gia_init", profile="smoke")
    assert again["data"]["mse"] == res["data"]["mse"]


def test_gap_shrinks_with_width_on_real_draws():
    """A direct check on real networks: 16× wider, gap at least 4× smaller (rate -1 gives 16×)."""
    small = [p42.gia_point(32, 8, s, ["tanh"], "numba", "cpu", "float64", 8, 8)["tanh"]["mse"] for s in range(3)]
    big = [p42.gia_point(512, 8, s, ["tanh"], "numba", "cpu", "float64", 8, 8)["tanh"]["mse"] for s in range(3)]
    assert np.max(np.mean(small, 0)) > 4 * np.max(np.mean(big, 0))


def test_bad_parameters():
    with pytest.raises(ParamError, match="widths"):
        p42.GIAParams.build(widths=[64, 128])
    with pytest.raises(ParamError, match="activations"):
        p42.GIAParams.build(activations=["sigmoid"])
    with pytest.raises(ParamError, match="device"):
        p42.GIAParams.build(backend="numba", device="cuda")
    with pytest.raises(ParamError, match="executor"):
        p42.GIAParams.build(executor="mpi")
    with pytest.raises(ParamError, match="GiB"):
        p42.GIAParams.build(widths=[64, 128, 1 << 17], depths=[256])
