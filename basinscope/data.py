"""Data sets as in-memory tensors: MNIST-1D (generated offline and cached), CIFAR-10/100 (local pickles).

Everything here returns a :class:`TensorSplits`, a frozen pair of train/test tensors with the number of classes,
so that measurements (losses, gradients, Hessian-vector products) can index the data directly and
:meth:`TensorSplits.loaders` gives ordinary ``torch.utils.data.DataLoader`` objects for training.

Nothing here touches the network:

* :func:`mnist1d` generates the standard MNIST-1D split with ``mnist1d.data.make_dataset`` (pure numpy, seed 42)
  and caches the arrays as ``.npz`` in a user cache directory. ``mnist1d.data.get_dataset`` is never called: it
  downloads with no timeout and writes a pickle into the current directory.
* :func:`cifar` reads the python-pickle release of CIFAR-10/100 from a local directory, with an unpickler that only
  accepts numpy arrays, lists, dicts and scalars (a pickle cannot run code through it).

Example:
    >>> from basinscope.data import mnist1d
    >>> data = mnist1d()  # doctest: +SKIP
    >>> data.x_train.shape, data.num_classes  # doctest: +SKIP
    (torch.Size([4000, 40]), 10)
    >>> train_loader, test_loader = data.loaders(batch_size=128, seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from ._checks import check_int, check_positive, check_type, describe, fail

__all__ = [
    "TensorSplits",
    "cifar",
    "default_cache_dir",
    "fit_standardization",
    "mnist1d",
    "standardize",
    "train_test_split",
]

# Bump when the cached file layout changes, so that old caches are regenerated instead of misread.
_MNIST1D_CACHE_VERSION = 1


@dataclass(frozen=True, eq=False, repr=False)
class TensorSplits:
    """A train/test split held as tensors.

    Attributes:
        x_train: training inputs, shape ``(N_train, *input_shape)``, floating point.
        y_train: training targets, shape ``(N_train,)``, ``int64`` class indices.
        x_test: test inputs, shape ``(N_test, *input_shape)``.
        y_test: test targets, shape ``(N_test,)``.
        num_classes: number of classes.
        name: short name of the data set (``"mnist1d"``, ``"cifar10"``, ``"cifar100"``).
        mean: the mean subtracted from the inputs (broadcastable to ``x_train``), or ``None`` if not standardized.
        std: the standard deviation the inputs were divided by, or ``None`` if not standardized.
    """

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    num_classes: int
    name: str
    mean: Tensor | None = None
    std: Tensor | None = None

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            check_type(f"x_{split}", x, Tensor)
            check_type(f"y_{split}", y, Tensor)
            if y.ndim != 1 or x.ndim < 1 or x.shape[0] != y.shape[0]:
                fail(
                    f"y_{split}",
                    f"a 1-D tensor with one target per row of x_{split} ({tuple(x.shape)[:1]})",
                    y,
                )
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            fail("x_test", f"inputs of shape (N, {', '.join(map(str, self.x_train.shape[1:]))})", self.x_test)
        check_int("num_classes", self.num_classes, minimum=1)

    @property
    def train(self) -> tuple[Tensor, Tensor]:
        """``(x_train, y_train)``."""
        return self.x_train, self.y_train

    @property
    def test(self) -> tuple[Tensor, Tensor]:
        """``(x_test, y_test)``."""
        return self.x_test, self.y_test

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, e.g. ``(40,)`` for MNIST-1D or ``(3, 32, 32)`` for CIFAR."""
        return tuple(self.x_train.shape[1:])

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> TensorSplits:
        """A copy with inputs (and statistics) moved to ``device`` / cast to ``dtype``; targets stay ``int64``."""
        if dtype is not None:
            _check_float_dtype(dtype)

        def move(t: Tensor | None, cast: bool) -> Tensor | None:
            if t is None:
                return None
            return t.to(device=device, dtype=dtype if cast else None)

        return dataclasses.replace(
            self,
            x_train=move(self.x_train, True),
            y_train=move(self.y_train, False),
            x_test=move(self.x_test, True),
            y_test=move(self.y_test, False),
            mean=move(self.mean, True),
            std=move(self.std, True),
        )

    def loaders(
        self,
        batch_size: int,
        *,
        test_batch_size: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> tuple[DataLoader, DataLoader]:
        """``(train_loader, test_loader)`` over ``TensorDataset``s of the two splits.

        Args:
            batch_size: training batch size.
            test_batch_size: test batch size (default: ``batch_size``).
            shuffle: reshuffle the training set every epoch (the test set is never shuffled).
            seed: seed of the generator that drives the shuffling, so that the batch order is reproducible.
            drop_last: drop the last incomplete training batch.
        """
        check_int("batch_size", batch_size, minimum=1)
        if test_batch_size is None:
            test_batch_size = batch_size
        check_int("test_batch_size", test_batch_size, minimum=1)
        check_type("shuffle", shuffle, bool)
        check_int("seed", seed)
        generator = torch.Generator().manual_seed(seed)
        train = DataLoader(
            TensorDataset(self.x_train, self.y_train),
            batch_size=batch_size,
            shuffle=shuffle,
            generator=generator,
            drop_last=drop_last,
        )
        test = DataLoader(TensorDataset(self.x_test, self.y_test), batch_size=test_batch_size, shuffle=False)
        return train, test

    def __repr__(self) -> str:
        return (
            f"TensorSplits(name={self.name!r}, train={tuple(self.x_train.shape)}, test={tuple(self.x_test.shape)}, "
            f"num_classes={self.num_classes}, dtype={self.x_train.dtype}, device={self.x_train.device}, "
            f"standardized={self.mean is not None})"
        )


# --------------------------------------------------------------------------------------------------- helpers


def _check_float_dtype(dtype: Any) -> None:
    if not isinstance(dtype, torch.dtype):
        fail("dtype", "a torch.dtype", dtype, exc=TypeError)
    if not dtype.is_floating_point:
        fail("dtype", "a floating-point torch.dtype", str(dtype), raw=True)


def _reduce_dims(name: str, dims: int | Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    if dims is None:
        return tuple(range(ndim))
    if isinstance(dims, int) and not isinstance(dims, bool):
        dims = (dims,)
    if not isinstance(dims, Sequence) or not all(isinstance(d, int) and not isinstance(d, bool) for d in dims):
        fail(name, "None, an int or a sequence of ints", dims, exc=TypeError)
    out = []
    for d in dims:
        if not -ndim <= d < ndim:
            fail(name, f"dimensions in [-{ndim}, {ndim - 1}] for a {ndim}-D tensor", dims)
        out.append(d % ndim)
    if len(set(out)) != len(out) or not out:
        fail(name, "distinct dimensions, at least one", dims)
    return tuple(sorted(out))


def fit_standardization(train: Tensor, *, dims: int | Sequence[int] | None = None) -> tuple[Tensor, Tensor]:
    """Mean and standard deviation of ``train`` over ``dims``, kept broadcastable to ``train``.

    ``std`` is the population standard deviation (``correction=0``); where it is zero (a constant feature) it is
    replaced by 1 so that standardizing only centers that feature.

    Args:
        train: floating-point tensor.
        dims: dimensions to reduce over. ``None`` reduces over all of them (one global mean and std, the choice
            for MNIST-1D); ``(0, 2, 3)`` gives per-channel statistics of an ``(N, C, H, W)`` batch (CIFAR).

    Returns:
        ``(mean, std)``, each with ``train.ndim`` dimensions, of size 1 along ``dims``.
    """
    check_type("train", train, Tensor)
    if not train.is_floating_point():
        fail("train", "a floating-point tensor", train, exc=TypeError)
    reduce = _reduce_dims("dims", dims, train.ndim)
    if train.numel() == 0:
        fail("train", "a non-empty tensor", train)
    std, mean = torch.std_mean(train, dim=reduce, correction=0, keepdim=True)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return mean, std


def standardize(train: Tensor, *others: Tensor, dims: int | Sequence[int] | None = None) -> tuple[Tensor, ...]:
    """Standardize ``train`` and ``others`` with the statistics of ``train``: ``(x - mean_train) / std_train``.

    Only ``train`` is used to fit the statistics, so that test data never leak into the preprocessing.

    Args:
        train: floating-point tensor the statistics are computed on.
        *others: tensors standardized with the same statistics (same shape as ``train`` except along ``dims``).
        dims: dimensions to reduce over, see :func:`fit_standardization` (``None``: global scalars).

    Returns:
        The standardized ``(train, *others)``, new tensors.

    Example:
        >>> x_train, x_test = torch.tensor([[1.0], [3.0]]), torch.tensor([[2.0]])
        >>> standardize(x_train, x_test)
        (tensor([[-1.],
                [ 1.]]), tensor([[0.]]))
    """
    mean, std = fit_standardization(train, dims=dims)
    reduce = _reduce_dims("dims", dims, train.ndim)
    out = [(train - mean) / std]
    for i, other in enumerate(others):
        name = f"others[{i}]"
        check_type(name, other, Tensor)
        if not other.is_floating_point():
            fail(name, "a floating-point tensor", other, exc=TypeError)
        kept_ok = other.ndim == train.ndim and all(
            other.shape[d] == train.shape[d] for d in range(train.ndim) if d not in reduce
        )
        if not kept_ok:
            fail(name, f"a {train.ndim}-D tensor matching train {tuple(train.shape)} outside dims {reduce}", other)
        out.append((other - mean) / std)
    return tuple(out)


def train_test_split(
    x: Tensor, y: Tensor, test_fraction: float, seed: int = 0
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Split ``(x, y)`` at random into train and test parts, reproducibly.

    The rows are permuted by ``torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))``; the first
    ``round(test_fraction * len(x))`` rows of the permutation form the test part, the rest the training part.

    Args:
        x: inputs, first dimension indexes examples.
        y: targets with the same first dimension.
        test_fraction: fraction of examples in the test part, in (0, 1); both parts must end up non-empty.
        seed: seed of the permutation.

    Returns:
        ``(x_train, y_train, x_test, y_test)``.
    """
    check_type("x", x, Tensor)
    check_type("y", y, Tensor)
    if x.ndim == 0:
        fail("x", "a tensor with at least one dimension", x)
    if y.ndim == 0 or y.shape[0] != x.shape[0]:
        fail("y", f"a tensor with {x.shape[0]} rows like x", y)
    fraction = check_positive("test_fraction", test_fraction)
    if fraction >= 1:
        fail("test_fraction", "a number in (0, 1)", test_fraction)
    check_int("seed", seed)
    n = x.shape[0]
    n_test = round(fraction * n)
    if n_test < 1 or n_test > n - 1:
        fail("test_fraction", f"a fraction leaving both parts non-empty for {n} examples", test_fraction)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).to(x.device)
    test_idx, train_idx = perm[:n_test], perm[n_test:]
    return x[train_idx], y[train_idx.to(y.device)], x[test_idx], y[test_idx.to(y.device)]


def _finish(
    name: str,
    num_classes: int,
    x_train: Tensor,
    y_train: Tensor,
    x_test: Tensor,
    y_test: Tensor,
    *,
    standardize_inputs: bool,
    dims: tuple[int, ...] | None,
    device: torch.device | str | None,
    dtype: torch.dtype,
) -> TensorSplits:
    mean = std = None
    if standardize_inputs:
        mean, std = fit_standardization(x_train, dims=dims)
        x_train, x_test = (x_train - mean) / std, (x_test - mean) / std

    def move(t: Tensor | None, cast: bool = True) -> Tensor | None:
        return None if t is None else t.to(device=device, dtype=dtype if cast else torch.int64)

    return TensorSplits(
        x_train=move(x_train),
        y_train=move(y_train, False),
        x_test=move(x_test),
        y_test=move(y_test, False),
        num_classes=num_classes,
        name=name,
        mean=move(mean),
        std=move(std),
    )


# --------------------------------------------------------------------------------------------------- MNIST-1D


def default_cache_dir() -> Path:
    """Cache directory: ``$BASINSCOPE_CACHE``, else ``$XDG_CACHE_HOME/basinscope``, else ``~/.cache/basinscope``."""
    env = os.environ.get("BASINSCOPE_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "basinscope"
    return Path.home() / ".cache" / "basinscope"


def _mnist1d_args() -> tuple[Any, str]:
    import mnist1d.data

    args = mnist1d.data.get_dataset_args()
    settings = {k: v for k, v in vars(args).items() if k != "url"}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return args, f"mnist1d-v{_MNIST1D_CACHE_VERSION}-{digest}.npz"


def _generate_mnist1d(args: Any) -> dict[str, np.ndarray]:
    import random

    import mnist1d.data

    # make_dataset reseeds the global `random` and numpy generators: restore them so the caller's streams go on.
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        raw = mnist1d.data.make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return {k: np.asarray(raw[k]) for k in ("x", "y", "x_test", "y_test")}


def _load_cached(path: Path) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in ("x", "y", "x_test", "y_test")}
    except (OSError, ValueError, KeyError, EOFError):  # missing, truncated or foreign file: regenerate
        return None
    x, y, xt, yt = arrays["x"], arrays["y"], arrays["x_test"], arrays["y_test"]
    if x.ndim != 2 or xt.ndim != 2 or x.shape[0] != y.shape[0] or xt.shape[0] != yt.shape[0]:
        return None
    return arrays


def _save_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)  # atomic: readers see the old file or the complete new one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def mnist1d(
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    standardize: bool = True,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> TensorSplits:
    """The standard MNIST-1D data set (4,000 train / 1,000 test sequences of length 40, 10 classes).

    From Greydanus & Kobak, "Scaling Down Deep Learning with MNIST-1D" (ICML 2024). The data are generated
    offline by ``mnist1d.data.make_dataset(mnist1d.data.get_dataset_args())`` (seed 42, deterministic) and cached
    in ``cache_dir`` as an ``.npz`` file named after a hash of the generation settings, written atomically
    (temporary file + ``os.replace``). Later calls read the cache. If the cache directory is not writable the
    data are still returned, with a warning.

    Args:
        cache_dir: where to cache the arrays (default: :func:`default_cache_dir`).
        standardize: subtract the training mean and divide by the training standard deviation, both *global
            scalars* over all training values (MNIST-1D positions are not separate features with their own scale:
            the sequences are shifted and sheared). ``make_dataset`` already centers the data over train and test
            together; this re-standardizes with training statistics only.
        device: device of the returned tensors.
        dtype: floating dtype of the inputs (targets are ``int64``).

    Returns:
        :class:`TensorSplits` with ``x_train`` ``(4000, 40)``, ``y_train`` ``(4000,)``, ``x_test`` ``(1000, 40)``,
        ``y_test`` ``(1000,)``, ``num_classes=10``, ``name="mnist1d"``.
    """
    check_type("standardize", standardize, bool)
    _check_float_dtype(dtype)
    if cache_dir is not None:
        check_type("cache_dir", cache_dir, (str, os.PathLike), "a path (str or os.PathLike) or None")
    directory = default_cache_dir() if cache_dir is None else Path(cache_dir).expanduser()
    args, filename = _mnist1d_args()
    path = directory / filename

    arrays = _load_cached(path)
    if arrays is None:
        arrays = _generate_mnist1d(args)
        try:
            _save_atomic(path, arrays)
        except OSError as err:
            warnings.warn(f"basinscope: could not cache MNIST-1D in {str(directory)!r} ({err})", stacklevel=2)

    return _finish(
        "mnist1d",
        10,
        torch.from_numpy(arrays["x"]).to(torch.float64),
        torch.from_numpy(arrays["y"]).to(torch.int64),
        torch.from_numpy(arrays["x_test"]).to(torch.float64),
        torch.from_numpy(arrays["y_test"]).to(torch.int64),
        standardize_inputs=standardize,
        dims=None,
        device=device,
        dtype=dtype,
    )


# --------------------------------------------------------------------------------------------------- CIFAR

_CIFAR_LAYOUT = {
    10: ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels"),
    100: ("cifar-100-python", ["train"], ["test"], b"fine_labels"),
}

# Globals an honest CIFAR pickle needs (numpy array reconstruction); anything else is refused, so a crafted
# pickle cannot call arbitrary functions. Old numpy wrote `numpy.core`, numpy >= 2 writes `numpy._core`;
# protocol-2 pickles written by Python 3 rebuild bytes with `_codecs.encode`.
_SAFE_GLOBALS = {
    ("_codecs", "encode"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
}


class _CifarUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _SAFE_GLOBALS:
            raise pickle.UnpicklingError(f"refusing global {module}.{name}")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):
            module = "numpy._core." + module[len("numpy.core.") :]  # avoid numpy 2's deprecation shim
        return super().find_class(module, name)


def _resolve_cifar_dir(root: Any, num_classes: int) -> Path:
    check_type("root", root, (str, os.PathLike), "a path (str or os.PathLike)")
    folder, train_files, test_files, _ = _CIFAR_LAYOUT[num_classes]
    base = Path(root).expanduser()
    if not base.is_dir():
        fail(
            "root",
            f"an existing directory with the CIFAR-{num_classes} python files ({folder!r} or its parent)",
            f"{str(base)!r}, which {'is not a directory' if base.exists() else 'does not exist'}",
            raw=True,
        )
    if (base / folder).is_dir():
        base = base / folder
    for name in train_files + test_files:
        if not (base / name).is_file():
            fail("root", f"CIFAR-{num_classes} file {name!r} in {str(base)!r}", "a directory without it", raw=True)
    return base


def _read_cifar_batch(path: Path, label_key: bytes, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    what = f"{path.name!r} to be a CIFAR-{num_classes} python pickle"
    try:
        with open(path, "rb") as f:
            batch = _CifarUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError) as err:
        fail("root", what, f"an unreadable file ({type(err).__name__}: {err})", raw=True)
    if not isinstance(batch, dict):
        fail("root", what + " holding a dict", batch)
    batch = {k.encode() if isinstance(k, str) else k: v for k, v in batch.items()}
    missing = [k for k in (b"data", label_key) if k not in batch]
    if missing:
        fail("root", f"{what} with keys {b'data'!r} and {label_key!r}", batch)
    data, labels = batch[b"data"], batch[label_key]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        got = f"data of shape {data.shape} and dtype {data.dtype}" if isinstance(data, np.ndarray) else describe(data)
        fail("root", f"{what} whose data is a uint8 array of shape (N, 3072)", got, raw=True)
    try:
        labels = np.asarray(labels)
    except (ValueError, TypeError):
        labels = np.asarray([], dtype=object)
    if labels.ndim != 1 or labels.shape[0] != data.shape[0] or not np.issubdtype(labels.dtype, np.integer):
        fail("root", f"{what} with {data.shape[0]} integer labels", f"labels {describe(batch[label_key])}", raw=True)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        got = f"labels in [{labels.min()}, {labels.max()}]"
        fail("root", f"{what} with labels in [0, {num_classes - 1}]", got, raw=True)
    return data, labels.astype(np.int64)


def cifar(
    root: str | os.PathLike[str],
    *,
    num_classes: int = 10,
    standardize: bool = True,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> TensorSplits:
    """CIFAR-10 or CIFAR-100 from the python-pickle release in a local directory (never downloads).

    Krizhevsky, "Learning Multiple Layers of Features from Tiny Images" (2009). Files read:

    * CIFAR-10: ``data_batch_1`` ... ``data_batch_5`` and ``test_batch`` (keys ``b"data"``, ``b"labels"``);
    * CIFAR-100: ``train`` and ``test`` (keys ``b"data"``, ``b"fine_labels"``; the 100 fine classes).

    ``b"data"`` is a ``uint8`` array of shape ``(N, 3072)`` (1024 red, 1024 green, 1024 blue values, row-major),
    reshaped to ``(N, 3, 32, 32)``. Pickles are read with an unpickler that only accepts numpy arrays and plain
    containers. No data augmentation is applied (measurements need a fixed data set).

    Args:
        root: the extracted folder (``cifar-10-batches-py`` / ``cifar-100-python``) or the folder containing it.
        num_classes: 10 or 100.
        standardize: if true, inputs are scaled to [0, 1] and then standardized with the per-channel mean and
            standard deviation of the training set; if false they are only scaled to [0, 1].
        device: device of the returned tensors.
        dtype: floating dtype of the inputs (targets are ``int64``).

    Returns:
        :class:`TensorSplits` with ``x_train`` ``(50000, 3, 32, 32)``, ``x_test`` ``(10000, 3, 32, 32)`` for the
        full release, ``name`` ``"cifar10"`` or ``"cifar100"``.

    Raises:
        ValueError: ``root`` does not exist, a file is missing (named in the message), or a file is not a CIFAR
            pickle of the expected layout (wrong keys, data shape or labels).
    """
    check_int("num_classes", num_classes)
    if num_classes not in _CIFAR_LAYOUT:
        fail("num_classes", "10 or 100", num_classes)
    check_type("standardize", standardize, bool)
    _check_float_dtype(dtype)
    base = _resolve_cifar_dir(root, num_classes)
    _, train_files, test_files, label_key = _CIFAR_LAYOUT[num_classes]

    def read(files: list[str]) -> tuple[Tensor, Tensor]:
        parts = [_read_cifar_batch(base / name, label_key, num_classes) for name in files]
        data = np.concatenate([p[0] for p in parts]).reshape(-1, 3, 32, 32)
        labels = np.concatenate([p[1] for p in parts])
        return torch.from_numpy(data).to(dtype).div_(255.0), torch.from_numpy(labels)

    x_train, y_train = read(train_files)
    x_test, y_test = read(test_files)
    return _finish(
        f"cifar{num_classes}",
        num_classes,
        x_train,
        y_train,
        x_test,
        y_test,
        standardize_inputs=standardize,
        dims=(0, 2, 3),
        device=device,
        dtype=dtype,
    )
