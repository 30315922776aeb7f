"""Regenerated weights (nfdlib.model.LayerWeights): every layer re-drawn from its recorded
bit-generator state is bitwise the stored one, and so is everything computed from them on
every backend (passes, SGD steps, the P4.2 coupled passes, the P5.2 one-step records); the
memory they hold grows like n², not L·n²."""
import itertools

import numpy as np
import pytest

import nfdlib.model as model
from nfdlib.experiments import p42_gia_init as p42
from nfdlib.experiments.p52_compute import compute_point
from nfdlib.experiments.p52_params import GapParams
from nfdlib.model import LayerWeights, NetworkSpec, init_weights
from nfdlib.network import Network, loss_and_chi
from nfdlib.params import ParamError, declared_memory

BACKENDS = ["numpy", "numba", "torch"]
GiB = 2**30


@pytest.mark.parametrize("dtype,backward", list(itertools.product(["float32", "float64"], ["reused", "decoupled"])))
def test_regenerated_layers_are_the_stored_ones(dtype, backward):
    spec = NetworkSpec.build(width=37, depth=6, d=5, n_out=2, dtype=dtype, backward=backward)
    rng_s, rng_r = np.random.default_rng(11), np.random.default_rng(11)
    stored, regen = init_weights(spec, rng_s), init_weights(spec, rng_r, "regenerated")
    for key in stored:
        got = regen[key]
        if key in ("W", "B"):
            assert isinstance(got, LayerWeights) and len(got) == spec.depth
            assert got.shape == stored[key].shape
            # read out of order and twice: each read restores its own state
            for layer in (3, 0, 5, 3, 1, 2, 4):
                assert got[layer].dtype == stored[key].dtype
                np.testing.assert_array_equal(got[layer], stored[key][layer])
            got = got.materialise()
        np.testing.assert_array_equal(got, stored[key])
    assert rng_s.bit_generator.state == rng_r.bit_generator.state   # draws after them agree too


def test_direct_float32_draws_regenerate():
    """P4.2 draws in float32 directly (another ziggurat, another consumption of the stream)."""
    a = LayerWeights.draw(np.random.default_rng(2), 5, 33, "float32", "float32", "stored")
    b = LayerWeights.draw(np.random.default_rng(2), 5, 33, "float32", "float32", "regenerated")
    rng = np.random.default_rng(2)
    for layer in range(5):
        np.testing.assert_array_equal(b[layer], rng.standard_normal((33, 33), dtype=np.float32))
        np.testing.assert_array_equal(b[layer], a[layer])


def test_layer_reads_are_checked_and_kept():
    w = LayerWeights.draw(np.random.default_rng(0), 3, 8, "float64", "float64", "regenerated")
    assert w[2] is w[2]                      # the last layer read is kept, not drawn again
    with pytest.raises(IndexError):
        w[3]
    with pytest.raises(ParamError, match="'mode'"):
        init_weights(NetworkSpec.build(width=8, depth=2), np.random.default_rng(0), "lazy")
    with pytest.raises(ValueError, match="on\\(native, add\\)"):
        w.updated(None, None, 1.0)


def run_network(backend, arch, backward, dtype, mode):
    spec = NetworkSpec.build(arch=arch, backward=backward, backend=backend, dtype=dtype,
                             width=24, depth=5, d=7, n_out=3, device="cpu" if backend == "torch" else "auto")
    net = Network(spec, rng=3, mode=mode)
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((6, 7)), rng.standard_normal((6, 3))
    first = net.forward(X)
    _, chi = loss_and_chi(first.f, Y, "mse")
    net.backward(first, chi)
    out = {f"{k}0": first.numpy(k) for k in ("hs", "xs", "us", "gs", "deltas")}
    for _ in range(2):
        net.step(X, Y, eta_c=0.7)
    out.update(net.weights())
    after = net.forward(X)
    net.backward(after, chi)
    out.update({"f2": after.f, "gs2": after.numpy("gs"), "gradW": net.gradients(X, Y)["W"]})
    return out, net


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("arch,backward", [("depth_mup", "reused"), ("depth_mup", "decoupled"),
                                           ("post_act", "decoupled"), ("vanilla", "reused")])
def test_network_passes_and_steps_are_bitwise_the_stored_ones(backend, arch, backward):
    for dtype in ("float32", "float64"):
        stored, _ = run_network(backend, arch, backward, dtype, "stored")
        regen, net = run_network(backend, arch, backward, dtype, "regenerated")
        assert isinstance(net.params["W"], LayerWeights)
        for key, ref in stored.items():
            np.testing.assert_array_equal(regen[key], ref, err_msg=f"{key} ({dtype})")


