"""Data: offline MNIST-1D with its cache, CIFAR pickles written by the tests, standardize/split helpers."""

from __future__ import annotations

import pickle
import random
from pathlib import Path

import mnist1d.data as upstream
import numpy as np
import pytest
import torch

from basinscope import data as ld
from basinscope.data import TensorSplits, cifar, fit_standardization, mnist1d, standardize, train_test_split

# ------------------------------------------------------------------------------------------------ MNIST-1D


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("mnist1d.data.get_dataset must never be called (network + writes into cwd)")

    monkeypatch.setattr(upstream, "get_dataset", refuse)


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    """The raw arrays, generated once by the upstream generator (independent of our code)."""
    return upstream.make_dataset(upstream.get_dataset_args())


@pytest.fixture
def fake_make_dataset(monkeypatch, reference) -> list[int]:
    """Replace the 2-second generator by a counting stand-in returning the reference arrays.

    It keeps the real one's side effect (reseeding the global ``random`` and numpy generators) and checks that it
    is called with the standard arguments.
    """
    calls: list[int] = []

    def fake(args=None, template=None):
        assert vars(args) == vars(upstream.get_dataset_args())
        calls.append(1)
        upstream.set_seed(args.seed)
        return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in reference.items()}

    monkeypatch.setattr(upstream, "make_dataset", fake)
    return calls


def test_mnist1d_end_to_end_with_the_real_generator(reference):
    splits = mnist1d(standardize=False, dtype=torch.float64)  # session cache dir set by conftest
    np.testing.assert_array_equal(splits.x_train.numpy(), reference["x"])
    np.testing.assert_array_equal(splits.x_test.numpy(), reference["x_test"])
    np.testing.assert_array_equal(splits.y_train.numpy(), reference["y"])
    np.testing.assert_array_equal(splits.y_test.numpy(), reference["y_test"])


def test_mnist1d_shapes_and_cache_reuse(tmp_path, monkeypatch, fake_make_dataset, reference):
    monkeypatch.setenv("BASINSCOPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # anything written into cwd would show up here

    first = mnist1d(standardize=False, dtype=torch.float64)
    assert fake_make_dataset == [1]
    cached = list((tmp_path / "cache").iterdir())
    assert len(cached) == 1 and cached[0].suffix == ".npz", "one cache file, no temporary left behind"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]

    assert isinstance(first, TensorSplits) and first.name == "mnist1d" and first.num_classes == 10
    assert first.x_train.shape == (4000, 40) and first.x_test.shape == (1000, 40)
    assert first.y_train.shape == (4000,) and first.y_test.shape == (1000,)
    assert first.y_train.dtype == torch.int64 and first.x_train.dtype == torch.float64
    assert set(first.y_train.tolist()) == set(range(10))
    assert first.mean is None and first.std is None
    np.testing.assert_array_equal(first.x_train.numpy(), reference["x"])

    second = mnist1d(standardize=False, dtype=torch.float64)
    assert fake_make_dataset == [1], "the cached file must be reused"
    assert torch.equal(first.x_train, second.x_train) and torch.equal(first.y_test, second.y_test)


