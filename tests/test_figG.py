"""App. G (Figs. 2 and 5): resumable sweep, divergence as data, backend agreement, the one-ulp
twins, and claim checks (F2/F5, G-stab) that fail on data with the wrong signature."""
import math

import numpy as np
import pytest

from nfdlib import experiments
from nfdlib.experiments import figG_gia_restoration as G
from nfdlib.params import ParamError
from nfdlib.store import RunStore

TINY = dict(profile="smoke", widths=[16], depths=[2, 4], n_seeds=1, archs=["depth_mup", "vanilla"],
            n_train=256, n_test=64, epochs=1, eval_every=1, baseline=False)


def _run_kwargs(**over):
    kw = dict(data_seed=0, dataset="digits", data_folder=None, n_train=256, n_test=64,
              eta_c=1.0, epochs=1, batch=64, eval_every=1, activation="tanh",
              backend="numba", dtype="float64", device="cpu", threads=1)
    kw.update(over)
    return kw


def test_interrupted_sweep_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    p = G.GIAParams.build(**TINY)
    full = G.run(p, RunStore(G.NAME, p.to_dict(), root=tmp_path / "a"))

    calls = {"n": 0}
    real = G.train_pair_member

    def dies_after_three(**kw):
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed")
        calls["n"] += 1
        return real(**kw)

    store = RunStore(G.NAME, p.to_dict(), root=tmp_path / "b")
    monkeypatch.setattr(G, "train_pair_member", dies_after_three)
    with pytest.raises(KeyboardInterrupt):
        G.run(p, store)
    assert len(list((store.folder / "points").glob("*.json"))) == 3
    calls["n"] = 0

    def counts(**kw):
        calls["n"] += 1
        return real(**kw)

    monkeypatch.setattr(G, "train_pair_member", counts)
    resumed = G.run(p, store)  # the same folder: the store's key also hashes nfdlib's code
    assert calls["n"] == len(G.grid(p)) - 3
    assert resumed == full


def test_same_seed_shares_forward_weights_and_baseline_differs_only_in_copy():
    spec = G.GIAParams.build(**TINY).spec_for("depth_mup", "decoupled", 16, 3, 64)
    r = G.init_weights(spec.replace(backward="reused"), np.random.default_rng(5))
    d = G.init_weights(spec, np.random.default_rng(5))
    for k in "UWV":
        np.testing.assert_array_equal(r[k], d[k])
    out = G.train_pair_member("depth_mup", "decoupled_alt", 16, 3, 5, **_run_kwargs())
    ref = G.train_pair_member("depth_mup", "decoupled", 16, 3, 5, **_run_kwargs())
    assert out["steps"] == ref["steps"] and out["train_loss"] != ref["train_loss"]


def test_huge_learning_rate_is_a_recorded_divergence():
    rec = G.train_pair_member("mup_resnet", "reused", 32, 8, 0,
                              **_run_kwargs(eta_c=1e6, dtype="float32", activation="linear"))
    assert rec["diverged_at"] is not None and "non-finite" in rec["reason"]
    assert rec["final_train_loss"] is None
    rec = G.train_pair_member("mup_resnet", "reused", 32, 8, 0, **_run_kwargs(eta_c=1e6))
    assert rec["reason"] == "loss above 1000" and rec["diverged_at"] >= 1
    assert rec["final_test_loss"] is None
    assert all(x <= 1e3 for x in rec["train_loss"] + rec["test_loss"])
    p = G.GIAParams.build(**dict(TINY, archs=["mup_resnet"], widths=[32], eta_c=1e6))
    data = G.run(p, None)
    assert all(row["diverged"] for row in data["alignment"])
    assert G.classify(data["alignment"])["trend"] == "unstable"
    G.plot(data, p)  # divergent runs are drawn up to their divergence, not an error


def test_torch_and_numba_agree_with_the_numpy_reference():
    curves = {b: G.train_pair_member("depth_mup", "decoupled", 16, 4, 1, **_run_kwargs(backend=b))
              for b in ("numpy", "numba", "torch")}
    for b in ("numba", "torch"):
        for key in ("train_loss", "test_loss"):
            np.testing.assert_allclose(curves[b][key], curves["numpy"][key], rtol=1e-9, atol=1e-12)
    f32 = {b: G.train_pair_member("vanilla", "reused", 16, 4, 1, **_run_kwargs(backend=b, dtype="float32"))
           for b in ("numba", "torch")}
    np.testing.assert_allclose(f32["numba"]["test_loss"], f32["torch"]["test_loss"], rtol=1e-4)


def _synthetic(p, gap_of, spread_of=None):
    """Runs whose decoupled curve sits ``gap_of(arch, depth, seed)`` above the reused one;
    with ``spread_of(arch, depth, seed)``, each reused run's twin ends that far apart."""
    steps = list(range(1, 11))
    base = [2.3 * math.exp(-0.2 * s) for s in steps]
    runs = {}
    for w in p.widths:
        for a in p.archs:
            for L in p.depths:
                for i in range(p.n_seeds):
                    s = p.seed + i
                    g = gap_of(a, L, s)
                    for mode, shift in (("reused", 0.0), ("decoupled", g), (G.BASELINE, g * 1.1)):
                        curve = [b + shift for b in base]
                        runs[G.point_name(a, mode, w, L, s)] = {
                            "steps": steps, "train_loss": curve, "test_loss": curve,
                            "diverged_at": None, "reason": None,
                            "final_train_loss": curve[-1], "final_test_loss": curve[-1]}
                    if spread_of is not None:
                        end = spread_of(a, L, s)
                        runs[G.point_name(a, "reused", w, L, s)]["twin_distance"] = list(
                            np.geomspace(1e-7, end, len(steps) + 1))
    return {"runs": runs}