@pytest.fixture
def always_regenerate(monkeypatch):
    """Every weight stack counts as too large to hold."""
    monkeypatch.setattr(model, "STORED_MAX_BYTES", 0)


def p42_points():
    return {(b, dt): p42.gia_point(40, 7, 1, ["tanh", "relu"], b, "cpu", dt, 5, 3)
            for b in BACKENDS for dt in ("float32", "float64")}


def p52_points():
    out = {}
    for backend, act in itertools.product(BACKENDS, ["tanh", "linear"]):
        P = GapParams.build(profile="smoke", backend=backend, activation=act,
                            device="cpu" if backend == "torch" else "auto")
        out[backend, act] = compute_point(48, 6, 1, P.to_dict())
    return out


@pytest.mark.parametrize("points", [p42_points, p52_points], ids=["p42", "p52"])
def test_experiment_records_are_bitwise_the_stored_ones(points, monkeypatch):
    stored = points()
    monkeypatch.setattr(model, "STORED_MAX_BYTES", 0)
    drawn = []
    real_draw = LayerWeights.draw.__func__
    monkeypatch.setattr(LayerWeights, "draw", classmethod(
        lambda cls, *a: drawn.append(a[-1]) or real_draw(cls, *a)))
    regen = points()
    assert drawn and set(drawn) == {"regenerated"}
    for key, rec in stored.items():
        flat = rec if "tanh" not in rec else {f"{a}/{k}": v for a in ("tanh", "relu") for k, v in rec[a].items()}
        other = regen[key] if "tanh" not in rec else {f"{a}/{k}": v for a in ("tanh", "relu")
                                                      for k, v in regen[key][a].items()}
        for name, value in flat.items():
            np.testing.assert_array_equal(np.asarray(other[name]), np.asarray(value), err_msg=f"{key} {name}")


def test_regenerated_memory_grows_like_one_layer():
    for backward in ("reused", "decoupled"):
        base = NetworkSpec.build(width=512, depth=4, backward=backward)
        deep, wide = base.replace(depth=256), base.replace(width=1024)
        assert deep.weight_bytes("regenerated") == base.weight_bytes("regenerated")
        assert wide.weight_bytes("regenerated") / base.weight_bytes("regenerated") == pytest.approx(4, rel=0.02)
        item, copies = 4, base.copies      # float32; W, and W̃ when decoupled
        assert deep.weight_bytes("stored") - base.weight_bytes("stored") == copies * 252 * 512**2 * item
    assert NetworkSpec.build(width=4096, depth=256).weight_mode == "regenerated"
    assert NetworkSpec.build(width=512, depth=64).weight_mode == "stored"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_network_holds_the_weights_it_drew_once(backend, traced_peak):
    """Stored weights that a network draws itself are not copied on the way to its backend
    (the peak is one stack, not two), while weights handed in are copied (the caller keeps
    its own)."""
    spec = NetworkSpec.build(width=256, depth=32, dtype="float64", backend=backend,
                             device="cpu" if backend == "torch" else "auto")
    stack = 8 * 32 * 256**2
    Network(spec.replace(depth=1), rng=0)  # the backend's first use (imports, caches) outside the count
    net, peak = traced_peak(Network, spec, rng=0, mode="stored")
    assert stack <= peak < 1.2 * stack
    given = init_weights(spec, np.random.default_rng(0), "stored")
    other = Network(spec, weights=given)
    other.step(np.ones((2, spec.d)), np.zeros((2, 1)), eta_c=0.5)
    np.testing.assert_array_equal(given["W"], init_weights(spec, np.random.default_rng(0), "stored")["W"])
    np.testing.assert_array_equal(np.asarray(net.weights()["W"]), given["W"])


@pytest.mark.parametrize("build,stored_gib", [
    (lambda: p42.GIAParams.build(profile="paper"), 16),                          # 4096 × 256
    (lambda: GapParams.build(profile="paper", widths=[512, 1024, 2048], depths=[4, 256]), 16),
])
def test_paper_profiles_declare_under_8_gib(build, stored_gib):
    """What the parameter checks declare (one to two layers at a time, plus the passes) for
    the paper sizes, where holding the weights took ``stored_gib`` GiB or more."""
    with declared_memory() as sink:
        build()
    held = max(b for b, _ in sink)
    assert held < 1 * GiB < stored_gib * GiB


def test_impossible_sizes_still_fail_clearly():
    with pytest.raises(ParamError, match=r"width 1000000 and depth 4 \(regenerated weights\) needs"):
        NetworkSpec.build(width=10**6, depth=4)
    with pytest.raises(ParamError, match="coupled passes at width 300000"):
        p42.GIAParams.build(profile="paper", widths=[64, 128, 300000])
