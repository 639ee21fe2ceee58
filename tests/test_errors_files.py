"""Files: edited results refused, strings that look like numbers kept, failed writes named, no stale leftovers."""

from __future__ import annotations

import errno
import json
import os
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from basinscope.checkpoint import save_checkpoint
from basinscope.results import ParamFiles, remove_stale_temporaries
from basinscope.sharpness.result import SharpnessResult
from basinscope.surface.results import Surface1D, Surface2D


def _sharp(**kw) -> SharpnessResult:
    return SharpnessResult(kind="phi", value=0.25, f0=float("nan"), settings={"eps": float("inf"), **kw})


def _edit(path, fn) -> None:
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


# ---------------------------------------------------------------------------------------------- JSON values
def test_strings_that_spell_non_finite_numbers_stay_strings(tmp_path):
    surf = Surface1D(ts=np.arange(3.0), train_loss=np.ones(3), point_labels=["nan", "inf", "-inf"])
    back = Surface1D.load(surf.save(tmp_path / "s"))
    assert back.point_labels == ["nan", "inf", "-inf"]
    res = _sharp(label="nan", nested={"__float__": "nan"}, values=[float("-inf"), "inf"])
    back = SharpnessResult.load(res.save(tmp_path / "r"))
    assert np.isnan(back.f0) and back.settings["eps"] == float("inf")
    assert back.settings["label"] == "nan" and back.settings["nested"] == {"__float__": "nan"}
    assert back.settings["values"] == [float("-inf"), "inf"]
    # standard JSON: no bare NaN/Infinity in the file
    json.loads((tmp_path / "r.json").read_text(), parse_constant=lambda c: pytest.fail(f"bare {c} in the file"))


def test_files_written_before_the_tagged_encoding_still_load(tmp_path):
    surf = Surface2D(
        alphas=np.arange(2.0), betas=np.arange(2.0), train_loss=np.ones((2, 2)), point_labels=["nan"], seconds=1.0
    )
    surf.save(tmp_path / "old")

    def legacy(doc):
        del doc["format"]
        doc["fields"]["seconds"] = "nan"  # how non-finite floats were written then
        doc["fields"]["settings"] = {"eps": "inf"}
        del doc["manifest"]["kind"], doc["fields"]["kind"]  # a field added later, with a default

    _edit(tmp_path / "old.json", legacy)
    back = Surface2D.load(tmp_path / "old")
    assert np.isnan(back.seconds) and back.settings == {"eps": float("inf")}
    assert back.point_labels == ["nan"]  # a string field keeps its string
    assert back.kind == "plane"


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        pytest.param(
            lambda d: d["fields"].__setitem__("value", "abc"),
            r"^path: expected a saved SharpnessResult whose field 'value' is float, got 'abc' \(the file was edited",
            id="value-string",
        ),
        pytest.param(
            lambda d: d["fields"].__setitem__("kind", 3),
            r"^path: expected a saved SharpnessResult whose field 'kind' is str, got 3",
            id="kind-int",
        ),
        pytest.param(
            lambda d: d["fields"].__setitem__("f_high", True),
            r"field 'f_high' is float \| None, got True",
            id="bool-for-float",
        ),
        pytest.param(
            lambda d: d["fields"].__setitem__("settings", [1]),
            r"field 'settings' is dict\[str, Any\], got list",
            id="settings-list",
        ),
        pytest.param(
            lambda d: d["fields"]["cost"].__setitem__("forwards", "x"),
            r"field 'cost\.forwards' is int, got 'x'",
            id="cost-counter",
        ),
        pytest.param(
            lambda d: d["manifest"].pop("kind"),
            r"^path: expected r\.json to list the fields of SharpnessResult, got missing 'kind'",
            id="manifest-missing",
        ),
        pytest.param(
            lambda d: d["manifest"].__setitem__("extra", "json"),
            r"got unknown 'extra'",
            id="manifest-unknown",
        ),
        pytest.param(
            lambda d: d["manifest"].__setitem__("value", "blob"),
            r"^path: expected r\.json's manifest entry 'value' to be a known kind, got 'blob'",
            id="manifest-kind",
        ),
        pytest.param(
            lambda d: d["manifest"].__setitem__("value", "tensor"),
            r"^path: expected r\.npz to hold the array 'value' listed in the manifest, got none",
            id="manifest-array",
        ),
        pytest.param(
            lambda d: d["fields"].pop("value"),
            r"^path: expected r\.json to hold the value of field 'value', got none",
            id="fields-missing",
        ),
        pytest.param(
            lambda d: d.pop("manifest"),
            r"^path: expected r\.json with 'manifest' and 'fields' entries",
            id="no-manifest",
        ),
    ],
)
def test_edited_result_files_are_refused(tmp_path, edit, match):
    _sharp().save(tmp_path / "r")
    _edit(tmp_path / "r.json", edit)
    with pytest.raises(ValueError, match=match) as info:
        SharpnessResult.load(tmp_path / "r")
    assert "\n" not in str(info.value)


