"""The helpers both experiment run stores share: fingerprints and file names stay those of the runs on disk."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from basinscope.experiments._run_files import copy_state, fingerprint, metrics_doc, partial_path


def test_fingerprint_is_the_stored_runs_hash() -> None:
    spec = {"model": "cnn1d", "batch_size": 128, "run": "pre-sgd", "seed": 0, "iterations": 100, "lr_high": 0.1}
    spec["lr_low"] = 0.01
    # the value the SWA store wrote its runs under before the stores shared this helper (sorted JSON, SHA-256)
    assert fingerprint(spec) == "d960e9e9a9a7c4ba"
    reordered = dict(reversed(list(spec.items())))
    assert fingerprint(reordered) == hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    assert fingerprint({**spec, "seed": 1}) != fingerprint(spec)


def test_partial_path_flattens_slashes_and_creates_the_folder(tmp_path) -> None:
    p = partial_path(tmp_path, "seed0/pre-sgd-L100")
    assert p == tmp_path / "partial" / "seed0__pre-sgd-L100.pt"
    assert p.parent.is_dir() and not p.exists()
    assert partial_path(tmp_path, "cnn1d__SGD__seed0__abc") == tmp_path / "partial" / "cnn1d__SGD__seed0__abc.pt"


@pytest.mark.parametrize("cpu", [False, True])
def test_copy_state_is_a_detached_copy(cpu: bool) -> None:
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    state = copy_state(net, cpu=cpu)
    assert list(state) == list(net.state_dict())
    for k, v in net.state_dict().items():
        assert torch.equal(state[k], v) and not state[k].requires_grad
        assert state[k].data_ptr() != v.data_ptr()
    with torch.no_grad():
        net[0].weight.add_(1.0)
    assert not torch.equal(state["0.weight"], net[0].weight)


def test_metrics_doc_names_test_and_train() -> None:
    doc = metrics_doc({"loss": 0.5, "accuracy": 0.9}, {"loss": 0.25, "accuracy": 0.95})
    assert doc == {"test_accuracy": 0.9, "test_loss": 0.5, "train_accuracy": 0.95, "train_loss": 0.25}
