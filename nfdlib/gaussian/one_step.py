"""Prop. 5.1: the Gaussian representation of a reused weight matrix after one SGD update.

Fix a layer ℓ with i.i.d. N(0, 1) weights ``W`` (n×n), forward input ``x = x_ℓ`` and backward
vector ``g = g_ℓ`` of the first pass. The first forward and backward passes reveal exactly the
two linear images ``a = W x`` and ``b = Wᵀ g`` (compatible: ``g·a = b·x``). Writing
``P_x = x xᵀ/|x|²`` and ``P_g = g gᵀ/|g|²`` (zero when the vector is zero),

    W = W* + (I - P_g) W (I - P_x),     W* = P_g W + (I - P_g) W P_x            (C.2, Eq. 45)
      = a xᵀ/|x|² + g bᵀ/|g|² - g (g·a) xᵀ/(|g|²|x|²)   (the minimum-norm solution)

and ``(I - P_g) W (I - P_x)`` is independent of ``(a, b)``: it has the law of
``(I - P_g) W' (I - P_x)`` with ``W'`` an independent copy. Multiplying by the second-pass
input ``x' = φ(h'_{ℓ-1})`` (a function of the first passes and of the other layers only) and
by the multiplier ``m = 1/√(nL)`` splits the second forward innovation into three parts
(Eq. 15 in our notation, with ``x'_⊥ = (I - P_x) x'``):

    m W x' = (x·x'/|x|²) · m W x                     forward–forward (aligned with the first
                                                     forward increment)
           + m (Wᵀg · x'_⊥)/|g|² · g                 training-induced coupling (contains Wᵀg)
           + m (I - P_g) W (I - P_x) x'              residual: given the first passes,
                                                     N(0, m² |x'_⊥|² (I - P_g))

The functions below work on numpy arrays and on torch tensors alike (only ``@``, ``*`` and
``.sum()`` are used), so the same code checks a network of either backend.
"""
from __future__ import annotations

import numpy as np


def _dot(a, b):
    return (a * b).sum()


def _project_out(v, u, uu):
    """(I - u uᵀ/|u|²) v, with the projection dropped when |u|² = 0."""
    return v if float(uu) == 0.0 else v - u * (_dot(u, v) / uu)


def min_norm_part(W, x, g):
    """W* = P_g W + (I - P_g) W P_x: the minimum-norm matrix with W* x = W x and
    W*ᵀ g = Wᵀ g (C.2, Eq. 45)."""
    xx, gg = _dot(x, x), _dot(g, g)
    a, b = W @ x, W.T @ g
    out = 0 * W
    if float(gg) != 0.0:
        out = out + g[:, None] * b[None, :] / gg
    if float(xx) != 0.0:
        out = out + _project_out(a, g, gg)[:, None] * x[None, :] / xx
    return out


def redraw(W, x, g, W_new):
    """W* + (I - P_g) W_new (I - P_x): a draw of W from its conditional law given W x and
    Wᵀ g, when ``W_new`` is an independent i.i.d. N(0, 1) matrix."""
    xx, gg = _dot(x, x), _dot(g, g)
    R = W_new
    if float(xx) != 0.0:
        R = R - (R @ x)[:, None] * x[None, :] / xx
    if float(gg) != 0.0:
        R = R - g[:, None] * (g @ R)[None, :] / gg
    return min_norm_part(W, x, g) + R


def split_innovation(W, x, g, x2, m):
    """The three parts of ``m W x2`` (Eq. 15): ``aligned``, ``coupling``, ``residual``, with
    the coefficients ``alpha = x·x2/|x|²`` and ``beta = m (Wᵀg)·x2_⊥/|g|²`` and the residual's
    conditional standard deviation ``sigma = m |x2_⊥|``."""
    xx, gg = _dot(x, x), _dot(g, g)
    alpha = _dot(x, x2) / xx if float(xx) != 0.0 else 0 * xx
    x2_perp = x2 - alpha * x
    beta = m * _dot(W.T @ g, x2_perp) / gg if float(gg) != 0.0 else 0 * gg
    aligned = alpha * (m * (W @ x))
    coupling = beta * g
    residual = m * _project_out(W @ x2_perp, g, gg)
    return {"aligned": aligned, "coupling": coupling, "residual": residual, "alpha": alpha,
            "beta": beta, "sigma": m * _dot(x2_perp, x2_perp) ** 0.5}


