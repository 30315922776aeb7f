"""Input data: bundled digits, a synthetic Gaussian source, CIFAR-10 and MNIST from local files.

``load(name, ...)`` returns a :class:`Dataset` whose inputs are float64 rows with
``|ξ|² = d`` exactly: each feature is first standardised with the statistics of the
training set (features constant on it are set to 0), then each row is rescaled to norm
``√d``. Labels are int64 in ``[0, n_classes)``.

Nothing is downloaded and nothing is unpickled: CIFAR-10 is read from its *binary
version* and MNIST from its idx files, both from a folder the user gives. Every problem
(unknown name, missing folder or file, malformed file, sizes out of range) raises one
:class:`~nfdlib.params.ParamError` naming it and what is allowed, before big files are read.
"""
from __future__ import annotations

import gzip
import operator
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nfdlib.params import ParamError

DATASETS = ("digits", "gaussian", "cifar10", "mnist")

CIFAR10_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR10_TEST = "test_batch.bin"
CIFAR10_SUBFOLDER = "cifar-10-batches-bin"
CIFAR10_RECORD = 1 + 3072  # one label byte, then 32×32 pixels for R, G and B

MNIST_FILES = {  # split -> (images, labels)
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MNIST_IMAGES_MAGIC, MNIST_LABELS_MAGIC = 2051, 2049

N_CLASSES_FIXED = 10  # digits, CIFAR-10 and MNIST all have ten classes


@dataclass(frozen=True)
class Dataset:
    """A train/test split: inputs ``X_*`` (rows with ``|ξ|² = d``), labels ``y_*``."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int

    @property
    def d(self) -> int:
        """The input dimension."""
        return int(self.X_train.shape[1])


def load(name: str = "digits", *, seed: int = 0, folder: str | os.PathLike | None = None,
         n_train: int | None = None, n_test: int | None = None, d: int = 64,
         n_classes: int = 10) -> Dataset:
    """Load dataset ``name`` (one of :data:`DATASETS`), standardised so that ``|ξ|² = d``.

    - ``digits``: scikit-learn's bundled 8×8 digits (d = 64); a stratified 80/20
      train/test split fixed by ``seed``.
    - ``gaussian``: rows drawn from N(0, I_d) and labelled by the argmax of a random linear
      teacher with ``n_classes`` outputs, all from ``numpy.random.default_rng(seed)``;
      ``n_train`` defaults to 1024 and ``n_test`` to 256. ``d`` and ``n_classes`` are used
      by this source only.
    - ``cifar10``: the binary version (``data_batch_1.bin`` … ``data_batch_5.bin``,
      ``test_batch.bin``) in ``folder`` or ``folder/cifar-10-batches-bin``; d = 3072
      (R, G, B planes of 32×32).
    - ``mnist``: the four idx files (optionally ``.gz``) in ``folder``; d = 784.

    For the real datasets, ``n_train``/``n_test`` (default: all) pick a random subset,
    fixed by ``seed``, of the train and test parts, and the standardisation uses the
    statistics of the kept training rows; ``d`` is ignored (fixed by the data) and
    ``n_classes`` must be 10. ``folder`` is ignored by ``digits`` and ``gaussian``.
    """
    if name not in DATASETS:
        raise ParamError(f"unknown dataset {name!r}; allowed: {', '.join(DATASETS)}")
    seed = _integer("seed", seed, 0)
    if n_train is not None:
        n_train = _integer("n_train", n_train, 1)
    if n_test is not None:
        n_test = _integer("n_test", n_test, 1)
    d = _integer("d", d, 1)
    n_classes = _integer("n_classes", n_classes, 2)
    if name != "gaussian" and n_classes != N_CLASSES_FIXED:
        raise ParamError(f"n_classes={n_classes} is not allowed for dataset {name!r}: it has "
                         f"{N_CLASSES_FIXED} classes (n_classes only shapes 'gaussian')")
    rng = np.random.default_rng(seed)
    if name == "gaussian":
        return _gaussian(rng, 1024 if n_train is None else n_train,
                         256 if n_test is None else n_test, d, n_classes)
    if name == "digits":
        X_tr, y_tr, X_te, y_te = _digits(seed)
    elif name == "cifar10":
        X_tr, y_tr, X_te, y_te = _cifar10(_folder(name, folder), rng, n_train, n_test)
        n_train = n_test = None  # already subsampled while reading
    else:
        X_tr, y_tr, X_te, y_te = _mnist(_folder(name, folder), rng, n_train, n_test)
        n_train = n_test = None
    train = _subsample(rng, len(y_tr), n_train, "n_train")
    test = _subsample(rng, len(y_te), n_test, "n_test")
    X_tr, X_te = standardise(X_tr[train], X_te[test])
    return Dataset(name, X_tr, y_tr[train].astype(np.int64), X_te,
                   y_te[test].astype(np.int64), N_CLASSES_FIXED)


def standardise(X_train, X_test) -> tuple[np.ndarray, np.ndarray]:
    """Standardise features with the train statistics, then rescale each row to norm √d.

    Features constant on the training set are set to 0 in both sets. Returns float64
    copies; raises ParamError if a row is zero after standardisation (it has no direction).
    """
    X_train = np.asarray(X_train, dtype=np.float64)
    X_test = np.asarray(X_test, dtype=np.float64)
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    varies = np.ptp(X_train, axis=0) > 0  # exact test; std of a constant column may be 1e-17
    scale = np.divide(1.0, std, out=np.zeros_like(std), where=varies)
    out = []
    for part, X in (("train", X_train), ("test", X_test)):
        X = (X - mean) * scale
        norms = np.linalg.norm(X, axis=1)
        if np.any(norms == 0):
            i = int(np.flatnonzero(norms == 0)[0])
            raise ParamError(f"{part} sample {i} is zero after standardisation (all its varying "
                             f"features equal the train mean): it cannot be rescaled to "
                             f"|ξ|² = d; use more training samples")
        out.append(X * (np.sqrt(X.shape[1]) / norms)[:, None])
    return out[0], out[1]


def _integer(name, value, minimum) -> int:
    """``value`` as an int ≥ ``minimum``, or a ParamError naming ``name``."""
    if isinstance(value, bool):
        raise ParamError(f"{name} must be an integer ≥ {minimum}, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise ParamError(f"{name} must be an integer ≥ {minimum}, "
                         f"got {type(value).__name__} {value!r}") from None
    if value < minimum:
        raise ParamError(f"{name} must be an integer ≥ {minimum}, got {value}")
    return value


def _subsample(rng, available: int, n: int | None, what: str) -> np.ndarray:
    """Indices of ``n`` of ``available`` samples chosen by ``rng`` (all, in order, if None)."""
    if n is None:
        return np.arange(available)
    if n > available:
        raise ParamError(f"{what}={n} is out of range: only {available} samples are "
                         f"available (allowed: 1 … {available}, or None for all)")
    return np.sort(rng.choice(available, size=n, replace=False))


def _gaussian(rng, n_train: int, n_test: int, d: int, n_classes: int) -> Dataset:
    """Synthetic source: N(0, I_d) rows, labels from a random linear teacher (drawn after X)."""
    X = rng.standard_normal((n_train + n_test, d))
    X_tr, X_te = standardise(X[:n_train], X[n_train:])
    teacher = rng.standard_normal((d, n_classes))
    y_tr = np.argmax(X_tr @ teacher, axis=1).astype(np.int64)
    y_te = np.argmax(X_te @ teacher, axis=1).astype(np.int64)
    return Dataset("gaussian", X_tr, y_tr, X_te, y_te, n_classes)


def _digits(seed: int):
    """scikit-learn's 1797 digits, split 80/20 stratified by ``seed``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, stratify=y,
                                              random_state=seed % 2**32)
    return X_tr, y_tr, X_te, y_te


