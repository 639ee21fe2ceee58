"""Resolving the command line's ``--model`` and ``--data`` specifications into objects.

Model specs:

* ``NAME`` or ``NAME:key=value,key=value`` — a model of the zoo (:func:`basinscope.models.build_model`), with
  keyword arguments parsed as Python literals (``width=32``, ``bn=True``, ``widths=(64,64)``) or else strings;
* ``module:factory`` or ``module:factory:key=value,...`` — any importable callable returning an ``nn.Module``;
  ``module`` may also be a path to a ``.py`` file (``path/to/nets.py:make``). Importing it runs that module's
  code, as ``python -m`` would: name only modules you trust. What the data determine (``num_classes``,
  ``in_channels``, ``input_size``) is passed only where the factory names that parameter; factories taking
  ``**kwargs`` (``torchvision.models:resnet18``) get only the spec's own keywords, e.g.
  ``torchvision.models:resnet18:num_classes=10``.

Data specs:

* ``mnist1d`` — the embedded MNIST-1D (4,000 train / 1,000 test examples of length 40, 10 classes);
* ``cifar10:DIR`` / ``cifar100:DIR`` — the CIFAR python pickles under ``DIR`` (never downloaded);
* ``module:factory`` — a callable returning the data as an object with ``x_train, y_train, x_test, y_test``,
  a dict with those keys, a 4-tuple ``(x_train, y_train, x_test, y_test)``, or a pair ``(train, test)`` where each
  is an ``(x, y)`` pair of tensors or an iterable of ``(x, y)`` batches (e.g. a DataLoader).

Every failure is a one-line ``ValueError`` naming the option, what was expected and what was received.

Example:
    >>> parse_kwargs("width=32,bn=True,name=a")
    {'width': 32, 'bn': True, 'name': 'a'}
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["DataSet", "parse_kwargs", "resolve_data", "resolve_factory", "resolve_model"]


def parse_kwargs(text: str, *, option: str = "--model") -> dict[str, Any]:
    """Parse ``key=value,key=value``; values are Python literals where they parse, strings otherwise.

    Commas inside brackets belong to the value (``widths=(64,64)``).
    """
    out: dict[str, Any] = {}
    if not text.strip():
        return out
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    for part in parts:
        key, sep, raw = part.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ValueError(f"{option}: expected keyword arguments as key=value[,key=value...], got {part.strip()!r}")
        raw = raw.strip()
        try:
            out[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            low = raw.lower()
            out[key] = {"true": True, "false": False, "none": None}.get(low, raw)
    return out


def _import_module(name: str, option: str):
    if name.endswith(".py"):
        path = Path(name)
        if not path.is_file():
            raise ValueError(f"{option}: expected an existing Python file, got missing '{name}'")
        mod_name = f"_landscape_user_{path.stem}"
        spec = importlib.util.spec_from_file_location(mod_name, path)
        if spec is None or spec.loader is None:
            raise ValueError(f"{option}: expected an importable Python file, got '{name}'")
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise ValueError(f"{option}: expected an importable module, got {name!r} ({e})") from None


def resolve_factory(spec: str, *, option: str) -> tuple[Callable[..., Any], dict[str, Any]]:
    """``module:factory[:key=value,...]`` → (callable, kwargs)."""
    module_name, _, rest = spec.partition(":")
    attr, _, kw = rest.partition(":")
    if not module_name or not attr:
        raise ValueError(f"{option}: expected module:factory, got {spec!r}")
    module = _import_module(module_name, option)
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{option}: expected {module_name!r} to define {attr!r}, got no such attribute")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"{option}: expected {spec!r} to name a callable, got {type(obj).__name__}")
    return obj, parse_kwargs(kw, option=option)


def _is_factory_spec(spec: str) -> bool:
    """``a:b`` where ``b`` has no ``=`` names ``module:factory``; ``name:k=v`` passes zoo kwargs."""
    _head, sep, rest = spec.partition(":")
    if not sep:
        return False
    first = rest.partition(":")[0]
    return "=" not in first


def _is_zoo_name(name: str) -> bool:
    try:
        from .models import available_models
    except ImportError:
        return False
    return name in available_models()


def _accepted(fn: Callable[..., Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The defaults that ``fn`` names as keyword parameters.

    A ``**kwargs`` catch-all does not count: factories such as torchvision's
    ``resnet18(*, weights=None, progress=True, **kwargs)`` forward it to a constructor that may not take the
    argument (``ResNet`` has no ``in_channels``). Such factories get what the spec sets explicitly.
    """
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return {}
    named = {
        name
        for name, p in sig.parameters.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    return {k: v for k, v in defaults.items() if k in named}


def resolve_model(spec: str, *, defaults: Mapping[str, Any] | None = None) -> nn.Module:
    """Build the model named by ``spec`` (see module docstring).

    Args:
        spec: ``NAME[:k=v,...]`` from the zoo or ``module:factory[:k=v,...]``.
        defaults: keyword arguments derived from the data (e.g. number of classes, input channels); applied
            only where the factory names them as parameters (a ``**kwargs`` catch-all does not count) and the
            spec does not set them.

    Raises:
        ValueError: unknown zoo name (the message lists the available ones), unimportable module, missing
            factory, a factory that fails or returns something that is not an ``nn.Module``.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"--model: expected a model name or module:factory, got {spec!r}")
    spec = spec.strip()
    if _is_factory_spec(spec) and not _is_zoo_name(spec.partition(":")[0]):
        fn, kwargs = resolve_factory(spec, option="--model")
        label = spec.split(":")[0] + ":" + spec.split(":")[1]
    else:
        from .models import available_models, build_model

        name, _, kw = spec.partition(":")
        kwargs = parse_kwargs(kw, option="--model")
        names = list(available_models())
        if name not in names:
            raise ValueError(f"--model: expected one of {', '.join(names)} or module:factory, got {name!r}")
        label = name

        def fn(**kw):
            return build_model(name, **kw)

        fn.__signature__ = _zoo_signature(name)  # type: ignore[attr-defined]
    derived = _accepted(fn, defaults or {})
    if "in_channels" not in (defaults or {}) and "in_channels" in _accepted(fn, {"in_channels": 0}):
        derived.pop("input_size", None)  # an image model's input_size is its image side, not a 1-D length
    merged = {**derived, **kwargs}
    try:
        model = fn(**merged)
    except (TypeError, ValueError) as e:
        msg = " ".join(str(e).split())
        raise ValueError(f"--model: expected arguments that {label} accepts, got {merged} ({msg})") from None
    if not isinstance(model, nn.Module):
        raise ValueError(f"--model: expected {label} to return a torch.nn.Module, got {type(model).__name__}")
    return model


def _zoo_signature(name: str) -> inspect.Signature:
    """Signature of the zoo's factory for ``name`` (so data-derived defaults are passed only where accepted)."""
    from . import models

    registry = getattr(models, "_REGISTRY", None) or {}
    factory = registry.get(name) if isinstance(registry, Mapping) else None
    if factory is not None:
        try:
            return inspect.signature(factory)
        except (TypeError, ValueError):
            pass
    return inspect.Signature([inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD)])


