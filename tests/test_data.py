"""Data loaders: digits, the Gaussian source, and CIFAR-10 / MNIST from tiny files in the real formats."""
import gzip

import numpy as np
import pytest

from nfdlib import data
from nfdlib.params import ParamError


def check_dataset(ds, d, n_classes, n_train=None, n_test=None):
    """Shapes, dtypes, |ξ|² = d and label range."""
    assert ds.d == d and ds.n_classes == n_classes
    for X, y, n in ((ds.X_train, ds.y_train, n_train), (ds.X_test, ds.y_test, n_test)):
        assert X.dtype == np.float64 and y.dtype == np.int64
        assert X.ndim == 2 and X.shape[1] == d and y.shape == (X.shape[0],)
        if n is not None:
            assert X.shape[0] == n
        np.testing.assert_allclose((X ** 2).sum(axis=1), d, rtol=0, atol=1e-10)
        assert y.min() >= 0 and y.max() < n_classes


def rows(X):
    return {r.tobytes() for r in np.round(X, 8)}


# ---------------------------------------------------------------- digits and gaussian

def test_digits_default():
    ds = data.load()
    assert ds.name == "digits"
    check_dataset(ds, 64, 10, 1437, 360)
    assert set(np.unique(ds.y_test)) == set(range(10))  # stratified: every class in test
    assert not rows(ds.X_train) & rows(ds.X_test)  # train and test disjoint


def test_digits_split_fixed_by_seed():
    a, b, c = data.load(seed=1), data.load(seed=1), data.load(seed=2)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.y_test, c.y_test)


def test_digits_subsample():
    ds = data.load("digits", n_train=100, n_test=50, seed=3)
    check_dataset(ds, 64, 10, 100, 50)
    np.testing.assert_array_equal(ds.X_train, data.load("digits", n_train=100, n_test=50,
                                                        seed=3).X_train)


def test_standardise_uses_train_statistics():
    X_tr = np.array([[0.0, 1.0, 5.0], [2.0, 3.0, 5.0], [4.0, 8.0, 5.0]])
    X_te = np.array([[1.0, 2.0, 7.0]])
    A, B = data.standardise(X_tr, X_te)
    assert np.all(A[:, 2] == 0) and np.all(B[:, 2] == 0)  # constant feature left at 0
    z = (X_te[0, :2] - X_tr[:, :2].mean(0)) / X_tr[:, :2].std(0)
    np.testing.assert_allclose(B[0, :2], z * np.sqrt(3) / np.linalg.norm(z), rtol=1e-12)


def test_gaussian():
    ds = data.load("gaussian", seed=5, d=20, n_classes=3)
    check_dataset(ds, 20, 3, 1024, 256)
    assert set(np.unique(ds.y_train)) == {0, 1, 2}
    again = data.load("gaussian", seed=5, d=20, n_classes=3)
    np.testing.assert_array_equal(ds.X_test, again.X_test)
    np.testing.assert_array_equal(ds.y_train, again.y_train)
    other = data.load("gaussian", seed=6, d=20, n_classes=3)
    assert not np.array_equal(ds.X_train, other.X_train)
    small = data.load("gaussian", n_train=10, n_test=4, d=8, n_classes=2)
    check_dataset(small, 8, 2, 10, 4)


def test_gaussian_labels_are_a_linear_teacher():
    """The labels are linearly separable: a least-squares fit of one-hot labels on the
    normalised inputs recovers them (up to rare near-ties)."""
    ds = data.load("gaussian", seed=0, d=10, n_classes=4, n_train=2000, n_test=10)
    W, *_ = np.linalg.lstsq(ds.X_train, np.eye(4)[ds.y_train] - 0.25, rcond=None)
    assert np.mean(np.argmax(ds.X_train @ W, 1) == ds.y_train) > 0.8


# ---------------------------------------------------------------- CIFAR-10 binary