def test_mnist1d_standardized_with_global_train_scalars(tmp_path, fake_make_dataset, reference):
    splits = mnist1d(cache_dir=tmp_path, dtype=torch.float64)
    x, xt = reference["x"], reference["x_test"]
    mean, std = x.mean(), x.std()  # numpy's std is the population std
    np.testing.assert_allclose(splits.x_train.numpy(), (x - mean) / std, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(splits.x_test.numpy(), (xt - mean) / std, rtol=1e-12, atol=1e-12)
    assert splits.mean.shape == (1, 1) and float(splits.std) == pytest.approx(std)
    assert float(splits.x_train.mean()) == pytest.approx(0.0, abs=1e-12)
    assert float(splits.x_train.std(correction=0)) == pytest.approx(1.0)

    float32 = mnist1d(cache_dir=str(tmp_path))
    assert fake_make_dataset == [1]
    assert float32.x_train.dtype == torch.float32
    torch.testing.assert_close(float32.x_train, splits.x_train.float())


def test_mnist1d_regenerates_a_corrupt_cache_and_keeps_rng_streams(tmp_path, fake_make_dataset):
    good = mnist1d(cache_dir=tmp_path)
    (path,) = tmp_path.iterdir()
    path.write_bytes(b"not an npz file")

    np.random.seed(123)
    random.seed(123)
    expected = (np.random.rand(), random.random())
    np.random.seed(123)
    random.seed(123)
    again = mnist1d(cache_dir=tmp_path)  # regenerates: the generator reseeds both global generators
    assert (np.random.rand(), random.random()) == expected
    assert fake_make_dataset == [1, 1]
    assert torch.equal(good.x_train, again.x_train)
    assert np.load(path)["x"].shape == (4000, 40)


def test_mnist1d_unwritable_cache_warns_and_still_returns(tmp_path, fake_make_dataset):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory should be")
    with pytest.warns(UserWarning, match="could not cache MNIST-1D"):
        splits = mnist1d(cache_dir=blocker / "sub")
    assert splits.x_train.shape == (4000, 40)


def test_default_cache_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("BASINSCOPE_CACHE", str(tmp_path / "a"))
    assert ld.default_cache_dir() == tmp_path / "a"
    monkeypatch.delenv("BASINSCOPE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ld.default_cache_dir() == tmp_path / "xdg" / "basinscope"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert ld.default_cache_dir() == tmp_path / "home" / ".cache" / "basinscope"


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"dtype": torch.int64}, ValueError, r"^dtype: expected a floating-point torch.dtype, got torch.int64$"),
        ({"dtype": "float32"}, TypeError, r"^dtype: expected a torch.dtype, got 'float32'$"),
        ({"standardize": 1}, TypeError, r"^standardize: expected bool, got int$"),
        ({"cache_dir": 3}, TypeError, r"^cache_dir: expected a path \(str or os.PathLike\) or None, got int$"),
    ],
    ids=["int-dtype", "str-dtype", "int-standardize", "int-cache-dir"],
)
def test_mnist1d_argument_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        mnist1d(**kwargs)


# ------------------------------------------------------------------------------------------------ CIFAR


def _images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)


def _write(path: Path, obj: object, protocol: int = pickle.HIGHEST_PROTOCOL) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=protocol))


def make_cifar10(root: Path, n: int = 20) -> dict[str, tuple[np.ndarray, list[int]]]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {}
    for i, name in enumerate([*(f"data_batch_{j}" for j in range(1, 6)), "test_batch"]):
        x = _images(n, i)
        y = [int(v) for v in np.random.default_rng(100 + i).integers(0, 10, n)]
        _write(folder / name, {b"batch_label": name.encode(), b"data": x, b"labels": y, b"filenames": []})
        batches[name] = (x, y)
    return batches


