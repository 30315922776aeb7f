"""The ledger comparison that CI's machine-independence stage runs: equal ledgers pass;
a changed verdict, a number moved beyond the tolerance, or a record without a committed
counterpart fails; and a deliberately machine-sensitive check (a deep µP ResNet's final
loss, whose run amplifies a one-ulp perturbation like a change of BLAS kernel) fails."""
import json

import numpy as np
import pytest

from nfdlib import ledger_compare
from nfdlib.data import load
from nfdlib.experiments import figG_gia_restoration as G
from nfdlib.network import Network
from nfdlib.training import train


def _ledger(folder, measured, verdict="reproduced", name="x.book.0000.json"):
    folder.mkdir(parents=True, exist_ok=True)
    entry = {"experiment": "x", "profile": "book", "setting": "", "date": "",
             "claims": [{"id": "C5.7", "verdict": verdict, "measured": measured, "expected": ""}]}
    (folder / name).write_text(json.dumps(entry))
    return folder


MEASURED = {"slope": -0.0080063, "fit": "flat, s = 0.013 [-0.090, 0.170]", "n": 9, "ok": True}


def test_equal_ledgers_and_rounding_level_differences_pass(tmp_path):
    ref = _ledger(tmp_path / "ref", MEASURED)
    close = dict(MEASURED, slope=-0.0080063 * (1 + 1e-6), fit="flat, s = 0.012 [-0.090, 0.170]")
    compared, problems = ledger_compare.compare(ref, _ledger(tmp_path / "new", close))
    assert problems == [] and len(compared) == 1


@pytest.mark.parametrize("change, verdict", [
    ({}, "not reproduced"),                                        # another verdict
    ({"slope": -0.0080063 * (1 + 1e-3)}, "reproduced"),            # beyond 1e-4
    ({"fit": "grows, s = 0.013 [-0.090, 0.170]"}, "reproduced"),   # another word
    ({"fit": "flat, s = 0.015 [-0.090, 0.170]"}, "reproduced"),    # two printed units
    ({"ok": False}, "reproduced"),
])
def test_a_difference_fails(tmp_path, change, verdict):
    ref = _ledger(tmp_path / "ref", MEASURED)
    new = _ledger(tmp_path / "new", dict(MEASURED, **change), verdict=verdict)
    _, problems = ledger_compare.compare(ref, new)
    assert len(problems) == 1
    assert ledger_compare.main([str(ref), str(new)]) == 1


def test_a_record_without_committed_counterpart_fails(tmp_path):
    ref = _ledger(tmp_path / "ref", MEASURED)
    new = _ledger(tmp_path / "new", MEASURED, name="x.book.ffff.json")
    _, problems = ledger_compare.compare(ref, new)
    assert problems and "no record" in problems[0]


def test_a_committed_record_the_run_no_longer_makes_fails_when_complete(tmp_path):
    ref = _ledger(tmp_path / "ref", MEASURED)
    _ledger(ref, MEASURED, name="y.book.0000.json")
    _ledger(ref, MEASURED, name="y.paper.0000.json")  # paper records are not re-made by CI
    new = _ledger(tmp_path / "new", MEASURED)
    assert ledger_compare.compare(ref, new)[1] == []
    _, problems = ledger_compare.compare(ref, new, complete_profile="book")
    assert problems == ["y.book.0000.json: committed, but not made by this run"]


def _final_test_loss(arch: str, perturb: bool) -> float:
    """A deliberately machine-sensitive 'measured figure': the final test loss of a depth-32
    network, trained from the seed-0 weights or from those weights moved by one ulp (what a
    different BLAS kernel does to the first sums of a run)."""
    spec = G.GIAParams.build(profile="smoke").spec_for(arch, "reused", 64, 32, 64)
    weights = G.init_weights(spec, np.random.default_rng(0))
    if perturb:
        weights = G.ulp_perturbed(weights, "float32", np.random.default_rng(1))
    data = load("digits", seed=0, n_train=512, n_test=128)
    hist = train(Network(spec, weights=weights), data.X_train,
                 data.y_train, eta_c=1.0, epochs=3, batch=128, loss="cross_entropy",
                 X_test=data.X_test, Y_test=data.y_test, eval_every=4, rng=np.random.default_rng(2))
    return hist.test_loss[-1]


@pytest.mark.parametrize("arch, fails", [("mup_resnet", True), ("depth_mup", False)])
def test_a_machine_sensitive_check_fails_the_comparison(tmp_path, arch, fails):
    """The same figure computed twice, one ulp apart: a µP ResNet at depth 32 amplifies the
    ulp far beyond the tolerance, so a ledger that reports it fails the stage; depth-µP
    keeps it at rounding level and passes."""
    ref = _ledger(tmp_path / "ref", {"final_test_loss": _final_test_loss(arch, False)})
    new = _ledger(tmp_path / "new", {"final_test_loss": _final_test_loss(arch, True)})
    _, problems = ledger_compare.compare(ref, new)
    assert bool(problems) is fails
