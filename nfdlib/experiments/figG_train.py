"""App. G: one training run of the sweep (a grid point), and the one-ulp twin that measures
how strongly the run amplifies a rounding-level perturbation of its initial weights.

The twin is the direct measurement of the instability that App. G attributes to vanilla
networks and µP ResNets at depth: two networks whose initial weights differ by one unit in
the last place (ulp) of their floating-point type, trained on the same batches in the same
order, stay at rounding distance when training is stable and separate when it amplifies
perturbations. Such a separation is also what makes a run depend on the CPU it runs on (a
different BLAS kernel rounds differently), so the same measurement tells which numbers of
the sweep can decide a verdict on every machine.
"""
from __future__ import annotations

import contextlib
import functools

import numpy as np

from ..data import load
from ..model import NetworkSpec, init_weights
from ..network import Network
from ..training import train
from .figG_grid import BASELINE


@contextlib.contextmanager
def limited_threads(threads: int, backend: str):
    """Run with at most ``threads`` CPU threads in BLAS, numba and torch (restored after).
    On a shared CPU, one thread per run is far faster than oversubscribed pools; parallel
    runs come from ``executor='processes'``."""
    from threadpoolctl import threadpool_limits
    restore = []
    if backend == "numba":
        import numba
        old = numba.get_num_threads()
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        restore.append(lambda: numba.set_num_threads(old))
    if backend == "torch":
        import torch
        old_t = torch.get_num_threads()
        torch.set_num_threads(threads)
        restore.append(lambda: torch.set_num_threads(old_t))
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        for undo in restore:
            undo()


@functools.lru_cache(maxsize=2)
def _data(dataset: str, seed: int, folder, n_train, n_test):
    return load(dataset, seed=seed, folder=folder, n_train=n_train, n_test=n_test)


def ulp_perturbed(weights: dict[str, np.ndarray], dtype: str,
                  rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Copies of U, W, V in ``dtype``, each entry moved by one ulp of ``dtype`` up or down
    (a fair coin from ``rng`` per entry): the smallest perturbation the type can hold."""
    out = {}
    for key in ("U", "W", "V"):
        w = np.asarray(weights[key], dtype=dtype)
        direction = np.where(rng.random(w.shape) < 0.5, -np.inf, np.inf).astype(dtype)
        out[key] = np.nextafter(w, direction)
    return out


def train_pair_member(arch: str, backward: str, width: int, depth: int, seed: int, *,
                      data_seed: int, dataset: str, data_folder, n_train, n_test, eta_c: float,
                      epochs: int, batch: int, eval_every: int, activation: str, backend: str,
                      dtype: str, device: str, threads: int, blowup: float = 1e3,
                      twin: bool = False) -> dict:
    """One training run (a grid point): the network of ``seed`` (weights drawn by
    :func:`nfdlib.model.init_weights`, so both backward modes share U, W, V) trained by
    mini-batch SGD on batches ordered by the generator of ``(seed, 1)`` (the same order for
    both modes). ``backward`` is ``reused``, ``decoupled`` or ``decoupled_alt`` (W̃ drawn
    from the generator of ``(seed, 2)``). A non-finite loss, or an evaluated loss above
    ``blowup``, is a divergence: the curves stop before it and (step, reason) is recorded.
    With ``twin`` (reused runs only), a second network whose initial U, W, V differ by one
    ulp (signs from the generator of ``(seed, 3)``) takes the same steps, and
    ``twin_distance`` records the relative distance of their test outputs at
    initialisation and at each evaluation. Returns the loss curves and the divergence
    record."""
    data = _data(dataset, data_seed, data_folder, n_train, n_test)
    mode = "reused" if backward == "reused" else "decoupled"
    spec_ = NetworkSpec.build(arch=arch, width=width, depth=depth, activation=activation,
                              d=data.d, n_out=10, backward=mode, backend=backend,
                              dtype=dtype, device=device)
    with limited_threads(threads, backend):
        weights = init_weights(spec_, np.random.default_rng(seed))
        if backward == BASELINE:
            weights["B"] = init_weights(spec_, np.random.default_rng([seed, 2]))["B"]
        net = Network(spec_, weights=weights)
        other = None
        if twin and backward == "reused":
            other = Network(spec_, weights=ulp_perturbed(weights, dtype, np.random.default_rng([seed, 3])))
        hist = train(net, data.X_train, data.y_train, eta_c=eta_c, epochs=epochs, batch=batch,
                     loss="cross_entropy", X_test=data.X_test, Y_test=data.y_test,
                     eval_every=eval_every, rng=np.random.default_rng([seed, 1]), twin=other)
    rec = _blowup(hist.as_dict(), blowup)
    ok = rec["diverged_at"] is None
    rec["final_train_loss"] = rec["train_loss"][-1] if ok and rec["train_loss"] else None
    rec["final_test_loss"] = rec["test_loss"][-1] if ok and rec["test_loss"] else None
    return rec


def _blowup(rec: dict, blowup: float) -> dict:
    """Cut the curves at the first evaluation whose training or test loss exceeds
    ``blowup`` (cross-entropy starts at ln 10 ≈ 2.3; tanh keeps a blown-up loss finite)."""
    for i, (a, b) in enumerate(zip(rec["train_loss"], rec["test_loss"])):
        if max(a, b) > blowup:
            step = rec["steps"][i]
            for key in ("steps", "train_loss", "test_loss", "test_accuracy"):
                rec[key] = rec[key][:i]
            if "twin_distance" in rec:
                rec["twin_distance"] = rec["twin_distance"][:i + 1]  # initialisation first
            rec["diverged_at"], rec["reason"] = step, f"loss above {blowup:g}"
            break
    return rec