def make_cifar100(root: Path, n: int = 20) -> dict[str, tuple[np.ndarray, list[int]]]:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    batches = {}
    for i, (name, size) in enumerate([("train", 3 * n), ("test", n)]):
        x = _images(size, 50 + i)
        y = [int(v) for v in np.random.default_rng(200 + i).integers(0, 100, size)]
        coarse = [v // 5 for v in y]
        _write(folder / name, {b"data": x, b"fine_labels": y, b"coarse_labels": coarse})
        batches[name] = (x, y)
    return batches


def test_cifar10_shapes_labels_and_per_channel_standardization(tmp_path):
    batches = make_cifar10(tmp_path)
    splits = cifar(tmp_path / "cifar-10-batches-py", dtype=torch.float64)
    assert splits.name == "cifar10" and splits.num_classes == 10
    assert splits.x_train.shape == (100, 3, 32, 32) and splits.x_test.shape == (20, 3, 32, 32)
    expected_y = [label for j in range(1, 6) for label in batches[f"data_batch_{j}"][1]]
    assert splits.y_train.tolist() == expected_y and splits.y_test.tolist() == batches["test_batch"][1]
    assert splits.y_train.dtype == torch.int64

    # hand computation: scale to [0, 1], per-channel population statistics of the training images
    raw = np.concatenate([batches[f"data_batch_{j}"][0] for j in range(1, 6)]).reshape(-1, 3, 32, 32) / 255.0
    mean = raw.mean(axis=(0, 2, 3), keepdims=True)
    std = raw.std(axis=(0, 2, 3), keepdims=True)
    np.testing.assert_allclose(splits.x_train.numpy(), (raw - mean) / std, atol=1e-12)
    test_raw = batches["test_batch"][0].reshape(-1, 3, 32, 32) / 255.0
    np.testing.assert_allclose(splits.x_test.numpy(), (test_raw - mean) / std, atol=1e-12)
    np.testing.assert_allclose(splits.x_train.mean(dim=(0, 2, 3)).numpy(), 0.0, atol=1e-12)
    np.testing.assert_allclose(splits.x_train.std(dim=(0, 2, 3), correction=0).numpy(), 1.0, rtol=1e-12)
    assert splits.mean.shape == (1, 3, 1, 1)


def test_cifar10_from_parent_directory_unstandardized_float32(tmp_path):
    batches = make_cifar10(tmp_path, n=4)
    splits = cifar(str(tmp_path), standardize=False)
    assert splits.x_train.dtype == torch.float32 and splits.mean is None
    first = batches["data_batch_1"][0][0].reshape(3, 32, 32) / 255.0
    np.testing.assert_allclose(splits.x_train[0].numpy(), first, rtol=1e-6)
    assert float(splits.x_train.min()) >= 0.0 and float(splits.x_train.max()) <= 1.0


def test_cifar100_fine_labels(tmp_path):
    batches = make_cifar100(tmp_path)
    splits = cifar(tmp_path, num_classes=100)
    assert splits.name == "cifar100" and splits.num_classes == 100
    assert splits.x_train.shape == (60, 3, 32, 32) and splits.x_test.shape == (20, 3, 32, 32)
    assert splits.y_train.tolist() == batches["train"][1] and splits.y_test.tolist() == batches["test"][1]
    torch.testing.assert_close(splits.x_train.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(splits.x_train.std(dim=(0, 2, 3), correction=0), torch.ones(3), atol=1e-5, rtol=0)


def test_cifar_reads_python2_era_pickles(tmp_path):
    """The released files are protocol-2 pickles that name ``numpy.core.multiarray`` (pre-numpy-2)."""
    make_cifar10(tmp_path, n=3)
    folder = tmp_path / "cifar-10-batches-py"
    x = _images(3, 7)
    blob = pickle.dumps({b"data": x, b"labels": [1, 2, 3]}, protocol=2)
    blob = blob.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    assert b"numpy.core.multiarray" in blob
    (folder / "test_batch").write_bytes(blob)
    splits = cifar(folder, standardize=False, dtype=torch.float64)
    np.testing.assert_allclose(splits.x_test.numpy(), x.reshape(3, 3, 32, 32) / 255.0)
    assert splits.y_test.tolist() == [1, 2, 3]


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.mark.parametrize(
    ("corrupt", "match"),
    [
        ("missing_dir", r"^root: expected an existing directory with the CIFAR-10 python files .*does not exist$"),
        ("missing_file", r"^root: expected CIFAR-10 file 'data_batch_3' in '.*', got a directory without it$"),
        ("garbage", r"^root: expected 'data_batch_2' to be a CIFAR-10 python pickle, got an unreadable file"),
        ("truncated", r"^root: expected 'data_batch_2' to be a CIFAR-10 python pickle, got an unreadable file"),
        ("code", r"^root: expected 'data_batch_2' .*got an unreadable file \(UnpicklingError: refusing global"),
        ("not_dict", r"^root: expected 'data_batch_2' to be a CIFAR-10 python pickle holding a dict, got list"),
        ("wrong_keys", r"^root: expected 'data_batch_2' .* with keys b'data' and b'labels', got dict with keys"),
        (
            "bad_shape",
            r"^root: expected 'data_batch_2' .*uint8 array of shape \(N, 3072\), got data of shape \(20, 100\)",
        ),
        ("bad_dtype", r"^root: expected 'data_batch_2' .*got data of shape \(20, 3072\) and dtype float64$"),
        ("few_labels", r"^root: expected 'data_batch_2' .* with 20 integer labels, got labels list of length 19$"),
        ("label_range", r"^root: expected 'data_batch_2' .* with labels in \[0, 9\], got labels in \[0, 10\]$"),
    ],
)
def test_cifar_errors(tmp_path, corrupt, match):
    make_cifar10(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    target = folder / "data_batch_2"
    x = _images(20, 0)
    labels = [0] * 20
    root = folder
    if corrupt == "missing_dir":
        root = tmp_path / "nowhere"
    elif corrupt == "missing_file":
        (folder / "data_batch_3").unlink()
    elif corrupt == "garbage":
        target.write_bytes(b"this is not a pickle")
    elif corrupt == "truncated":
        target.write_bytes(target.read_bytes()[:100])
    elif corrupt == "code":
        _write(target, {b"data": _Evil(), b"labels": labels})
    elif corrupt == "not_dict":
        _write(target, [x, labels])
    elif corrupt == "wrong_keys":
        _write(target, {b"images": x, b"labels": labels})
    elif corrupt == "bad_shape":
        _write(target, {b"data": x[:, :100].copy(), b"labels": labels})
    elif corrupt == "bad_dtype":
        _write(target, {b"data": x.astype(np.float64), b"labels": labels})
    elif corrupt == "few_labels":
        _write(target, {b"data": x, b"labels": labels[:19]})
    elif corrupt == "label_range":
        _write(target, {b"data": x, b"labels": [*labels[:19], 10]})
    with pytest.raises(ValueError, match=match):
        cifar(root)


def test_cifar100_missing_file_named(tmp_path):
    make_cifar100(tmp_path)
    (tmp_path / "cifar-100-python" / "test").unlink()
    with pytest.raises(ValueError, match=r"^root: expected CIFAR-100 file 'test' in .*cifar-100-python'"):
        cifar(tmp_path, num_classes=100)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"num_classes": 20}, ValueError, r"^num_classes: expected 10 or 100, got 20$"),
        ({"root": 5}, TypeError, r"^root: expected a path \(str or os.PathLike\), got int$"),
    ],
    ids=["num-classes", "root-type"],
)
def test_cifar_argument_errors(tmp_path, kwargs, exc, match):
    kwargs = {"root": tmp_path, **kwargs}
    with pytest.raises(exc, match=match):
        cifar(**kwargs)


