"""Safe checkpoint loading: weights only, malicious pickles refused without running, clear errors."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
from torch import nn

from basinscope.checkpoint import load_checkpoint_meta, load_into, load_params, load_state_dict, save_checkpoint


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2))


class _Malicious:
    """Unpickling this object would run ``open(marker, "w")`` — creating the marker file."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("layout", ["torch_save_nested", "torch_save_toplevel", "plain_pickle"])
def test_malicious_pickle_refused_and_not_run(tmp_path, layout):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pt"
    evil = _Malicious(str(marker))
    if layout == "torch_save_nested":
        torch.save({"state_dict": _net().state_dict(), "extra": evil}, path)
    elif layout == "torch_save_toplevel":
        torch.save(evil, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(evil, f)
    assert not marker.exists()  # torch.save/pickle.dump do not run __reduce__'s callable
    with pytest.raises(ValueError, match=r"^checkpoint: expected a weights-only file .*refused without running it"):
        load_state_dict(path)
    with pytest.raises(ValueError, match=r"(needs pickled code|a pickle that needs code to load)"):
        load_into(_net(), path)
    assert not marker.exists(), "the pickle's code ran"


def test_message_names_the_refused_callable(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"x": _Malicious(str(tmp_path / "m"))}, path)
    with pytest.raises(ValueError, match=r"it calls \S*open"):
        load_state_dict(path)


@pytest.mark.parametrize("layout", ["raw", "state_dict", "model", "module_prefix", "averaged_model"])
def test_layouts_load_identically(tmp_path, layout):
    src = _net(1)
    sd = src.state_dict()
    path = tmp_path / "w.pt"
    if layout == "raw":
        torch.save(sd, path)
    elif layout == "state_dict":
        torch.save({"state_dict": sd, "epoch": 7, "optimizer": {"lr": 0.1}}, path)
    elif layout == "model":
        torch.save({"model": sd}, path)
    elif layout == "module_prefix":
        torch.save({f"module.{k}": v for k, v in sd.items()}, path)
    else:
        averaged = torch.optim.swa_utils.AveragedModel(src)
        torch.save(averaged.state_dict(), path)
    dst = load_into(_net(2), path)
    for k, v in sd.items():
        assert torch.equal(dst.state_dict()[k], v), k


def test_save_checkpoint_round_trip_with_meta(tmp_path):
    src = _net(3)
    path = save_checkpoint(src, tmp_path / "sub" / "c.pt", meta={"epoch": 4, "method": "swa"})
    assert path.is_file()
    assert load_checkpoint_meta(path) == {"epoch": 4, "method": "swa"}
    loaded = load_state_dict(path)
    assert set(loaded) == set(src.state_dict())
    params = load_params(_net(0), path)
    assert list(params) == [n for n, _ in src.named_parameters()]
    for n, p in src.named_parameters():
        assert torch.equal(params[n], p.detach())


def test_load_params_leaves_model_untouched(tmp_path):
    path = save_checkpoint(_net(5), tmp_path / "c.pt")
    model = _net(0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    load_params(model, path)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"^checkpoint: expected an existing file, got missing '.*nope\.pt'$"):
        load_state_dict(tmp_path / "nope.pt")


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(ValueError, match=r"^checkpoint: expected a file, got a directory"):
        load_state_dict(tmp_path)


def test_not_a_torch_file(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"this is not a checkpoint")
    with pytest.raises(
        ValueError,
        match=r"^checkpoint: expected a complete file written by torch.save, got '.*junk\.pt', which is truncated",
    ):
        load_state_dict(path)


def test_no_state_dict_inside(tmp_path):
    path = tmp_path / "w.pt"
    torch.save({"epoch": 3, "lr": 0.1}, path)
    with pytest.raises(ValueError, match=r"^checkpoint: expected a state_dict .* got dict with keys \['epoch', 'lr'\]"):
        load_state_dict(path)


def test_mismatched_keys(tmp_path):
    path = tmp_path / "w.pt"
    torch.save(nn.Linear(4, 2).state_dict(), path)
    with pytest.raises(ValueError, match=r"^checkpoint: expected the keys of Sequential's state_dict, got \d+ missing"):
        load_into(_net(), path)


def test_mismatched_shapes(tmp_path):
    path = tmp_path / "w.pt"
    other = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 2))
    torch.save(other.state_dict(), path)
    with pytest.raises(ValueError, match=r"^checkpoint\['0.weight'\]: expected shape \(3, 4\), got shape \(5, 4\)"):
        load_into(_net(), path)
    with pytest.raises(ValueError, match=r"expected shape \(3, 4\), got shape \(5, 4\)"):
        load_params(_net(), path)


def test_failed_load_leaves_model_untouched(tmp_path):
    path = tmp_path / "w.pt"
    sd = _net(1).state_dict()
    sd["3.bias"] = torch.zeros(7)
    torch.save(sd, path)
    model = _net(0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"3\.bias"):
        load_into(model, path)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_map_location(tmp_path):
    path = save_checkpoint(_net(), tmp_path / "w.pt")
    sd = load_state_dict(path, map_location="meta")
    assert all(t.device.type == "meta" for t in sd.values())
    assert os.path.getsize(path) > 0
