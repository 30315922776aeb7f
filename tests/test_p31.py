"""P3.1 / Fig. 4: parameters, the quadrature constants, backend agreement of the figure data,
and a claim check that passes on post-activation data and fails on pre-activation data."""
import copy
import math

import numpy as np
import pytest

from nfdlib import experiments
from nfdlib.backends import get_backend
from nfdlib.data import load
from nfdlib.experiments import p31_post_activation as p31
from nfdlib.experiments.p31_classic import classic_forward, classic_numpy
from nfdlib.experiments.p31_theory import lipschitz, mean_field, positive_dominance
from nfdlib.params import ParamError

TINY = dict(profile="smoke", widths=[16, 32], depths=[2, 4, 8, 16, 32], seeds=3, n_inputs=4,
            train_width=16, train_depths=[4], train_seeds=2, epochs=1, batch=64)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("p31")
    return experiments.execute(p31.NAME, root=root, **TINY), p31.P31Params.build(**TINY), root


@pytest.fixture
def tiny(tiny_run):
    return tiny_run[:2]


@pytest.mark.parametrize("bad, word", [({"depths": [4, 4, 8]}, "depths"),
                                       ({"contrast_activation": "relu"}, "contrast_activation"),
                                       ({"executor": "threads"}, "executor"),
                                       ({"widths": [1]}, "widths"),
                                       ({"seeds": 1}, "seeds"),
                                       ({"activation": "gelu"}, "activation"),
                                       ({"eta": 0.1}, "eta")])
def test_bad_parameters_are_named(bad, word):
    with pytest.raises(ParamError, match=word):
        p31.P31Params.build(profile="smoke", **bad)


def test_positive_dominance_constants_are_computed():
    relu = positive_dominance("relu", 1e3)
    assert relu["holds"] and relu["b"] == 0
    assert relu["a"] == pytest.approx(1 / math.sqrt(2 * math.pi), rel=1e-8)
    for act in ("tanh", "linear"):
        assert not positive_dominance(act, 1e3)["holds"]
    assert lipschitz("relu") == 1.0 and lipschitz("tanh") == 1.0


def test_mean_field_pre_activation_relu_is_exact():
    # E relu(√q Z)² = q/2, so q_L = q_0 (1 + 1/(2L))^L (book/notes/gaussian.md)
    _, q = mean_field("relu", "depth_mup", 16)
    assert q[-1] == pytest.approx((1 + 1 / 32) ** 16, rel=1e-8)


@pytest.mark.parametrize("backend", ["numba", "torch"])
@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_classic_block_backends_match_reference(backend, act):
    rng = np.random.default_rng(1)
    U, W, X = rng.standard_normal((12, 5)), rng.standard_normal((6, 12, 12)), rng.standard_normal((3, 5))
    be = get_backend(backend)
    out = be.to_numpy(classic_forward(backend, *(be.asarray(a, "float64", "cpu") for a in (U, W, X)), act))
    np.testing.assert_allclose(out, classic_numpy(U, W, X, act), rtol=1e-10, atol=1e-12)


def test_backends_give_the_same_figure_data():
    X = load("digits", seed=0).X_test[:3]
    kw = dict(width=12, depth=8, seed=(0, 0, 12, 8), X=X, acts=["relu", "tanh"], classic=True,
              device="cpu", dtype="float64")
    ref = p31.compute_init(backend="numpy", **kw)
    for backend in ("numba", "torch"):
        out = p31.compute_init(backend=backend, **kw)
        assert set(out) == set(ref)
        for key in ref:
            for s in ("m", "sig", "q"):
                np.testing.assert_allclose(out[key][s], ref[key][s], rtol=1e-9, atol=1e-12)


def test_check_passes_on_post_activation_data(tiny):
    res, _ = tiny
    recs = {c["id"]: c for c in res["claims"]}
    p, pre = recs["P3.1"], recs["P3.1-pre"]
    assert p["verdict"] == "reproduced", p["note"]
    assert p["bounds"]["drift_ok"] and p["divergence"]["diverges"]
    assert pre["verdict"] == "reproduced" and pre["pre"]["ok"] and pre["measured"]["pre_bounded"]


def _swap(data, a, b):
    bad = copy.deepcopy(data)
    bad["cells"][a], bad["cells"][b] = data["cells"][b], data["cells"][a]
    return bad


def test_divergence_check_fails_on_pre_activation_data(tiny):
    res, params = tiny
    bad = _swap(res["data"], "post_act/relu", "depth_mup/relu")
    assert not p31.divergence(bad, "post_act/relu", "relu")["diverges"]
    assert not p31.pre_bound(bad, "depth_mup/relu", "relu")["ok"]
    assert p31.check(bad, params)[0]["verdict"] == "not reproduced"


def test_drift_bound_fails_when_the_mean_grows_too_slowly(tiny):
    res, params = tiny
    bad = copy.deepcopy(res["data"])
    cell = bad["cells"]["post_act/relu"]
    # a network whose mean gained only half the drift its own σ's force: the bound must fail
    cell["mL"] = (np.asarray(cell["m0"]) + 0.5 * (np.asarray(cell["mL"]) - np.asarray(cell["m0"]))).tolist()
    assert not p31.bounds(bad, "post_act/relu", "relu")["drift_ok"]
    assert p31.check(bad, params)[0]["verdict"] == "not reproduced"


def test_tanh_is_inconclusive_and_does_not_diverge(tiny):
    res, params = tiny
    bad = _swap(_swap(res["data"], "post_act/relu", "post_act/tanh"), "depth_mup/relu", "depth_mup/tanh")
    assert p31.check(bad, params.replace(activation="tanh", contrast_activation="relu"))[0]["verdict"] == "inconclusive"
    assert not p31.divergence(res["data"], "post_act/tanh", "tanh")["diverges"]


def test_a_rerun_resumes_from_the_stored_points(tiny_run, monkeypatch):
    res, _, root = tiny_run

    def boom(**kwargs):
        raise AssertionError("a stored point was recomputed")
    monkeypatch.setattr(p31, "compute_init", boom)
    monkeypatch.setattr(p31, "compute_train", boom)
    again = experiments.execute(p31.NAME, root=root, **TINY)
    assert again["data"] == res["data"]


def test_figure_is_saved(tiny, tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    res, params = tiny
    p31.plot(res["data"], params, path=tmp_path)
    assert (tmp_path / "fig4.pdf").exists() and (tmp_path / "fig4.png").exists()
    assert {c["id"] for c in res["claims"]} == {"P3.1", "P3.1-pre", "F4", "F4-train"}