# ------------------------------------------------------------------------------------------------ helpers


def test_standardize_global_and_per_channel_vs_hand_computation():
    g = torch.Generator().manual_seed(0)
    train = torch.randn(6, 3, 4, 4, generator=g, dtype=torch.float64) * 3 + 2
    test = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64)

    mean, std = train.mean(), ((train - train.mean()) ** 2).mean().sqrt()
    got_train, got_test = standardize(train, test)
    torch.testing.assert_close(got_train, (train - mean) / std)
    torch.testing.assert_close(got_test, (test - mean) / std)

    for c in range(3):
        m = train[:, c].mean()
        s = ((train[:, c] - m) ** 2).mean().sqrt()
        got_train, got_test = standardize(train, test, dims=(0, 2, 3))
        torch.testing.assert_close(got_train[:, c], (train[:, c] - m) / s)
        torch.testing.assert_close(got_test[:, c], (test[:, c] - m) / s)

    per_feature = torch.tensor([[1.0, 5.0], [3.0, 5.0]])
    (out,) = standardize(per_feature, dims=0)
    torch.testing.assert_close(out, torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))  # constant feature: centered only
    mean, std = fit_standardization(per_feature, dims=[0])
    assert mean.shape == (1, 2) and std.tolist() == [[1.0, 1.0]]


@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "match"),
    [
        ((torch.arange(4),), {}, TypeError, r"^train: expected a floating-point tensor, got Tensor\(shape=\(4,\)"),
        (([1.0],), {}, TypeError, r"^train: expected Tensor, got list$"),
        ((torch.ones(2, 3),), {"dims": 2}, ValueError, r"^dims: expected dimensions in \[-2, 1\] for a 2-D tensor"),
        ((torch.ones(2, 3),), {"dims": "0"}, TypeError, r"^dims: expected None, an int or a sequence of ints"),
        ((torch.ones(2, 3),), {"dims": (0, 0)}, ValueError, r"^dims: expected distinct dimensions"),
        ((torch.ones(2, 3), torch.ones(2, 4)), {"dims": 0}, ValueError, r"^others\[0\]: expected a 2-D tensor"),
        ((torch.ones(2, 3), torch.ones(2)), {}, ValueError, r"^others\[0\]: expected a 2-D tensor matching train"),
    ],
    ids=["int-train", "list-train", "dim-range", "dim-type", "dim-repeat", "other-shape", "other-ndim"],
)
def test_standardize_errors(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        standardize(*args, **kwargs)


def test_train_test_split_is_seeded_and_matches_randperm():
    x = torch.arange(20.0).reshape(10, 2)
    y = torch.arange(10)
    x_train, y_train, x_test, y_test = train_test_split(x, y, 0.3, seed=5)
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(5))
    assert torch.equal(y_test, perm[:3]) and torch.equal(y_train, perm[3:])
    assert torch.equal(x_test, x[perm[:3]]) and torch.equal(x_train, x[perm[3:]])
    again = train_test_split(x, y, 0.3, seed=5)
    assert all(torch.equal(a, b) for a, b in zip(again, (x_train, y_train, x_test, y_test)))
    other = train_test_split(x, y, 0.3, seed=6)
    assert not torch.equal(other[3], y_test)
    assert sorted(torch.cat([y_train, y_test]).tolist()) == list(range(10))


