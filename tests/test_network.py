"""Finite networks: every backend agrees with the numpy reference, true backprop equals
torch.autograd, and the decoupled network differs only through its backward weights."""
import itertools

import numpy as np
import pytest
import torch

from nfdlib.model import ARCHITECTURES, NetworkSpec, init_weights
from nfdlib.network import Network, loss_and_chi
from nfdlib.params import ParamError

SIZES = dict(width=24, depth=5, d=7, n_out=3)
# float32: unit roundoff u = 6e-8. Each entry is a sum of at most max(n, d, B) = 24 products
# per layer, over L = 5 layers and 3 SGD steps, so the accumulated relative error is bounded
# by roughly 3·L·24·u ≈ 2e-5 of the entries' scale; we allow 1e-4 of the largest entry.
TOL = {"float64": 1e-10, "float32": 1e-4}


def batch(seed=0, B=6, K=3, d=7):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((B, d))
    X *= np.sqrt(d) / np.linalg.norm(X, axis=1, keepdims=True)
    return X, rng.standard_normal((B, K))


def run_three_steps(backend, arch, backward, dtype, act="tanh"):
    spec = NetworkSpec.build(arch=arch, backward=backward, backend=backend, dtype=dtype,
                             activation=act, **SIZES)
    net = Network(spec, rng=3)
    X, Y = batch()
    first = net.forward(X)
    _, chi = loss_and_chi(first.f, Y, "mse")
    net.backward(first, chi)
    out = {"f0": first.f, "gs0": first.numpy("gs").astype(np.float64)}
    for _ in range(3):
        net.step(X, Y, eta_c=0.7)
    out.update({k: v.astype(np.float64) for k, v in net.weights().items()})
    out["f3"] = net.predict(X)
    return out


def assert_close(got, ref, tol):
    for key in ref:
        scale = max(np.abs(ref[key]).max(), 1e-12)
        err = np.abs(got[key] - ref[key]).max() / scale
        assert err < tol, f"{key}: relative error {err:.3g} > {tol}"


