"""The backends chapter: the same network trained on the same batches by the numpy
reference, numba and torch, in float64 and float32; agreement of losses and weights with
the reference, and the time per SGD step of each backend."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .. import claims
from ..data import load
from ..model import ARCHITECTURES, ACTIVATIONS, DEVICES, NetworkSpec
from ..network import Network
from ..params import Params, spec
from . import Experiment

BACKEND_CHOICES = ("all", "numba", "torch")
# float64: the backends sum in different orders, so they agree to a few hundred ulps.
FLOAT64_TOL = 1e-9


@dataclass(frozen=True)
class BackendParams(Params):
    profile: str = spec("book")
    backend: str = spec("all", choices=BACKEND_CHOICES, doc="backends compared with the reference")
    device: str = spec("auto", choices=DEVICES)
    seed: int = spec(0, min=0)
    arch: str = spec("depth_mup", choices=ARCHITECTURES)
    activation: str = spec("tanh", choices=ACTIVATIONS)
    width: int = spec(128, min=1)
    depth: int = spec(16, min=1)
    batch: int = spec(128, min=1)
    steps: int = spec(30, min=2)
    eta_c: float = spec(0.05, gt=0)
    dtypes: list[str] = spec(["float64", "float32"], choices=("float64", "float32"), nonempty=True)

    PROFILE_DEFAULTS = {"smoke": {"width": 32, "depth": 4, "steps": 4, "batch": 32},
                        "book": {},
                        "paper": {"width": 512, "depth": 64, "steps": 100}}

    def check(self) -> None:
        self.spec_for("numpy", "float64")  # validates sizes and memory before any work

    def spec_for(self, backend: str, dtype: str) -> NetworkSpec:
        return NetworkSpec.build(arch=self.arch, activation=self.activation, width=self.width,
                                 depth=self.depth, d=64, n_out=10, backend=backend, dtype=dtype,
                                 device=self.device if backend == "torch" else "auto")


def train_on_fixed_batches(p: BackendParams, backend: str, dtype: str, data) -> dict:
    """``p.steps`` SGD steps (cross-entropy) on a batch sequence fixed by the seed; losses,
    final weights and the wall time of the steps after the first (which compiles)."""
    net = Network(p.spec_for(backend, dtype), rng=p.seed)
    order = np.random.default_rng(p.seed + 1).integers(0, len(data.X_train), (p.steps, p.batch))
    losses, times = [], []
    for idx in order:
        t0 = time.perf_counter()
        losses.append(float(np.mean(net.step(data.X_train[idx], data.y_train[idx], p.eta_c,
                                             loss="cross_entropy"))))
        times.append(time.perf_counter() - t0)
    return {"losses": np.array(losses), "weights": net.weights(),
            "ms_per_step": 1e3 * float(np.median(times[1:]))}


def run(p: BackendParams, store) -> dict:
    data = load("digits", seed=p.seed)
    backends = ["numba", "torch"] if p.backend == "all" else [p.backend]
    ref = train_on_fixed_batches(p, "numpy", "float64", data)
    rows = [{"backend": "numpy", "dtype": "float64", "ms_per_step": ref["ms_per_step"],
             "loss_rel_err": 0.0, "weight_rel_err": 0.0}]
    curves = {"numpy/float64": ref["losses"]}
    for dtype in p.dtypes:
        for backend in backends:
            out = train_on_fixed_batches(p, backend, dtype, data)
            w_err = max(np.abs(out["weights"][k] - ref["weights"][k]).max()
                        / np.abs(ref["weights"][k]).max() for k in ref["weights"])
            l_err = float(np.max(np.abs(out["losses"] - ref["losses"]) / np.abs(ref["losses"])))
            rows.append({"backend": backend, "dtype": dtype, "ms_per_step": out["ms_per_step"],
                         "loss_rel_err": l_err, "weight_rel_err": float(w_err)})
            curves[f"{backend}/{dtype}"] = out["losses"]
    return {"rows": rows, "curves": {k: v.tolist() for k, v in curves.items()}}


def check(data: dict, p: BackendParams) -> list[dict]:
    """BK: in float64 every backend reproduces the reference's losses and weights to within
    ``FLOAT64_TOL`` relative error."""
    f64 = [r for r in data["rows"] if r["dtype"] == "float64" and r["backend"] != "numpy"]
    if not f64:
        return [claims.record("NB-BK", "inconclusive", "no float64 run", f"rel. error < {FLOAT64_TOL}")]
    worst = max(max(r["loss_rel_err"], r["weight_rel_err"]) for r in f64)
    verdict = "verified" if worst < FLOAT64_TOL else "not verified"
    return [claims.record("NB-BK", verdict, {"max_rel_err_float64": worst},
                          f"rel. error < {FLOAT64_TOL}")]


def plot(data: dict, p: BackendParams, path=None):
    import matplotlib.pyplot as plt
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    ref = np.array(data["curves"]["numpy/float64"])
    for key, curve in data["curves"].items():
        ax1.plot(np.arange(1, len(curve) + 1), curve, label=key,
                 ls="-" if key.endswith("64") else "--")
        if key != "numpy/float64":
            ax2.semilogy(np.arange(1, len(curve) + 1),
                         np.abs(np.array(curve) - ref) / np.abs(ref) + 1e-18, label=key)
    ax1.set(xlabel="SGD step", ylabel="training loss (batch)", title="same network, three backends")
    ax2.set(xlabel="SGD step", ylabel="|loss − reference| / reference", title="distance to the numpy reference")
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    if path is not None:
        fig.savefig(f"{path}/backends.png", dpi=120)
        fig.savefig(f"{path}/backends.pdf")
    return fig


EXPERIMENT = Experiment("backends_agreement",
                        "numba and torch vs the numpy reference: agreement and time per SGD step",
                        BackendParams, run, check, plot)
