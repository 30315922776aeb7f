"""book/notes/model.md, numerically: the four architectures of nfdlib.model compute the
recursions the note writes (forward, backward, one SGD step with η = η_c n), checked here
against a direct transcription of the note's formulas; and under depth-µP one SGD step moves
each hidden layer's features through its SGD drift by O(1/L), the whole stack by O(1). (That the decoupled
network's backward weights receive the same update as W is tests/test_network.py::
test_decoupled_differs_only_through_backward_weights.)"""
import math

import numpy as np
import pytest

from nfdlib.model import ARCHITECTURES, NetworkSpec, init_weights
from nfdlib.network import Network

n, L, d = 24, 5, 7


def _note_forward(arch, U, W, v, xi):
    """The note's Eqs. (model-forward) and (model-variants), written out."""
    h = U @ xi / math.sqrt(d)
    hs = [h]
    for Wl in W:
        if arch == "depth_mup":
            h = h + Wl @ np.tanh(h) / math.sqrt(n * L)
        elif arch == "mup_resnet":
            h = h + Wl @ np.tanh(h) / math.sqrt(n)
        elif arch == "vanilla":
            h = Wl @ np.tanh(h) / math.sqrt(n)
        else:
            h = h + np.tanh(Wl @ h / math.sqrt(n)) / math.sqrt(L)
        hs.append(h)
    return hs, float(v @ h / n)


def _note_backward(arch, W, B, v, hs, chi):
    """The note's backward recursion with backward weights B: χ g_ℓ, g_ℓ = n ∂f/∂h_ℓ."""
    g = chi * v
    gs = [g]
    for ell in range(L, 0, -1):
        Bl, h = B[ell - 1], hs[ell - 1]
        if arch == "post_act":
            u = W[ell - 1] @ h / math.sqrt(n)
            g = g + Bl.T @ ((1 - np.tanh(u) ** 2) * g) / math.sqrt(n * L)
        else:
            r = 0.0 if arch == "vanilla" else 1.0
            m = 1 / math.sqrt(n * L) if arch == "depth_mup" else 1 / math.sqrt(n)
            g = r * g + m * (1 - np.tanh(h) ** 2) * (Bl.T @ g)
        gs.append(g)
    return gs[::-1]


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("backward", ["reused", "decoupled"])
def test_network_computes_the_notes_recursions(arch, backward):
    spec = NetworkSpec.build(arch=arch, width=n, depth=L, d=d, backward=backward, backend="numpy",
                             dtype="float64")
    w = init_weights(spec, np.random.default_rng(3))
    U, W, v = w["U"], w["W"], w["V"][:, 0]
    B = w.get("B", W)
    xi = np.random.default_rng(4).standard_normal(d)
    xi *= math.sqrt(d) / np.linalg.norm(xi)
    y, eta_c = 0.7, 0.3
    net = Network(spec, weights=w)
    hs, f = _note_forward(arch, U, W, v, xi)
    p = net.forward(xi[None])
    np.testing.assert_allclose(p.numpy("hs")[:, 0], np.array(hs), rtol=1e-12, atol=1e-12)
    assert p.f[0, 0] == pytest.approx(f, rel=1e-12)
    chi = f - y
    gs = _note_backward(arch, W, B, v, hs, chi)
    net.backward(p, np.array([[chi]]))
    np.testing.assert_allclose(p.numpy("gs")[:, 0], np.array(gs), rtol=1e-10, atol=1e-12)
    # one SGD step, η = η_c n (the note's update formulas; the gradient uses B)
    net.step(xi[None], [[y]], eta_c)
    after = net.weights()
    eta = eta_c * n
    np.testing.assert_allclose(after["V"][:, 0] - v, -eta * chi * hs[-1] / n, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(after["U"] - U, -eta * np.outer(gs[0] / n, xi) / math.sqrt(d),
                               rtol=1e-9, atol=1e-13)
    if arch in ("depth_mup", "mup_resnet", "vanilla"):
        m = 1 / math.sqrt(n * L) if arch == "depth_mup" else 1 / math.sqrt(n)
        for ell in range(1, L + 1):
            dW = -eta * m * np.outer(gs[ell] / n, np.tanh(hs[ell - 1]))
            np.testing.assert_allclose(after["W"][ell - 1] - W[ell - 1], dW, rtol=1e-9, atol=1e-13)
            if backward == "decoupled":
                np.testing.assert_allclose(after["B"][ell - 1] - B[ell - 1], dW, rtol=1e-9, atol=1e-13)


def _layer_drifts(arch, depth, width=256, seeds=3):
    """max_ℓ and Σ_ℓ of the RMS size of the SGD drift m ΔW_ℓ φ(h_{ℓ-1}) after one step."""
    per, tot = [], []
    for s in range(seeds):
        spec = NetworkSpec.build(arch=arch, width=width, depth=depth, d=16, backend="numpy", dtype="float64")
        net = Network(spec, rng=np.random.default_rng([s, depth]))
        xi = np.random.default_rng(s).standard_normal((1, 16))
        xi *= 4 / np.linalg.norm(xi)
        xs = net.forward(xi).numpy("xs")[:, 0]
        W0 = net.weights()["W"]
        net.step(xi, [[1.0]], 0.5, train=("W",))
        dW = net.weights()["W"] - W0
        drift = spec.scales.mult * np.einsum("lij,lj->li", dW, xs)
        sizes = np.sqrt(np.mean(drift**2, axis=1))
        per.append(sizes.max())
        tot.append(sizes.sum())
    return np.mean(per), np.mean(tot)


def test_depth_mup_drift_is_order_one_over_L_per_layer():
    (p4, t4), (p32, t32) = _layer_drifts("depth_mup", 4), _layer_drifts("depth_mup", 32)
    assert 0.7 < (32 * p32) / (4 * p4) < 1.4      # per layer O(1/L)
    assert 0.7 < t32 / t4 < 1.4                    # the whole stack O(1)
    # without the depth factor the per-layer drift does not shrink with L
    (q4, _), (q32, _) = _layer_drifts("mup_resnet", 4), _layer_drifts("mup_resnet", 32)
    assert (32 * q32) / (4 * q4) > 4.0
