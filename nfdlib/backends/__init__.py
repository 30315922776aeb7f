"""Backends: one protocol, three implementations.

``numpy_ref``  the readable numpy reference (the tests' oracle)
``numba``      CPU kernels: BLAS for the matrix products, fused parallel loops for the rest
``torch``      torch tensors on CUDA when present, else the CPU

Every backend module provides, with the same signatures (arrays in its native type;
``sc`` is a :class:`nfdlib.model.Scales`, ``act`` one of ``tanh``, ``relu``, ``linear``):

``asarray(x, dtype, device)``, ``to_numpy(x)``, ``describe_device(device)``
``forward(U, W, V, X, sc, act) -> (hs, xs, us, f)``
    hs[ℓ] = h_ℓ (L+1 × B × n), xs[ℓ-1] = input of W_ℓ (φ(h_{ℓ-1}), or h_{ℓ-1} for
    post-activation), us[ℓ-1] = φ(m W_ℓ h_{ℓ-1}) (post-activation only, else empty),
    f = h_L V / n.
``backward(Bw, V, hs, xs, us, chi, sc, act) -> (gs, deltas)``
    (φ' is evaluated through the stored φ values: 1 - φ² for tanh, 1{φ > 0} for ReLU)
    gs[ℓ] = g_ℓ = n ∂f/∂h_ℓ contracted with χ = ∂loss/∂f (the paper's Eq. 3; book/notes/model.md) using the
    backward weights Bw; deltas[ℓ-1] = the gradient entering W_ℓ's branch, so that
    ∂loss/∂W_ℓ = (m/n) Σ_b deltas[ℓ-1]ᵀ xs[ℓ-1].
``add_outer(T, a, b, scale)``: T += scale·aᵀb;  ``add_outer_layers(T, A, B, scale)``:
    T[ℓ] += scale·A[ℓ]ᵀB[ℓ] for every layer; ``add_outer_layer(T, a, b, scale)``: one layer
    of it, bitwise (the update of :class:`nfdlib.model.LayerWeights`).

``W`` and ``Bw`` are an L×n×n array or a :class:`nfdlib.model.LayerWeights` (layers re-drawn
when read): the passes read only ``W.shape`` and ``W[ℓ]``, each layer once per pass.
"""
from __future__ import annotations

import importlib

from ..params import ParamError

_MODULES = {"numpy": "numpy_ref", "numba": "numba_backend", "torch": "torch_backend"}


def get_backend(name: str):
    """The backend module called ``name`` (``numba``, ``torch`` or ``numpy``)."""
    if name not in _MODULES:
        raise ParamError(f"parameter 'backend' = {name!r} is not allowed; allowed: {', '.join(_MODULES)}")
    return importlib.import_module(f"{__name__}.{_MODULES[name]}")
