"""Bad input through the command line: one line naming the option, checked before work starts, nothing left over."""

from __future__ import annotations

import collections
import errno
import pickle

import pytest
import torch

from basinscope.cli import main
from tests.test_cli import DATA, MODEL, make_data, make_net


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def bad_labels():
    """MNIST-1D-shaped data whose training targets run past the 10 classes; used as --data."""
    d = make_data()
    d["y_train"] = d["y_train"] + 5
    return d


def _run(capsys, *argv: str) -> tuple[int, str]:
    rc = main([*argv, "-q"])
    err = capsys.readouterr().err.strip()
    return rc, err


def _one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


# ---------------------------------------------------------------------------------------------- --out
def test_out_an_existing_file(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    rc, err = _run(capsys, "toy", "salr", "--out", str(tmp_path / "f"))
    assert rc == 2
    assert "--out: expected a directory to write into, got the existing file" in _one_line(err)


def test_out_under_a_file(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    rc, err = _run(capsys, "toy", "salr", "--out", str(tmp_path / "f" / "run"))
    assert rc == 2 and "--out: expected a directory to write into, got '" in _one_line(err)
    assert "under the file" in err


def _erofs(*args, **kwargs):
    raise OSError(errno.EROFS, "Read-only file system")


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize(
    ("target", "fault", "match"),
    [
        pytest.param("tempfile.mkstemp", _erofs, "got a read-only file system", id="read-only"),
        pytest.param("os.fsync", _enospc, "got a full disk", id="full-on-write"),
        pytest.param(
            "shutil.disk_usage",
            lambda p: collections.namedtuple("usage", "total used free")(100, 100, 0),
            "got a full disk (0 bytes free)",
            id="full-by-space",
        ),
    ],
)
def test_out_unwritable_is_refused_before_work(tmp_path, capsys, monkeypatch, target, fault, match):
    import basinscope._outdir as outdir

    module, attr = target.split(".")
    monkeypatch.setattr(getattr(outdir, module), attr, fault)
    called = []
    monkeypatch.setattr("basinscope.workflows.toy_run", lambda *a, **k: called.append(1))
    out = tmp_path / "new" / "run"
    rc, err = _run(capsys, "toy", "salr", "--out", str(out))
    assert rc == 2 and not called
    assert f"--out: expected a writable location for '{out}', {match}" in _one_line(err)
    assert not (tmp_path / "new").exists()  # the directories made for the probe are gone again


def test_failed_run_leaves_no_empty_out(tmp_path, capsys):
    out = tmp_path / "a" / "b"
    rc, err = _run(
        capsys, "train", "sgd", "--model", MODEL, "--data", "tests.test_errors_cli:bad_labels", "--out", str(out)
    )
    assert rc == 2
    assert "train_data: expected class-index targets in [0, 9] for a model with 10 outputs, got targets from 5" in err
    assert not (tmp_path / "a").exists()


def test_failed_run_keeps_an_existing_out(tmp_path, capsys):
    rc, _ = _run(
        capsys, "train", "sgd", "--model", MODEL, "--data", "tests.test_errors_cli:bad_labels", "--out", str(tmp_path)
    )
    assert rc == 2 and tmp_path.is_dir()


# ---------------------------------------------------------------------------------------------- --init, --data
def test_init_bad_files_name_init(tmp_path, capsys):
    base = ["train", "sgd", "--model", MODEL, "--data", DATA, "--out", str(tmp_path / "o"), "--budget", "4"]
    (tmp_path / "cut.pt").write_bytes(b"PK\x03\x04 cut")
    with open(tmp_path / "code.pt", "wb") as f:
        pickle.dump({"w": collections.OrderedDict}, f)
    torch.save({"other.weight": torch.ones(1)}, tmp_path / "keys.pt")
    for name, match in (
        ("missing.pt", "--init: expected an existing file, got missing"),
        ("cut.pt", "--init: expected a complete file written by torch.save"),
        ("code.pt", "--init: expected a weights-only file"),
        ("keys.pt", "--init: expected the keys of Sequential's state_dict"),
    ):
        rc, err = _run(capsys, *base, "--init", str(tmp_path / name))
        assert rc == 2 and match in _one_line(err), err
    assert not (tmp_path / "o").exists()


def test_data_cifar_problems_name_data(tmp_path, capsys):
    for spec, match in (
        (f"cifar10:{tmp_path / 'missing'}", "--data: expected an existing CIFAR directory, got missing"),
        (f"cifar10:{tmp_path}", "--data: expected CIFAR-10 file 'data_batch_1'"),
    ):
        rc, err = _run(capsys, "train", "sgd", "--model", MODEL, "--data", spec, "--out", str(tmp_path / "o"))
        assert rc == 2 and match in _one_line(err), err


def test_resolution_too_large_is_refused_before_work(tmp_path, capsys):
    ckpt = tmp_path / "w.pt"
    torch.save(make_net().state_dict(), ckpt)
    rc, err = _run(
        capsys,
        "surface",
        "random",
        str(ckpt),
        "--model",
        MODEL,
        "--data",
        DATA,
        "--resolution",
        "5000",
        "--out",
        str(tmp_path / "o"),
    )
    assert rc == 2
    assert "resolution: expected at most 4194304 grid points" in _one_line(err) and "5000 x 5000" in err


# ---------------------------------------------------------------------------------------------- diagnose output
@pytest.fixture(scope="module")
def diagnosis():
    from basinscope.diagnose import diagnose

    d = make_data()
    return diagnose(make_net(), (d["x_train"], d["y_train"]), quick=True, surfaces=False, density=False)


def test_diagnose_full_disk_at_the_metrics_leaves_no_metrics(tmp_path, monkeypatch, diagnosis):
    import basinscope.report.json as report_json
    from basinscope.diagnose import write_diagnosis

    (tmp_path / "metrics.json").write_text("{}")  # an earlier diagnosis's numbers
    monkeypatch.setattr(report_json, "atomic_write_bytes", _enospc)
    with pytest.raises(OSError, match="No space left"):
        write_diagnosis(diagnosis, tmp_path)
    assert (tmp_path / "report.html").is_file() and not (tmp_path / "metrics.json").exists()


def test_diagnose_full_disk_at_the_report_leaves_neither(tmp_path, monkeypatch, diagnosis):
    import basinscope.report.html as report_html
    from basinscope.diagnose import write_diagnosis

    write_diagnosis(diagnosis, tmp_path)
    monkeypatch.setattr(report_html, "atomic_write_bytes", _enospc)
    with pytest.raises(OSError, match="No space left"):
        write_diagnosis(diagnosis, tmp_path)
    assert not (tmp_path / "report.html").exists() and not (tmp_path / "metrics.json").exists()


def test_diagnose_writes_both_when_it_can(tmp_path, diagnosis):
    from basinscope.diagnose import write_diagnosis
    from basinscope.report import referenced_paths

    paths = write_diagnosis(diagnosis, tmp_path)
    assert paths["json"].is_file() and "metrics.json" in referenced_paths(paths["report"])