def _folder(name: str, folder) -> Path:
    """The existing data folder for ``name``, or a ParamError."""
    if folder is None:
        raise ParamError(f"dataset {name!r} is read from local files: pass folder=<path to "
                         f"the folder holding {_expected(name)}> (nothing is downloaded)")
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise ParamError(f"folder {str(path)!r} for dataset {name!r} does not exist or is not "
                         f"a folder; it must hold {_expected(name)}")
    return path


def _expected(name: str) -> str:
    if name == "cifar10":
        return (f"the CIFAR-10 binary files {', '.join(CIFAR10_TRAIN)}, {CIFAR10_TEST} "
                f"(directly or in {CIFAR10_SUBFOLDER}/)")
    files = [f for pair in MNIST_FILES.values() for f in pair]
    return f"the MNIST idx files {', '.join(files)} (each optionally ending in .gz)"


def _cifar10(folder: Path, rng, n_train, n_test):
    """Read the CIFAR-10 binary batches, keeping a random subset of records if asked."""
    names = (*CIFAR10_TRAIN, CIFAR10_TEST)
    for base in (folder, folder / CIFAR10_SUBFOLDER):
        if all((base / f).is_file() for f in names):
            break
    else:
        missing = [f for f in names if not (folder / f).is_file()]
        raise ParamError(f"CIFAR-10 files missing in {str(folder)!r}: {', '.join(missing)}; "
                         f"expected {_expected('cifar10')}")
    counts = {}
    for f in names:  # sizes first: nothing big is read before all files are checked
        size = (base / f).stat().st_size
        if size == 0 or size % CIFAR10_RECORD:
            raise ParamError(f"malformed CIFAR-10 file {str(base / f)!r}: {size} bytes is not "
                             f"a positive multiple of {CIFAR10_RECORD} (1 label byte + 3072 "
                             f"pixel bytes per record)")
        counts[f] = size // CIFAR10_RECORD
    train = _subsample(rng, sum(counts[f] for f in CIFAR10_TRAIN), n_train, "n_train")
    test = _subsample(rng, counts[CIFAR10_TEST], n_test, "n_test")

    def read(files, keep):
        """Records ``keep`` (indices into the concatenated files): pixels and labels."""
        parts, start = [], 0
        for f in files:
            mine = keep[(keep >= start) & (keep < start + counts[f])] - start
            records = np.memmap(base / f, dtype=np.uint8, mode="r").reshape(-1, CIFAR10_RECORD)
            parts.append(np.array(records[mine]))
            start += counts[f]
        records = np.concatenate(parts)
        labels = records[:, 0].astype(np.int64)
        if labels.size and labels.max() >= N_CLASSES_FIXED:
            raise ParamError(f"malformed CIFAR-10 file among {', '.join(files)} in "
                             f"{str(base)!r}: label {labels.max()} found, expected 0 … 9")
        return records[:, 1:], labels

    X_tr, y_tr = read(CIFAR10_TRAIN, train)
    X_te, y_te = read((CIFAR10_TEST,), test)
    return X_tr, y_tr, X_te, y_te


