"""Shared fixtures: tiny float64 models and data for reference checks, and the device tests run on.

``BASINSCOPE_TEST_DEVICE`` (default ``cpu``; e.g. ``cuda`` or ``cuda:1``) is the device of the :func:`device`
fixture; asking for CUDA where torch sees none stops the run at start-up. The tests that take the fixture (the
core data path: Objective, HVP, Lanczos, the optimizers' steps, the surface grid) build their models and data
there; docs/benchmarks/gpu.md lists the files. ``benchmarks/gpu_check.sh`` runs the suite with ``cuda``.
"""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

# One intra-op thread per test process: the suite runs with one pytest-xdist worker per core, and on a loaded
# 2-core machine two OpenMP threads per process made tiny ops wait for a core (measured ~12 ms per op).
torch.set_num_threads(1)


def resolve_test_device(name: str | None) -> torch.device:
    """The device named by ``BASINSCOPE_TEST_DEVICE`` (``None`` or empty: cpu); CUDA must be available."""
    try:
        dev = torch.device(name or "cpu")
    except RuntimeError:
        msg = f"BASINSCOPE_TEST_DEVICE: expected a torch device such as cpu or cuda, got {name!r}"
        raise pytest.UsageError(msg) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise pytest.UsageError(
            f"BASINSCOPE_TEST_DEVICE: {name!r} asked for, but torch.cuda.is_available() is False on this machine"
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise pytest.UsageError(f"BASINSCOPE_TEST_DEVICE: {name!r}, but torch sees {torch.cuda.device_count()} GPUs")
    return dev


def pytest_configure(config):
    resolve_test_device(os.environ.get("BASINSCOPE_TEST_DEVICE"))  # fail at start-up, not in every test


def pytest_report_header(config):
    return f"basinscope test device: {resolve_test_device(os.environ.get('BASINSCOPE_TEST_DEVICE'))}"


@pytest.fixture(scope="session")
def device() -> torch.device:
    """The device tests build their models and data on (``BASINSCOPE_TEST_DEVICE``, default cpu)."""
    return resolve_test_device(os.environ.get("BASINSCOPE_TEST_DEVICE"))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Never write into the user's cache directory from tests (data sets are cached per session)."""
    cache = tmp_path_factory.getbasetemp() / "basinscope-cache"
    monkeypatch.setenv("BASINSCOPE_CACHE", str(cache))


def tiny_bn_net(seed: int = 0, dropout: float = 0.0, device: torch.device | str = "cpu") -> nn.Module:
    """A float64 MLP with BatchNorm (and optional dropout): 3 -> 5 -> 2, built on the CPU, then moved."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Linear(3, 5), nn.BatchNorm1d(5), nn.Tanh()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(5, 2))
    model = nn.Sequential(*layers).double()
    # non-trivial running statistics so that eval mode is distinguishable from train mode
    with torch.no_grad():
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 1.5)
    return model.to(device)


def tiny_data(n: int = 10, seed: int = 1, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` float64 inputs of size 3 and binary labels, drawn on the CPU (the same on every device), moved."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (n,), generator=g)
    return x.to(device), y.to(device)


def snapshot(model: nn.Module) -> dict:
    """Everything a measurement must not change, for bit-exact comparison."""
    return {
        "params": {n: p.detach().clone() for n, p in model.named_parameters()},
        "buffers": {n: b.detach().clone() for n, b in model.named_buffers()},
        "grads": {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()},
        "training": [m.training for m in model.modules()],
        "requires_grad": {n: p.requires_grad for n, p in model.named_parameters()},
        "ids": [id(p) for p in model.parameters()] + [id(b) for b in model.buffers()],
    }


def assert_same_state(before: dict, after: dict) -> None:
    assert before["training"] == after["training"]
    assert before["requires_grad"] == after["requires_grad"]
    assert before["ids"] == after["ids"]
    for key in ("params", "buffers"):
        assert before[key].keys() == after[key].keys()
        for n in before[key]:
            assert torch.equal(before[key][n], after[key][n]), f"{key} {n} changed"
    for n, g in before["grads"].items():
        if g is None:
            assert after["grads"][n] is None, f"grad {n} appeared"
        else:
            assert torch.equal(g, after["grads"][n]), f"grad {n} changed"