def test_params_list_longer_than_saved_is_refused(tmp_path):
    from basinscope.hessian.results import EigenResult

    vec = {"w": torch.ones(2)}
    res = EigenResult([1.0], [vec], [0.0], True, [3], "LA", "lanczos", "basinscope")
    res.save(tmp_path / "e")
    _edit(tmp_path / "e.json", lambda d: d["manifest"].__setitem__("eigenvectors", "params_list:2"))
    with pytest.raises(ValueError, match=r"^path: expected e\.npz to hold the arrays eigenvectors/1/\* listed"):
        EigenResult.load(tmp_path / "e")


def test_truncated_result_json_is_refused(tmp_path):
    _sharp().save(tmp_path / "r")
    text = (tmp_path / "r.json").read_text()
    (tmp_path / "r.json").write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match=r"^path: expected a saved result, got an unreadable r\.json"):
        SharpnessResult.load(tmp_path / "r")


# ---------------------------------------------------------------------------------------------- failed writes
def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _erofs(*args, **kwargs):
    raise OSError(errno.EROFS, "Read-only file system")


def _eacces(*args, **kwargs):
    raise PermissionError(errno.EACCES, "Permission denied")


WRITERS = [
    pytest.param(lambda p: save_checkpoint(nn.Linear(2, 2), p / "c.pt"), "c.pt", id="save_checkpoint"),
    pytest.param(lambda p: _sharp().save(p / "r"), "r.json", id="Result.save"),
]


@pytest.mark.parametrize(("write", "name"), WRITERS)
@pytest.mark.parametrize(
    ("target", "fault", "exc", "match"),
    [
        pytest.param("os.fsync", _enospc, OSError, r"got a full disk \(No space left on device\)", id="full"),
        pytest.param("tempfile.mkstemp", _erofs, OSError, r"got a read-only file system", id="read-only"),
        pytest.param("tempfile.mkstemp", _eacces, PermissionError, r"got no permission to write there", id="denied"),
    ],
)
def test_failed_writes_name_the_argument_and_the_path(tmp_path, monkeypatch, write, name, target, fault, exc, match):
    import basinscope._atomic as atomic

    module, attr = target.split(".")
    monkeypatch.setattr(getattr(atomic, module), attr, fault)
    with pytest.raises(exc, match=rf"^path: expected a writable location for '.*{name}', {match}") as info:
        write(tmp_path)
    assert info.value.errno in (errno.ENOSPC, errno.EROFS, errno.EACCES)
    assert "\n" not in str(info.value)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # nothing half-written left


@pytest.mark.parametrize(("write", "name"), WRITERS)
def test_writes_under_a_file_name_it(tmp_path, write, name):
    (tmp_path / "f").write_text("x")
    with pytest.raises(
        OSError, match=r"^path: expected a writable location for .*got '.*f' is a file, not a directory"
    ):
        write(tmp_path / "f")


# ---------------------------------------------------------------------------------------------- loading
def test_param_files_on_a_pickled_file_is_one_line(tmp_path):
    files = ParamFiles([], root=tmp_path)
    files.write("a.pt", {"w": torch.ones(2)})
    with open(tmp_path / "b.pt", "wb") as f:
        pickle.dump({"w": np.ones(2)}, f)  # numpy inside: needs pickled code to load
    files.names.append("b.pt")
    assert files[0]["w"].tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match=r"^ParamFiles\[1\]: expected a weights-only file") as info:
        files[1]
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------------- stale temporaries
def test_stale_temporaries_of_a_checkpoint_are_removed_on_start(tmp_path):
    from basinscope.optim import train

    ckpt = tmp_path / "checkpoint.pt"
    stale = tmp_path / ".checkpoint.pt.k1ll3d.tmp"  # what a SIGKILL during the write leaves
    stale.write_bytes(b"partial")
    other = tmp_path / ".final.pt.x1.tmp"  # another file's temporary is not this run's to remove
    other.write_bytes(b"x")
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    train("sgd", model, (x, y), budget=4, batch_size=8, checkpoint=ckpt, loss_fn=F.cross_entropy, progress=False)
    assert ckpt.is_file() and not stale.exists() and other.exists()
    assert remove_stale_temporaries(tmp_path / "missing-dir" / "c.pt") == []


def test_remove_stale_temporaries_ignores_links_and_directories(tmp_path):
    target = tmp_path / "keep.txt"
    target.write_text("keep")
    (tmp_path / ".c.pt.a.tmp").symlink_to(target)
    os.mkdir(tmp_path / ".c.pt.b.tmp")
    (tmp_path / ".c.pt.c.tmp").write_bytes(b"")
    removed = remove_stale_temporaries(tmp_path / "c.pt")
    assert [p.name for p in removed] == [".c.pt.c.tmp"]
    assert target.read_text() == "keep" and (tmp_path / ".c.pt.b.tmp").is_dir()