@pytest.mark.parametrize(
    ("args", "exc", "match"),
    [
        ((torch.ones(4, 2), torch.ones(3), 0.5), ValueError, r"^y: expected a tensor with 4 rows like x"),
        ((torch.ones(4, 2), torch.ones(4), 1.0), ValueError, r"^test_fraction: expected a number in \(0, 1\), got 1.0"),
        ((torch.ones(4, 2), torch.ones(4), 0.0), ValueError, r"^test_fraction: expected a finite number > 0, got 0.0"),
        ((torch.ones(4, 2), torch.ones(4), 0.01), ValueError, r"^test_fraction: expected a fraction leaving both"),
        ((torch.ones(4, 2), torch.ones(4), 0.5, 1.5), TypeError, r"^seed: expected an integer, got 1.5$"),
        (([1, 2], torch.ones(2), 0.5), TypeError, r"^x: expected Tensor, got list$"),
    ],
    ids=["len-mismatch", "fraction-one", "fraction-zero", "empty-test", "float-seed", "list-x"],
)
def test_train_test_split_errors(args, exc, match):
    with pytest.raises(exc, match=match):
        train_test_split(*args)


def _tiny_splits() -> TensorSplits:
    x = torch.arange(20.0).reshape(10, 2)
    return TensorSplits(x, torch.arange(10), x[:4] + 100, torch.arange(4), num_classes=10, name="tiny")


def test_loaders_are_seeded_and_cover_the_data():
    splits = _tiny_splits()
    train, test = splits.loaders(batch_size=3, test_batch_size=4, seed=1)
    order = torch.cat([yb for _, yb in train])
    assert sorted(order.tolist()) == list(range(10)) and order.tolist() != list(range(10))
    again, _ = splits.loaders(batch_size=3, seed=1)
    assert torch.equal(torch.cat([yb for _, yb in again]), order)
    assert [len(yb) for _, yb in test] == [4]
    plain, _ = splits.loaders(batch_size=4, shuffle=False, drop_last=True)
    assert [yb.tolist() for _, yb in plain] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert splits.train[0] is splits.x_train and splits.test[1] is splits.y_test
    assert splits.input_shape == (2,)
    assert "name='tiny'" in repr(splits) and "(10, 2)" in repr(splits)
    moved = splits.to(dtype=torch.float64)
    assert moved.x_train.dtype == torch.float64 and moved.y_train.dtype == torch.int64


@pytest.mark.parametrize(
    ("make", "exc", "match"),
    [
        (lambda s: s.loaders(batch_size=0), ValueError, r"^batch_size: expected an integer >= 1, got 0$"),
        (lambda s: s.loaders(batch_size=2, shuffle="yes"), TypeError, r"^shuffle: expected bool, got str$"),
        (
            lambda s: TensorSplits(s.x_train, s.y_train[:5], s.x_test, s.y_test, 10, "t"),
            ValueError,
            r"^y_train: expected a 1-D tensor with one target per row of x_train",
        ),
        (
            lambda s: TensorSplits(s.x_train, s.y_train, s.x_test[:, :1], s.y_test, 10, "t"),
            ValueError,
            r"^x_test: expected inputs of shape \(N, 2\), got Tensor\(shape=\(4, 1\)",
        ),
    ],
    ids=["batch-size", "shuffle-type", "y-length", "x-test-shape"],
)
def test_tensor_splits_errors(make, exc, match):
    with pytest.raises(exc, match=match):
        make(_tiny_splits())
