"""The torch backend: the same kernels on torch tensors, on CUDA when present (device
``auto``) or on the CPU."""
from __future__ import annotations

import numpy as np
import torch

from ..params import ParamError

NAME = "torch"


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ParamError("parameter 'device' = 'cuda' is not allowed here: no CUDA device is "
                         "available; allowed: 'auto', 'cpu'")
    return torch.device(device)


def describe_device(device: str = "auto") -> str:
    dev = resolve_device(device)
    return torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"


def asarray(x, dtype: str, device: str = "auto", copy: bool = True):
    """``x`` as a tensor of ``dtype`` on ``device``: a copy, or with ``copy=False`` sharing
    ``x``'s memory where it is already a CPU array of that dtype and the device is the CPU."""
    return torch.as_tensor(np.array(x, dtype=dtype, copy=True if copy else None), device=resolve_device(device))


def to_numpy(x):
    return x.detach().cpu().numpy()


def phi(x, act):
    if act == "tanh":
        return torch.tanh(x)
    if act == "relu":
        return torch.relu(x)
    return x


def dphi(x, act):
    """φ'(x)."""
    return dphi_of_phi(phi(x, act), act)


def dphi_of_phi(a, act):
    """φ'(z) written through a = φ(z): 1 - a² (tanh), 1{a > 0} (ReLU), 1 (linear)."""
    if act == "tanh":
        return 1 - a * a
    if act == "relu":
        return (a > 0).to(a.dtype)
    return torch.ones_like(a)


@torch.no_grad()
def forward(U, W, V, X, sc, act):
    """Eq. 1 / Eq. 29 forward pass (see the numpy reference)."""
    L, n, d = W.shape[0], W.shape[1], U.shape[1]
    B = X.shape[0]
    hs = torch.empty((L + 1, B, n), dtype=U.dtype, device=U.device)
    xs = torch.empty((L, B, n), dtype=U.dtype, device=U.device)
    us = torch.empty((L if sc.post else 0, B, n), dtype=U.dtype, device=U.device)
    torch.matmul(X, U.T, out=hs[0])
    hs[0] *= d ** -0.5
    for layer in range(L):
        h = hs[layer]
        if sc.post:
            xs[layer] = h
            torch.matmul(h, W[layer].T, out=us[layer])
            us[layer] = phi(us[layer] * sc.mult, act)
            torch.add(h, us[layer], alpha=sc.outer, out=hs[layer + 1])
        else:
            xs[layer] = phi(h, act)
            torch.matmul(xs[layer], W[layer].T, out=hs[layer + 1])
            hs[layer + 1].mul_(sc.mult)
            if sc.resid:
                hs[layer + 1].add_(h, alpha=sc.resid)
    f = hs[L] @ V / n
    return hs, xs, us, f


@torch.no_grad()
def backward(Bw, V, hs, xs, us, chi, sc, act):
    """Eq. 3 backward pass (see the numpy reference)."""
    L = Bw.shape[0]
    gs = torch.empty_like(hs)
    deltas = torch.empty_like(xs)
    torch.matmul(chi, V.T, out=gs[L])
    for layer in reversed(range(L)):
        g = gs[layer + 1]
        if sc.post:
            torch.mul(dphi_of_phi(us[layer], act), g, out=deltas[layer])
            deltas[layer] *= sc.outer
            torch.matmul(deltas[layer], Bw[layer], out=gs[layer])
            gs[layer].mul_(sc.mult).add_(g)
        else:
            deltas[layer] = g
            torch.matmul(g, Bw[layer], out=gs[layer])
            gs[layer].mul_(dphi_of_phi(xs[layer], act)).mul_(sc.mult)
            if sc.resid:
                gs[layer].add_(g, alpha=sc.resid)
    return gs, deltas


@torch.no_grad()
def add_outer(T, a, b, scale):
    T.addmm_(a.T, b, alpha=scale)


@torch.no_grad()
def add_outer_layer(T, a, b, scale):
    """T += scale·aᵀb for one layer, as the one-layer batch of :func:`add_outer_layers` (the
    same kernel, so bitwise its slice)."""
    T[None].baddbmm_(a.T[None], b[None], alpha=scale)


@torch.no_grad()
def add_outer_layers(T, A, B, scale):
    T.baddbmm_(A.transpose(1, 2), B, alpha=scale)