@dataclasses.dataclass
class DataSet:
    """Tensors of a train/test split plus what models need to know about them.

    Attributes:
        name: the spec it came from.
        x_train, y_train, x_test, y_test: CPU tensors.
        num_classes: number of classes (from the targets when not given).
        input_shape: shape of one input (without the batch dimension).
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    input_shape: tuple[int, ...]

    def subset(self, train: int | None = None, test: int | None = None) -> DataSet:
        """The first ``train`` / ``test`` examples (all where ``None``)."""
        return dataclasses.replace(
            self,
            x_train=self.x_train[:train],
            y_train=self.y_train[:train],
            x_test=self.x_test[:test],
            y_test=self.y_test[:test],
        )

    def batches(self, split: str, batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The ``"train"`` or ``"test"`` split as a list of ``(x, y)`` batches, in order."""
        x, y = (self.x_train, self.y_train) if split == "train" else (self.x_test, self.y_test)
        return [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(x), batch_size)]

    def model_defaults(self) -> dict[str, Any]:
        """Keyword arguments a zoo model may take from the data (used where the factory accepts them)."""
        shape = self.input_shape
        d: dict[str, Any] = {"num_classes": self.num_classes}
        if len(shape) == 1:  # MLP(input_size=...), CNN1D(input_length=...)
            d.update(input_size=shape[0], input_length=shape[0])
        elif len(shape) == 3:  # image models: ToyCNN, VGG, PreResNet, WideResNet take in_channels
            d.update(in_channels=shape[0])
        return d


