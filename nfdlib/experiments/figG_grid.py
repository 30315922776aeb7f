"""App. G sweep: its parameters (validated), the names of its grid points and the grid itself.

Each grid point is one training run: an architecture (``vanilla``, ``mup_resnet``,
``depth_mup``, the book's notes on the model), a backward mode, a width, a depth and a seed.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..executor import check_executor
from ..model import BACKENDS, DEVICES, DTYPES, NetworkSpec
from ..params import ParamError, Params, require_memory, spec

NAME = "figG_gia_restoration"
ARCHS = ("vanilla", "mup_resnet", "depth_mup")
MODES = ("reused", "decoupled")
BASELINE = "decoupled_alt"  # a second decoupled network with an independent copy W̃
DATASETS = ("digits", "cifar10", "mnist")
ARCH_TITLES = {"vanilla": "vanilla DNN", "mup_resnet": "ResNet, µP",
               "depth_mup": "ResNet, depth-µP"}
FIGURE_OF_WIDTH = {128: ("F2", "fig2"), 256: ("F5", "fig5")}


@dataclass(frozen=True)
class GIAParams(Params):
    profile: str = spec("book")
    backend: str = spec("numba", choices=BACKENDS)
    device: str = spec("auto", choices=DEVICES)
    dtype: str = spec("float32", choices=DTYPES)
    seed: int = spec(0, min=0, doc="first seed; run i uses seed + i; also fixes the data split")
    n_seeds: int = spec(2, min=1)
    archs: list[str] = spec(list(ARCHS), choices=ARCHS, nonempty=True)
    widths: list[int] = spec([128, 256], min=1, nonempty=True)
    depths: list[int] = spec([2, 8, 32], min=1, nonempty=True)
    eta_c: float = spec(1.0, gt=0, doc="effective learning rate, η = η_c·n")
    epochs: int = spec(3, min=1)
    batch: int = spec(128, min=1)
    eval_every: int = spec(4, min=1, doc="steps between evaluations on the test split")
    activation: str = spec("tanh", choices=("tanh", "relu", "linear"))
    dataset: str = spec("digits", choices=DATASETS)
    data_folder: Optional[str] = spec(None, doc="folder of the CIFAR-10 / MNIST binary files")
    n_train: Optional[int] = spec(None, min=1, doc="training subset (None: all)")
    n_test: Optional[int] = spec(None, min=1, doc="test subset (None: all)")
    baseline: bool = spec(True, doc="also train a second decoupled copy (the noise floor)")
    sensitivity: bool = spec(True, doc="train beside each reused run a twin whose initial "
                                       "weights differ by one ulp (the rounding sensitivity)")
    executor: str = spec("serial")
    threads: int = spec(1, min=1, doc="CPU threads per training run (BLAS, numba, torch)")
    blowup: float = spec(1e3, gt=0, doc="an evaluated loss above this counts as divergence")

    PROFILE_DEFAULTS = {
        "smoke": {"widths": [128, 256], "depths": [2, 4, 8], "n_seeds": 1, "epochs": 1,
                  "n_train": 512, "n_test": 128, "eval_every": 2},
        "book": {},
        "paper": {"depths": [2, 8, 32, 128, 512], "n_seeds": 3, "epochs": 20, "eval_every": 10},
    }

    def check(self) -> None:
        check_executor(self.executor)
        if self.dataset == "digits" and self.data_folder is not None:
            raise ParamError("parameter 'data_folder' is only used with dataset 'cifar10' or "
                             "'mnist'; allowed with 'digits': None")
        if self.dataset != "digits":
            if self.data_folder is None:
                raise ParamError(f"parameter 'data_folder' must name the folder of the "
                                 f"{self.dataset} files for dataset {self.dataset!r}")
            if not Path(self.data_folder).is_dir():
                raise ParamError(f"parameter 'data_folder' = {self.data_folder!r} is not an "
                                 "existing folder")
        if len(set(self.depths)) != len(self.depths) or len(set(self.widths)) != len(self.widths):
            raise ParamError("parameters 'depths' and 'widths' must not repeat values")
        d = 64 if self.dataset == "digits" else (3072 if self.dataset == "cifar10" else 784)
        for width in self.widths:  # validates sizes and the weights' memory
            self.spec_for("depth_mup", "decoupled", width, max(self.depths), d)
        itemsize = 4 if self.dtype == "float32" else 8
        # forward/backward activations of one batch (h, x, g, δ) and of a 512-row test batch
        acts = itemsize * (max(self.depths) + 1) * max(self.widths) * 4 * max(self.batch, 512)
        require_memory(acts, f"activations of depth {max(self.depths)} and width {max(self.widths)}")

    def spec_for(self, arch: str, backward: str, width: int, depth: int, d: int) -> NetworkSpec:
        return NetworkSpec.build(arch=arch, width=width, depth=depth, activation=self.activation,
                                 d=d, n_out=10, backward=backward, backend=self.backend,
                                 dtype=self.dtype, device=self.device)


def point_name(arch: str, backward: str, width: int, depth: int, seed: int) -> str:
    return f"{arch}_{backward}_n{width}_L{depth}_s{seed}"


def grid(p: GIAParams) -> list[tuple[str, dict]]:
    """The sweep, cheapest runs first: (name, keyword arguments of
    :func:`~nfdlib.experiments.figG_train.train_pair_member`) per training run."""
    common = dict(data_seed=p.seed, dataset=p.dataset, data_folder=p.data_folder,
                  n_train=p.n_train, n_test=p.n_test, eta_c=p.eta_c, epochs=p.epochs,
                  batch=p.batch, eval_every=p.eval_every, activation=p.activation,
                  backend=p.backend, dtype=p.dtype, device=p.device, threads=p.threads,
                  blowup=p.blowup)
    points = []
    for width in sorted(p.widths):
        for depth in sorted(p.depths):
            for arch in p.archs:
                for i in range(p.n_seeds):
                    for mode in MODES + ((BASELINE,) if p.baseline else ()):
                        kw = dict(arch=arch, backward=mode, width=width, depth=depth,
                                  seed=p.seed + i, **common)
                        if mode == "reused":
                            kw["twin"] = p.sensitivity
                        points.append((point_name(arch, mode, width, depth, p.seed + i), kw))
    return points