def _mnist(folder: Path, rng, n_train, n_test):
    """Read the four MNIST idx files (plain or .gz), checking magic numbers and sizes."""
    paths = {}
    for pair in MNIST_FILES.values():
        for f in pair:
            found = [folder / g for g in (f, f + ".gz") if (folder / g).is_file()]
            if not found:
                raise ParamError(f"MNIST file {f} (or {f}.gz) missing in {str(folder)!r}; "
                                 f"expected {_expected('mnist')}")
            paths[f] = found[0]
    headers = {}  # all headers and sizes are checked before any body is read
    for split, (images, labels) in MNIST_FILES.items():
        n_img, shape = _idx_header(paths[images], MNIST_IMAGES_MAGIC, 3)
        n_lab, _ = _idx_header(paths[labels], MNIST_LABELS_MAGIC, 1)
        if n_img != n_lab:
            raise ParamError(f"malformed MNIST files: {paths[images].name} holds {n_img} images "
                             f"but {paths[labels].name} holds {n_lab} labels; expected equal")
        keep = _subsample(rng, n_img, n_train if split == "train" else n_test,
                          "n_train" if split == "train" else "n_test")
        headers[split] = n_img, shape[0] * shape[1], keep
        _check_size(paths[images], 16 + n_img * shape[0] * shape[1])
        _check_size(paths[labels], 8 + n_lab)
    out = []
    for split, (images, labels) in MNIST_FILES.items():
        n, pixels, keep = headers[split]
        X = _idx_body(paths[images], 16, n * pixels).reshape(n, pixels)
        y = _idx_body(paths[labels], 8, n).astype(np.int64)
        if y.size and y.max() >= N_CLASSES_FIXED:
            raise ParamError(f"malformed MNIST file {str(paths[labels])!r}: label {y.max()} "
                             f"found, expected 0 … 9")
        out += [X[keep], y[keep]]
    return tuple(out)


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _idx_header(path: Path, magic: int, ndim: int) -> tuple[int, tuple[int, ...]]:
    """Check an idx file's magic number; return its count and the shape of one item."""
    with _open(path) as fh:
        try:
            head = fh.read(4 * (1 + ndim))
        except (OSError, EOFError) as err:
            raise ParamError(f"malformed MNIST file {str(path)!r}: cannot be read ({err})") from None
    found = int.from_bytes(head[:4], "big") if len(head) >= 4 else None
    if found != magic:
        raise ParamError(f"malformed MNIST file {str(path)!r}: magic number {found}, expected "
                         f"{magic} ({'images' if magic == MNIST_IMAGES_MAGIC else 'labels'})")
    if len(head) < 4 * (1 + ndim):
        raise ParamError(f"malformed MNIST file {str(path)!r}: {len(head)} bytes is shorter than "
                         f"the {4 * (1 + ndim)}-byte idx header")
    _, n, *shape = (int(v) for v in np.frombuffer(head, dtype=">u4"))
    if ndim == 3 and shape != [28, 28]:
        raise ParamError(f"malformed MNIST file {str(path)!r}: images of {shape[0]}×{shape[1]} "
                         f"pixels, expected 28×28")
    return n, tuple(shape)


def _check_size(path: Path, size: int) -> None:
    """For an uncompressed idx file, check its size on disk (a .gz is checked when read)."""
    if path.suffix != ".gz" and path.stat().st_size != size:
        raise ParamError(f"malformed MNIST file {str(path)!r}: {path.stat().st_size} bytes, "
                         f"expected {size} (header + the items it announces)")


def _idx_body(path: Path, offset: int, size: int) -> np.ndarray:
    """The ``size`` data bytes after the header, checking the file holds exactly those."""
    with _open(path) as fh:
        try:
            raw = fh.read()
        except (OSError, EOFError) as err:
            raise ParamError(f"malformed MNIST file {str(path)!r}: cannot be read ({err})") from None
    if len(raw) != offset + size:
        raise ParamError(f"malformed MNIST file {str(path)!r}: {len(raw)} bytes, expected "
                         f"{offset + size} ({offset}-byte header + {size} data bytes)")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset)