def _materialize(part: Any, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(part, (tuple, list)) and len(part) == 2 and all(isinstance(t, torch.Tensor) for t in part):
        return part[0], part[1]
    try:
        batches = list(part)
    except TypeError:
        raise ValueError(
            f"--data: expected {what} as an (x, y) pair or an iterable of batches, got {type(part).__name__}"
        ) from None
    if not batches or not all(isinstance(b, (tuple, list)) and len(b) == 2 for b in batches):
        raise ValueError(f"--data: expected {what} as a non-empty iterable of (x, y) batches, got {len(batches)} items")
    return torch.cat([torch.as_tensor(b[0]) for b in batches]), torch.cat([torch.as_tensor(b[1]) for b in batches])


def _from_object(name: str, obj: Any, num_classes: int | None = None) -> DataSet:
    keys = ("x_train", "y_train", "x_test", "y_test")
    if isinstance(obj, Mapping) and all(k in obj for k in keys):
        parts = [obj[k] for k in keys]
    elif all(hasattr(obj, k) for k in keys):
        parts = [getattr(obj, k) for k in keys]
    elif isinstance(obj, (tuple, list)) and len(obj) == 4:
        parts = list(obj)
    elif isinstance(obj, (tuple, list)) and len(obj) == 2:
        (xa, ya), (xb, yb) = _materialize(obj[0], "the train split"), _materialize(obj[1], "the test split")
        parts = [xa, ya, xb, yb]
    else:
        raise ValueError(
            "--data: expected the factory to return x_train/y_train/x_test/y_test (object, dict or 4-tuple) "
            f"or a (train, test) pair, got {type(obj).__name__}"
        )
    try:
        x_tr, y_tr, x_te, y_te = (torch.as_tensor(p) for p in parts)
    except (TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"--data: expected tensors or arrays, got {e}") from None
    if len(x_tr) != len(y_tr) or len(x_te) != len(y_te) or len(x_tr) == 0 or len(x_te) == 0:
        raise ValueError(
            f"--data: expected non-empty splits with as many targets as inputs, got train {len(x_tr)}/{len(y_tr)}, "
            f"test {len(x_te)}/{len(y_te)}"
        )
    if x_tr.is_floating_point() and x_tr.dtype != torch.float32:
        x_tr, x_te = x_tr.float(), x_te.float()
    if num_classes is None:
        num_classes = int(max(int(y_tr.max()), int(y_te.max())) + 1) if not y_tr.is_floating_point() else 1
    return DataSet(
        name,
        x_tr,
        y_tr.long() if not y_tr.is_floating_point() else y_tr,
        x_te,
        y_te.long() if not y_te.is_floating_point() else y_te,
        num_classes,
        tuple(x_tr.shape[1:]),
    )


def resolve_data(spec: str) -> DataSet:
    """Load the data named by ``spec`` (see module docstring) as CPU tensors.

    Raises:
        ValueError: unknown spec, a missing CIFAR directory, an unimportable factory or a factory returning an
            unsupported structure.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"--data: expected mnist1d, cifar10:DIR, cifar100:DIR or module:factory, got {spec!r}")
    spec = spec.strip()
    if spec == "mnist1d":
        from .data import mnist1d

        return _from_object("mnist1d", mnist1d(), 10)
    head, sep, rest = spec.partition(":")
    if head in ("cifar10", "cifar100"):
        if not rest:
            raise ValueError(f"--data: expected {head}:DIR (the directory holding the python pickles), got {spec!r}")
        if not Path(rest).is_dir():
            raise ValueError(f"--data: expected an existing CIFAR directory, got missing '{rest}'")
        from .data import cifar

        n = 10 if head == "cifar10" else 100
        try:
            splits = _call_cifar(cifar, rest, n)
        except (FileNotFoundError, OSError) as e:
            raise ValueError(f"--data: expected the CIFAR-{n} python pickles under '{rest}', got {e}") from None
        except ValueError as e:  # the loader names its own argument (root, ...): the user typed --data
            raise ValueError("--data: " + str(e).partition(": ")[2]) from None
        return _from_object(spec, splits, n)
    if sep:
        fn, kwargs = resolve_factory(spec, option="--data")
        try:
            obj = fn(**kwargs)
        except (TypeError, ValueError) as e:
            raise ValueError(f"--data: expected {spec!r} to return data, got an error ({e})") from None
        return _from_object(spec, obj)
    raise ValueError(f"--data: expected mnist1d, cifar10:DIR, cifar100:DIR or module:factory, got {spec!r}")


def _call_cifar(cifar: Callable[..., Any], root: str, n: int) -> Any:
    params = inspect.signature(cifar).parameters
    if "num_classes" in params:
        return cifar(root, num_classes=n)
    if "classes" in params:
        return cifar(root, classes=n)
    if "name" in params:
        return cifar(root, name=f"cifar{n}")
    return cifar(root)
