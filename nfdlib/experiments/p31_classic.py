"""The classic post-activation block of the original ResNet (He et al. 2016a), the
activation applied after the skip connection, with a one-layer linear branch at the
depth-µP scale (a labelled contrast, not Eq. 29):

    h_0 = U ξ/√d,    h_ℓ = φ(h_{ℓ-1} + (1/√(nL)) W_ℓ h_{ℓ-1}),   ℓ = 1..L

One signature on every backend: ``classic_forward(U, W, X, act) -> hs`` (L+1 × B × n, native
arrays), with ``U``, ``W``, ``X`` already converted by the backend's ``asarray``. The numpy
version is the tests' oracle.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..backends import get_backend
from ..backends.numba_backend import SAFE_FASTMATH, phi_scalar
from ..backends.numpy_ref import phi as np_phi

_ACT = {"tanh": 0, "relu": 1, "linear": 2}


def classic_numpy(U, W, X, act):
    """Reference: the recursion above, layer by layer."""
    L, n = W.shape[0], W.shape[1]
    hs = [X @ U.T / np.sqrt(U.shape[1])]
    for layer in range(L):
        h = hs[-1]
        hs.append(np_phi(h + (h @ W[layer].T) / np.sqrt(n * L), act))
    return np.stack(hs)


@njit(cache=True, fastmath=SAFE_FASTMATH, error_model="numpy")
def _classic_numba(U, W, X, act):
    L, n = W.shape[0], W.shape[1]
    B = X.shape[0]
    hs = np.empty((L + 1, B, n), dtype=U.dtype)
    tmp = np.empty((B, n), dtype=U.dtype)
    np.dot(X, U.T, hs[0])
    hs[0] *= 1.0 / math.sqrt(U.shape[1])
    scale = 1.0 / math.sqrt(n * L)
    for layer in range(L):
        np.dot(hs[layer], W[layer].T, tmp)
        for b in range(B):
            for i in range(n):
                hs[layer + 1, b, i] = phi_scalar(hs[layer, b, i] + scale * tmp[b, i], act)
    return hs


def _classic_torch(U, W, X, act):
    import torch
    be = get_backend("torch")
    L, n = W.shape[0], W.shape[1]
    with torch.no_grad():
        hs = torch.empty((L + 1, X.shape[0], n), dtype=U.dtype, device=U.device)
        hs[0] = X @ U.T / math.sqrt(U.shape[1])
        for layer in range(L):
            hs[layer + 1] = be.phi(hs[layer] + hs[layer] @ W[layer].T / math.sqrt(n * L), act)
    return hs


def classic_forward(backend: str, U, W, X, act: str):
    """The classic block's forward pass on ``backend`` (numpy, numba or torch)."""
    if backend == "numba":
        return _classic_numba(U, W, np.ascontiguousarray(X, dtype=U.dtype), _ACT[act])
    if backend == "torch":
        return _classic_torch(U, W, X, act)
    return classic_numpy(U, W, X, act)