def network_identity(W0, dW, xs, deltas, xs2, hs2, m):
    """Eq. 15 for every layer of a pre-activation network after one SGD step on one sample.

    ``W0`` (L×n×n) are the weights before the step and ``dW`` their update; ``xs`` and
    ``deltas`` (L×n) the inputs of W_ℓ and the backward vectors (g_ℓ) of the first pass;
    ``xs2`` (L×n) and ``hs2`` ((L+1)×n) the second forward pass. Returns, per layer, the
    largest deviation of

        h'_ℓ - h'_{ℓ-1} = m ΔW_ℓ x'_ℓ + aligned + coupling + residual

    (the first term is the SGD drift) relative to the largest entry of the increment, and the
    root-mean-square size of each of the four parts."""
    rel_err, sizes = [], []
    for layer in range(W0.shape[0]):
        parts = split_innovation(W0[layer], xs[layer], deltas[layer], xs2[layer], m)
        drift = m * (dW[layer] @ xs2[layer])
        increment = hs2[layer + 1] - hs2[layer]
        rebuilt = drift + parts["aligned"] + parts["coupling"] + parts["residual"]
        scale = float(abs(increment).max())
        rel_err.append(float(abs(increment - rebuilt).max()) / (scale if scale > 0 else 1.0))
        sizes.append({k: float(_dot(v, v) / v.shape[0]) ** 0.5 for k, v in
                      (("drift", drift), ("aligned", parts["aligned"]),
                       ("coupling", parts["coupling"]), ("residual", parts["residual"]))})
    return rel_err, sizes


def conditional_law(W, x, g, x2, m, rng: np.random.Generator, draws: int = 400) -> dict:
    """Redraw W from its conditional law given the first passes (:func:`redraw`) ``draws``
    times and test Eq. 15's residual: every redraw satisfies both constraints
    (``constraint_error``, relative), the residual is orthogonal to g (``along_g``), and its
    projections on two orthonormal directions e₁, e₂ ⊥ g, divided by ``sigma``, are
    independent N(0, 1) (``ks_pvalue``: Kolmogorov–Smirnov on both samples pooled;
    ``corr``: their sample correlation; ``var``: their sample variance)."""
    from scipy import stats

    W, x, g, x2 = (np.asarray(v, dtype=np.float64) for v in (W, x, g, x2))
    n = W.shape[0]
    a, b = W @ x, W.T @ g
    E = rng.standard_normal((n, 2))
    E[:, 0] = _project_out(E[:, 0], g, _dot(g, g))
    E[:, 0] /= np.linalg.norm(E[:, 0])
    E[:, 1] = _project_out(_project_out(E[:, 1], g, _dot(g, g)), E[:, 0], 1.0)
    E[:, 1] /= np.linalg.norm(E[:, 1])
    z, cons, along = [], 0.0, 0.0
    for _ in range(draws):
        Wr = redraw(W, x, g, rng.standard_normal((n, n)))
        cons = max(cons, np.abs(Wr @ x - a).max() / np.abs(a).max(),
                   np.abs(Wr.T @ g - b).max() / np.abs(b).max())
        parts = split_innovation(Wr, x, g, x2, m)
        along = max(along, abs(_dot(parts["residual"], g)) / (np.linalg.norm(g) * parts["sigma"]))
        z.append(parts["residual"] @ E / parts["sigma"])
    z = np.asarray(z)
    return {"constraint_error": float(cons), "along_g": float(along),
            "ks_pvalue": float(stats.kstest(z.ravel(), "norm").pvalue),
            "corr": float(np.corrcoef(z.T)[0, 1]), "var": z.var(axis=0, ddof=1).tolist()}


def residual_law(x, g, x2, m, rng: np.random.Generator, draws: int = 2000,
                 split=split_innovation) -> dict:
    """Monte Carlo over i.i.d. N(0, 1) matrices W with x, g, x2 held fixed: the residual of
    ``split`` must be independent of what the first passes reveal, a = W x and b = Wᵀ g, and
    distributed as N(0, m²|x2_⊥|² (I - P_g)). For a fixed unit direction u (not ⊥ g) this
    returns the correlations of r·u with a random probe e·a of a and with b·x2_⊥ (``corr_a``,
    ``corr_b``; both about N(0, 1/draws) when the law holds), the variance ratio
    ``var_ratio`` = Var(r·u) / (m²|x2_⊥|²|(I - P_g)u|²) and the KS p-value of r·u
    standardised. ``split`` is a parameter so that a test can feed a wrong decomposition."""
    from scipy import stats

    x, g, x2 = (np.asarray(v, dtype=np.float64) for v in (x, g, x2))
    n = x.shape[0]
    u, e = rng.standard_normal((2, n))
    u /= np.linalg.norm(u)
    e /= np.linalg.norm(e)
    x2p = x2 - (x @ x2) / (x @ x) * x
    ru, ea, bx = np.empty(draws), np.empty(draws), np.empty(draws)
    for k in range(draws):
        W = rng.standard_normal((n, n))
        ru[k] = split(W, x, g, x2, m)["residual"] @ u
        ea[k] = e @ (W @ x)
        bx[k] = (W.T @ g) @ x2p
    u_perp = u - (g @ u) / (g @ g) * g
    sd = m * np.linalg.norm(x2p) * np.linalg.norm(u_perp)
    return {"corr_a": float(np.corrcoef(ru, ea)[0, 1]), "corr_b": float(np.corrcoef(ru, bx)[0, 1]),
            "var_ratio": float(ru.var(ddof=1) / sd**2),
            "ks_pvalue": float(stats.kstest(ru / sd, "norm").pvalue)}