def write_cifar(folder, rng, n_per_batch=(3, 2, 2, 2, 3), n_test=4):
    """Write CIFAR-10 binary batches; return (pixels, labels) of train and test."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for name, n in zip(names, (*n_per_batch, n_test)):
        y = rng.integers(0, 10, n, dtype=np.uint8)
        X = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        (folder / name).write_bytes(np.concatenate([y[:, None], X], axis=1).tobytes())
        out[name] = X, y
    X_tr = np.concatenate([out[n][0] for n in names[:5]])
    y_tr = np.concatenate([out[n][1] for n in names[:5]])
    return X_tr, y_tr, *out["test_batch.bin"]


@pytest.mark.parametrize("sub", ["", "cifar-10-batches-bin"])
def test_cifar10_roundtrip(tmp_path, sub):
    X_tr, y_tr, X_te, y_te = write_cifar(tmp_path / sub if sub else tmp_path,
                                         np.random.default_rng(0))
    ds = data.load("cifar10", folder=tmp_path)
    check_dataset(ds, 3072, 10, 12, 4)
    np.testing.assert_array_equal(ds.y_train, y_tr)
    np.testing.assert_array_equal(ds.y_test, y_te)
    A, B = data.standardise(X_tr, X_te)
    np.testing.assert_allclose(ds.X_train, A, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ds.X_test, B, rtol=0, atol=1e-12)


def test_cifar10_subsample(tmp_path):
    X_tr, y_tr, X_te, y_te = write_cifar(tmp_path, np.random.default_rng(1),
                                         n_per_batch=(2, 2, 2, 2, 2), n_test=4)
    # distinct labels identify the records: rewrite them as a permutation of 0 … 9
    y_tr[:] = np.random.default_rng(2).permutation(10)
    y_te[:] = [3, 1, 4, 0]
    for i, name in enumerate([f"data_batch_{k}.bin" for k in range(1, 6)]):
        rec = np.concatenate([y_tr[2 * i:2 * i + 2, None], X_tr[2 * i:2 * i + 2]], axis=1)
        (tmp_path / name).write_bytes(rec.tobytes())
    (tmp_path / "test_batch.bin").write_bytes(
        np.concatenate([y_te[:, None], X_te], axis=1).tobytes())
    ds = data.load("cifar10", folder=str(tmp_path), n_train=5, n_test=2, seed=4)
    check_dataset(ds, 3072, 10, 5, 2)
    train = [int(np.flatnonzero(y_tr == y)[0]) for y in ds.y_train]
    test = [int(np.flatnonzero(y_te == y)[0]) for y in ds.y_test]
    A, B = data.standardise(X_tr[train], X_te[test])  # statistics of the kept train records
    np.testing.assert_allclose(ds.X_train, A, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ds.X_test, B, rtol=0, atol=1e-12)
    assert not np.array_equal(ds.y_train, data.load("cifar10", folder=tmp_path, n_train=5,
                                                    seed=5).y_train)


# ---------------------------------------------------------------- MNIST idx

def idx_bytes(magic, arr):
    header = np.array([magic, *arr.shape], dtype=">u4").tobytes()
    return header + arr.astype(np.uint8).tobytes()


def write_mnist(folder, rng, n_train=6, n_test=3, gz=False):
    """Write the four MNIST idx files; return (images, labels) of train and test."""
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        X = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n, dtype=np.uint8)
        for name, magic, arr in ((f"{prefix}-images-idx3-ubyte", 2051, X),
                                 (f"{prefix}-labels-idx1-ubyte", 2049, y)):
            raw = idx_bytes(magic, arr)
            if gz:
                (folder / (name + ".gz")).write_bytes(gzip.compress(raw))
            else:
                (folder / name).write_bytes(raw)
        arrays[prefix] = X.reshape(n, 784), y
    return (*arrays["train"], *arrays["t10k"])


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_roundtrip(tmp_path, gz):
    X_tr, y_tr, X_te, y_te = write_mnist(tmp_path, np.random.default_rng(2), gz=gz)
    ds = data.load("mnist", folder=tmp_path)
    check_dataset(ds, 784, 10, 6, 3)
    np.testing.assert_array_equal(ds.y_train, y_tr)
    np.testing.assert_array_equal(ds.y_test, y_te)
    A, B = data.standardise(X_tr, X_te)
    np.testing.assert_allclose(ds.X_train, A, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ds.X_test, B, rtol=0, atol=1e-12)
    sub = data.load("mnist", folder=tmp_path, n_train=4, n_test=2, seed=1)
    check_dataset(sub, 784, 10, 4, 2)


# ---------------------------------------------------------------- errors

def raises(match, **kwargs):
    with pytest.raises(ParamError, match=match) as info:
        data.load(**kwargs)
    return str(info.value)


def test_error_unknown_name():
    msg = raises("unknown dataset 'cifar'", name="cifar")
    assert all(n in msg for n in data.DATASETS)


@pytest.mark.parametrize("name", ["cifar10", "mnist"])
def test_error_folder_missing(tmp_path, name):
    raises("pass folder=", name=name)
    raises("does not exist", name=name, folder=tmp_path / "nowhere")


def test_error_cifar_file_missing(tmp_path):
    write_cifar(tmp_path, np.random.default_rng(0))
    (tmp_path / "data_batch_3.bin").unlink()
    msg = raises("CIFAR-10 files missing", name="cifar10", folder=tmp_path)
    assert "data_batch_3.bin" in msg and "test_batch.bin" in msg


def test_error_cifar_malformed(tmp_path):
    write_cifar(tmp_path, np.random.default_rng(0))
    with open(tmp_path / "data_batch_2.bin", "ab") as fh:
        fh.write(b"\0" * 10)
    msg = raises("malformed CIFAR-10 file", name="cifar10", folder=tmp_path)
    assert "data_batch_2.bin" in msg and "3073" in msg


def test_error_cifar_bad_label(tmp_path):
    write_cifar(tmp_path, np.random.default_rng(0))
    raw = bytearray((tmp_path / "test_batch.bin").read_bytes())
    raw[0] = 12
    (tmp_path / "test_batch.bin").write_bytes(bytes(raw))
    raises("label 12 found, expected 0 … 9", name="cifar10", folder=tmp_path)


def test_error_mnist_file_missing(tmp_path):
    write_mnist(tmp_path, np.random.default_rng(0))
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    msg = raises("MNIST file t10k-labels-idx1-ubyte", name="mnist", folder=tmp_path)
    assert "train-images-idx3-ubyte" in msg  # lists what is expected


@pytest.mark.parametrize("gz", [False, True])
def test_error_mnist_magic(tmp_path, gz):
    write_mnist(tmp_path, np.random.default_rng(0), gz=gz)
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    y = np.zeros(6, dtype=np.uint8)
    raw = idx_bytes(2049, y)  # a labels file where images are expected
    (tmp_path / name).write_bytes(gzip.compress(raw) if gz else raw)
    msg = raises("magic number 2049, expected 2051", name="mnist", folder=tmp_path)
    assert name in msg


@pytest.mark.parametrize("gz", [False, True])
def test_error_mnist_size(tmp_path, gz):
    write_mnist(tmp_path, np.random.default_rng(0), gz=gz)
    name = "t10k-images-idx3-ubyte" + (".gz" if gz else "")
    raw = idx_bytes(2051, np.zeros((3, 28, 28)))[:-100]  # truncated
    (tmp_path / name).write_bytes(gzip.compress(raw) if gz else raw)
    msg = raises("malformed MNIST file", name="mnist", folder=tmp_path)
    assert name in msg and str(16 + 3 * 784) in msg


def test_error_mnist_count_mismatch(tmp_path):
    write_mnist(tmp_path, np.random.default_rng(0))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(2049, np.zeros(5)))
    raises("holds 6 images but .* holds 5 labels", name="mnist", folder=tmp_path)


def test_error_mnist_not_gzip(tmp_path):
    write_mnist(tmp_path, np.random.default_rng(0), gz=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not a gzip file")
    raises("malformed MNIST file .*t10k-labels", name="mnist", folder=tmp_path)


def test_error_sizes_out_of_range(tmp_path):
    raises(r"n_train=2000 is out of range: only 1437", name="digits", n_train=2000)
    raises(r"n_test=361 is out of range: only 360", name="digits", n_test=361)
    raises("n_train must be an integer ≥ 1", name="gaussian", n_train=0)
    raises("n_test must be an integer ≥ 1", name="gaussian", n_test=2.5)
    raises("d must be an integer ≥ 1", name="gaussian", d=0)
    raises("n_classes must be an integer ≥ 2", name="gaussian", n_classes=1)
    raises("seed must be an integer ≥ 0", seed=-1)
    raises("n_classes=3 is not allowed for dataset 'digits'", n_classes=3)
    write_cifar(tmp_path / "c", np.random.default_rng(0))
    raises(r"n_train=13 is out of range: only 12", name="cifar10", folder=tmp_path / "c",
           n_train=13)
    (tmp_path / "m").mkdir()
    write_mnist(tmp_path / "m", np.random.default_rng(0))
    raises(r"n_test=4 is out of range: only 3", name="mnist", folder=tmp_path / "m", n_test=4)


def test_error_zero_row():
    with pytest.raises(ParamError, match="zero after standardisation"):
        data.standardise(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[2.0, 3.0]]))