@pytest.mark.parametrize("arch,backward", list(itertools.product(ARCHITECTURES, ["reused", "decoupled"])))
@pytest.mark.parametrize("backend", ["numba", "torch"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_backend_agrees_with_reference(arch, backward, backend, dtype):
    ref = run_three_steps("numpy", arch, backward, "float64")
    got = run_three_steps(backend, arch, backward, dtype)
    assert_close(got, ref, TOL[dtype])


@pytest.mark.parametrize("act", ["relu", "linear"])
def test_other_activations_agree(act):
    ref = run_three_steps("numpy", "depth_mup", "reused", "float64", act)
    for backend in ("numba", "torch"):
        assert_close(run_three_steps(backend, "depth_mup", "reused", "float64", act), ref, 1e-10)


def autograd_loss(weights, arch, X, Y, act, loss):
    """The same model written directly in torch, differentiated by autograd."""
    L, n = weights["W"].shape[0], weights["W"].shape[1]
    d = X.shape[1]
    U, W, V = (torch.tensor(weights[k], requires_grad=True) for k in ("U", "W", "V"))
    phi = {"tanh": torch.tanh, "relu": torch.relu, "linear": lambda z: z}[act]
    h = torch.tensor(X) @ U.T / d**0.5
    for layer in range(L):
        if arch == "depth_mup":
            h = h + phi(h) @ W[layer].T / (n * L) ** 0.5
        elif arch == "mup_resnet":
            h = h + phi(h) @ W[layer].T / n**0.5
        elif arch == "vanilla":
            h = phi(h) @ W[layer].T / n**0.5
        else:
            h = h + phi(h @ W[layer].T / n**0.5) / L**0.5
    f = h @ V / n
    if loss == "mse":
        value = 0.5 * ((f - torch.tensor(Y)) ** 2).sum(dim=1).mean()
    else:
        value = torch.nn.functional.cross_entropy(f, torch.tensor(Y))
    value.backward()
    return {"U": U.grad.numpy(), "W": W.grad.numpy(), "V": V.grad.numpy()}


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_reused_backward_is_autograd(arch, backend, loss):
    spec = NetworkSpec.build(arch=arch, backend=backend, dtype="float64", activation="tanh", **SIZES)
    net = Network(spec, rng=5)
    X, Y = batch(1)
    if loss == "cross_entropy":
        Y = np.array([0, 2, 1, 1, 0, 2])
    grads = net.gradients(X, Y, loss=loss)
    expected = autograd_loss(net.weights(), arch, X, Y, "tanh", loss)
    for key in expected:
        np.testing.assert_allclose(grads[key], expected[key], rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_decoupled_differs_only_through_backward_weights(arch):
    spec_r = NetworkSpec.build(arch=arch, backend="numpy", dtype="float64", **SIZES)
    spec_d = spec_r.replace(backward="decoupled")
    weights = init_weights(spec_d, np.random.default_rng(9))
    X, Y = batch(2)
    reused = Network(spec_r, weights={k: weights[k] for k in "UWV"})
    # with B = W the decoupled network is the true network, step for step
    same = Network(spec_d, weights=dict(weights, B=weights["W"]))
    for _ in range(2):
        assert np.array_equal(reused.step(X, Y, 0.5), same.step(X, Y, 0.5))
    for key in "UWV":
        np.testing.assert_array_equal(reused.weights()[key], same.weights()[key])
    # with an independent B: the forward pass and g_L agree, the backward pass does not,
    # and the update of B equals the update of W (shared updates, book/notes/model.md)
    reused = Network(spec_r, weights={k: weights[k] for k in "UWV"})
    dec = Network(spec_d, weights=weights)
    pr, pd = reused.forward(X), dec.forward(X)
    np.testing.assert_array_equal(pr.f, pd.f)
    _, chi = loss_and_chi(pr.f, Y, "mse")
    reused.backward(pr, chi)
    dec.backward(pd, chi)
    np.testing.assert_array_equal(pr.gs[-1], pd.gs[-1])
    assert np.abs(pr.gs[0] - pd.gs[0]).max() > 1e-3
    w0, b0 = dec.weights()["W"], dec.weights()["B"]
    dec.step(X, Y, 0.5)
    np.testing.assert_allclose(dec.weights()["W"] - w0, dec.weights()["B"] - b0, atol=1e-14)


def test_frozen_groups_do_not_move():
    spec = NetworkSpec.build(backend="numba", dtype="float64", **SIZES)
    net = Network(spec, rng=1)
    before = net.weights()
    X, Y = batch()
    net.step(X, Y, 0.5, train=("W",))
    after = net.weights()
    np.testing.assert_array_equal(before["U"], after["U"])
    np.testing.assert_array_equal(before["V"], after["V"])
    assert np.abs(before["W"] - after["W"]).max() > 0


def test_same_seed_shares_forward_weights():
    spec = NetworkSpec.build(**SIZES)
    a = init_weights(spec, np.random.default_rng(4))
    b = init_weights(spec.replace(backward="decoupled"), np.random.default_rng(4))
    for k in "UWV":
        np.testing.assert_array_equal(a[k], b[k])


@pytest.mark.parametrize("values,needle", [
    (dict(width=0), "'width'"),
    (dict(depth=-3), "'depth'"),
    (dict(arch="resnet"), "'arch'"),
    (dict(activation="gelu"), "'activation'"),
    (dict(backend="jax"), "'backend'"),
    (dict(dtype="float16"), "'dtype'"),
    (dict(width="wide"), "'width'"),
    (dict(colour="red"), "unknown parameter"),
    (dict(backend="numba", device="cuda"), "'device'"),
    (dict(width=2**17, depth=2**10), "GiB"),
])
def test_bad_network_parameters(values, needle):
    with pytest.raises(ParamError, match=needle):
        NetworkSpec.build(**values)


def test_bad_loss_and_input_dimension():
    net = Network(NetworkSpec.build(backend="numpy", **SIZES))
    X, Y = batch()
    with pytest.raises(ParamError, match="'loss'"):
        net.step(X, Y, 0.1, loss="hinge")
    with pytest.raises(ParamError, match="dimension"):
        net.predict(np.ones((2, 5)))


def test_vectorisable_tanh_matches_numpy():
    """tanh_vec (the arithmetic tanh of the numba particle kernels) agrees with numpy's tanh to
    a few ulp over its whole range, saturates at ±1 and keeps NaN (divergences stay visible)."""
    from numba import njit

    from nfdlib.backends.numba_backend import tanh_vec

    @njit
    def apply(x, out):
        for i in range(x.size):
            out[i] = tanh_vec(x[i])

    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(-25, 25, 200_001), 3 * rng.standard_normal(100_000),
                        np.logspace(-300, 1.5, 10_000), -np.logspace(-300, 1.5, 10_000)])
    out = np.empty_like(x)
    apply(x, out)
    ref = np.tanh(x)
    np.testing.assert_allclose(out, ref, rtol=5e-15, atol=0)
    special = np.array([np.inf, -np.inf, np.nan, 0.0, 1e300])
    out = np.empty_like(special)
    apply(special, out)
    assert out[0] == 1.0 and out[1] == -1.0 and np.isnan(out[2]) and out[3] == 0.0 and out[4] == 1.0