P_SYN = G.GIAParams.build(profile="smoke", widths=[128], depths=[2, 8, 32, 128], n_seeds=3)


def _jitter(s):
    return 1 + 0.05 * (s - 1)


def _papers_gap(a, L, s):
    return (0.5 / L if a == "depth_mup" else 0.1) * _jitter(s)


def _papers_spread(a, L, s):
    """The paper's picture: depth-µP at rounding level, the others blown up at depth."""
    return 2e-7 if a == "depth_mup" or L < 32 else 0.3


def _records(recs, claim_id):
    return {r.get("arch"): r for r in recs if r["id"] == claim_id}


def test_check_reproduces_on_the_papers_signature():
    recs = G.check(_synthetic(P_SYN, _papers_gap, _papers_spread), P_SYN)
    (rec,) = _records(recs, "F2").values()
    assert rec["verdict"] == "reproduced" and rec["arch"] == "depth_mup"
    assert rec["fits_train"]["depth_mup"]["slope"] == pytest.approx(-1.0, abs=1e-9)
    stab = _records(recs, "G-stab")
    assert set(stab) == set(G.ARCHS) and all(r["verdict"] == "reproduced" for r in stab.values())


@pytest.mark.parametrize("gap_of, verdict", [
    (lambda a, L, s: 0.01 * L * _jitter(s), "not reproduced"),           # gaps grow everywhere
    (lambda a, L, s: 0.1 * _jitter(s), "not reproduced"),                 # flat, narrow CI
    (lambda a, L, s: 0.1 * [1, 20, 0.05][(L + s) % 3], "inconclusive"),   # too noisy to tell
])
def test_check_fails_on_the_wrong_signature(gap_of, verdict):
    (rec,) = _records(G.check(_synthetic(P_SYN, gap_of, _papers_spread), P_SYN), "F2").values()
    assert rec["verdict"] == verdict


def test_rounding_sensitive_depth_mup_cannot_decide_F2():
    """A shrinking gap measured on runs that amplify rounding to 1e-3 is not a verdict."""
    spread = lambda a, L, s: 1e-3 if a == "depth_mup" and L == 128 else _papers_spread(a, L, s)
    recs = G.check(_synthetic(P_SYN, _papers_gap, spread), P_SYN)
    (rec,) = _records(recs, "F2").values()
    assert rec["verdict"] == "inconclusive" and "machine" in rec["note"]
    assert _records(recs, "G-stab")["depth_mup"]["verdict"] == "inconclusive"  # 'mixed' at L=128


@pytest.mark.parametrize("spread_of, arch", [
    (lambda a, L, s: 0.3 if L == 128 else 2e-7, "depth_mup"),  # depth-µP blows up at depth
    (lambda a, L, s: 2e-7, "vanilla"),                          # nothing is unstable
    (lambda a, L, s: 2e-7, "mup_resnet"),
])
def test_stability_check_fails_on_the_wrong_signature(spread_of, arch):
    stab = _records(G.check(_synthetic(P_SYN, _papers_gap, spread_of), P_SYN), "G-stab")
    assert stab[arch]["verdict"] == "not reproduced"


def test_twin_starts_one_ulp_apart_and_a_zero_perturbation_stays_at_zero():
    w = {"U": np.array([1.0, -2.0]), "W": np.ones((2, 2, 2)), "V": np.array([[0.5]])}
    moved = G.ulp_perturbed(w, "float32", np.random.default_rng(0))
    for k in "UWV":
        a = w[k].astype(np.float32)
        assert moved[k].dtype == np.float32 and np.all(moved[k] != a)
        np.testing.assert_array_equal(np.nextafter(moved[k], a), a)  # exactly one step away
    rec = G.train_pair_member("depth_mup", "reused", 16, 4, 1, twin=True,
                              **_run_kwargs(dtype="float32"))
    assert len(rec["twin_distance"]) == len(rec["steps"]) + 1
    assert 0 < rec["twin_distance"][0] < 1e-5  # the outputs start at rounding distance
    assert max(rec["twin_distance"]) < G.INSENSITIVE  # a shallow depth-µP run stays there


@pytest.mark.parametrize("bad, name", [
    (dict(archs=["resnet"]), "archs"), (dict(eta_c=0), "eta_c"), (dict(dataset="cifar10"), "data_folder"),
    (dict(dataset="cifar10", data_folder="/no/such/folder"), "data_folder"),
    (dict(data_folder="/tmp"), "data_folder"), (dict(executor="threads"), "executor"),
    (dict(depths=[2, 2]), "depths"), (dict(widths=[10**6]), "width"),
])
def test_bad_parameters_are_named(bad, name):
    with pytest.raises(ParamError, match=name):
        G.GIAParams.build(**dict(TINY, **bad))


def test_smoke_profile_end_to_end_saves_both_figures(tmp_path):
    res = experiments.execute(G.NAME, **dict(TINY, widths=[128, 256], depths=[2, 4, 8], n_train=128))
    assert [c["id"] for c in res["claims"]] == ["F2", "F5", "G-stab", "G-stab"]
    p = G.GIAParams.build(**res["params"])
    G.plot(res["data"], p, path=tmp_path)
    for name in ("fig2", "fig5", "figG_alignment", "figG_sensitivity"):
        assert (tmp_path / f"{name}.png").exists() and (tmp_path / f"{name}.pdf").exists()
