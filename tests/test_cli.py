"""The ``basinscope`` command line, called in-process (``basinscope.cli.main``) and once as the installed script."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from basinscope.cli import main

SUBCOMMANDS = [
    ["demo"],
    ["train"],
    ["diagnose"],
    ["surface"],
    ["surface", "plane"],
    ["surface", "line"],
    ["surface", "random"],
    ["surface", "curve"],
    ["toy"],
    ["reproduce"],
]


# ---------------------------------------------------------------------------------------------- factories
def make_net(hidden: int = 8) -> nn.Module:
    """A tiny classifier for MNIST-1D-shaped data (40 inputs, 10 classes); used as --model tests.test_cli:make_net."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(40, hidden), nn.Tanh(), nn.Linear(hidden, 10))


def make_data():
    """Small MNIST-1D-shaped random data; used as --data tests.test_cli:make_data."""
    g = torch.Generator().manual_seed(0)
    return {
        "x_train": torch.randn(96, 40, generator=g),
        "y_train": torch.randint(0, 10, (96,), generator=g),
        "x_test": torch.randn(48, 40, generator=g),
        "y_test": torch.randint(0, 10, (48,), generator=g),
    }


def make_bn_net(hidden: int = 8) -> nn.Module:
    """make_net with a BatchNorm layer (buffers); used as --model tests.test_cli:make_bn_net."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(40, hidden), nn.BatchNorm1d(hidden), nn.Tanh(), nn.Linear(hidden, 10))


MODEL = "tests.test_cli:make_net"
DATA = "tests.test_cli:make_data"


@pytest.fixture(autouse=True)
def _one_thread():
    """The tiny models here gain nothing from two threads, and lose much when the machine is loaded."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, pattern: str) -> None:
    import re

    assert code != 0
    # as a terminal shows it: a progress bar redrawn with carriage returns and cleared leaves nothing
    lines = [ln.rsplit("\r", 1)[-1].strip() for ln in err.split("\n")]
    lines = [ln for ln in lines if ln]
    assert len(lines) == 1, err
    assert lines[0].startswith("basinscope: error: "), err
    assert re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in err


# ---------------------------------------------------------------------------------------------- help
def test_top_level_help(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for sub in ("demo", "train", "diagnose", "surface", "toy", "reproduce"):
        assert sub in out


@pytest.mark.parametrize("argv", SUBCOMMANDS, ids=lambda a: " ".join(a))
def test_subcommand_help(capsys, argv):
    code, out, _ = run(capsys, *argv, "--help")
    assert code == 0
    assert out.startswith("usage: basinscope " + " ".join(argv))


def test_no_command_prints_help_and_fails(capsys):
    code, _, err = run(capsys)
    assert code == 2 and "usage: basinscope" in err


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("basinscope ")


# ---------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("argv", "pattern"),
    [
        (["frobnicate"], r"invalid choice: 'frobnicate'"),
        (["demo", "--seed", "x"], r"argument --seed: invalid int value"),
        (["train"], r"required"),
        (["train", "nosuchmethod", "--model", "mlp", "--data", "mnist1d"], r"argument METHOD: invalid choice"),
        (["train", "sgd", "--model", "mlp", "--data", "mnist1d", "--budget", "0"], r"--budget: expected a positive"),
        (["train", "sgd", "--model", "mlp", "--data", "mnist1d", "--lr", "-1"], r"--lr: expected a finite positive"),
        (["train", "sgd", "--model", "mlp", "--data", "mnist1d", "--opt", "c2"], r"--opt: expected keyword arguments"),
        (["diagnose"], r"required: CHECKPOINT"),
        (["diagnose", "c.pt", "--model", "mlp"], r"required: --data"),
        (["diagnose", "c.pt", "--model", "mlp", "--data", "mnist1d", "--epsilon", "0"], r"--epsilon: expected"),
        (["diagnose", "c.pt", "--model", "mlp", "--data", "mnist1d", "--span", "nan"], r"--span: expected"),
        (["diagnose", "c.pt", "--model", "mlp", "--data", "mnist1d", "--top-k", "0"], r"--top-k: expected a positive"),
        (["surface"], r"expected a kind \(plane, line, random or curve\)"),
        (
            ["surface", "plane", "a.pt", "b.pt", "--model", "mlp", "--data", "mnist1d"],
            r"checkpoints: expected 3 checkpoint files for a plane through checkpoints, got 2",
        ),
        (["surface", "curve", "a.pt", "--model", "mlp", "--data", "mnist1d"], r"CHECKPOINT"),
        (
            ["surface", "line", "a.pt", "b.pt", "--model", "m", "--data", "d", "--range", "1:-1"],
            r"--range: expected LO:HI",
        ),
        (
            ["surface", "line", "a.pt", "b.pt", "--model", "m", "--data", "d", "--range", "0:x"],
            r"--range: expected LO:HI",
        ),
        (
            ["surface", "line", "a.pt", "b.pt", "--model", "m", "--data", "d", "--points", "1"],
            r"--points: expected an int",
        ),
        (["surface", "random", "a.pt", "--model", "m", "--data", "d", "--resolution", "1"], r"--resolution: expected"),
        (["surface", "random", "a.pt", "--model", "m", "--data", "d", "--span", "-2"], r"--span: expected"),
        (["toy", "nosuchdemo"], r"invalid choice: 'nosuchdemo'"),
        (["toy", "--format", "gif"], r"invalid choice: 'gif'"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_bad_arguments_give_one_line_errors(capsys, argv, pattern):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert_one_line_error(code, err, pattern)


def _save_net(path, hidden: int = 8):
    torch.save(make_net(hidden).state_dict(), path)
    return str(path)


def test_diagnose_missing_checkpoint(capsys, tmp_path):
    code, _, err = run(capsys, "diagnose", str(tmp_path / "none.pt"), "--model", MODEL, "--data", DATA)
    assert_one_line_error(code, err, r"checkpoint: expected an existing file, got missing '.*none\.pt'")


def test_diagnose_unknown_model(capsys, tmp_path):
    ckpt = _save_net(tmp_path / "c.pt")
    code, _, err = run(capsys, "diagnose", ckpt, "--model", "nosuchnet", "--data", DATA, "--out", str(tmp_path))
    assert_one_line_error(code, err, r"--model: expected one of .*mlp.* or module:factory, got 'nosuchnet'")


@pytest.mark.parametrize(
    ("model", "pattern"),
    [
        ("no_such_module_xyz:make", r"--model: expected an importable module, got 'no_such_module_xyz'"),
        ("tests.test_cli:nothing_here", r"--model: expected 'tests.test_cli' to define 'nothing_here'"),
        ("tests.test_cli:MODEL", r"--model: expected 'tests.test_cli:MODEL' to name a callable"),
        ("tests.test_cli:make_data", r"--model: expected tests.test_cli:make_data to return a torch.nn.Module"),
        ("tests.test_cli:make_net:width=3", r"--model: expected arguments that tests.test_cli:make_net accepts"),
        ("mlp:oops", r"--model: expected (one of|keyword arguments)"),
    ],
)
def test_bad_model_specs(capsys, tmp_path, model, pattern):
    ckpt = _save_net(tmp_path / "c.pt")
    code, _, err = run(capsys, "diagnose", ckpt, "--model", model, "--data", DATA, "--out", str(tmp_path))
    assert_one_line_error(code, err, pattern)


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        ("imagenet", r"--data: expected mnist1d, cifar10:DIR, cifar100:DIR or module:factory, got 'imagenet'"),
        ("cifar10", r"--data: expected cifar10:DIR \(the directory holding the python pickles\), got .cifar10."),
        ("cifar10:/no/such/dir", r"--data: expected an existing CIFAR directory, got missing '/no/such/dir'"),
        ("tests.test_cli:make_net", r"--data: expected the factory to return"),
    ],
)
def test_bad_data_specs(capsys, tmp_path, data, pattern):
    ckpt = _save_net(tmp_path / "c.pt")
    code, _, err = run(capsys, "diagnose", ckpt, "--model", MODEL, "--data", data, "--out", str(tmp_path))
    assert_one_line_error(code, err, pattern)


def test_diagnose_mismatched_checkpoint(capsys, tmp_path):
    ckpt = _save_net(tmp_path / "c.pt", hidden=5)
    code, _, err = run(capsys, "diagnose", ckpt, "--model", MODEL, "--data", DATA, "--out", str(tmp_path))
    assert_one_line_error(code, err, r"checkpoint\['0.weight'\]: expected shape \(8, 40\), got shape \(5, 40\)")


def test_diagnose_model_that_does_not_fit_the_data(capsys, tmp_path):
    from basinscope.models import build_model

    ckpt = tmp_path / "cnn.pt"
    torch.save(build_model("toy_cnn").state_dict(), ckpt)
    code, _, err = run(capsys, "diagnose", str(ckpt), "--model", "toy_cnn", "--data", DATA, "--out", str(tmp_path))
    assert code == 2  # bad input, named on the first evaluation
    assert_one_line_error(code, err, r"data: expected inputs the model accepts, got inputs of shape .*conv2d")


def test_diagnose_refuses_malicious_checkpoint_without_running_it(capsys, tmp_path):
    marker = tmp_path / "PWNED"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    ckpt = tmp_path / "evil.pt"
    torch.save({"state_dict": make_net().state_dict(), "hook": Evil()}, ckpt)
    code, _, err = run(capsys, "diagnose", str(ckpt), "--model", MODEL, "--data", DATA, "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, r"needs pickled code to load .* refused without running it")
    assert not marker.exists()
    assert not (tmp_path / "o").exists()


def test_surface_missing_checkpoint(capsys, tmp_path):
    a = _save_net(tmp_path / "a.pt")
    code, _, err = run(capsys, "surface", "line", a, str(tmp_path / "b.pt"), "--model", MODEL, "--data", DATA)
    assert_one_line_error(code, err, r"checkpoint: expected an existing file, got missing '.*b\.pt'")


def test_surface_duplicate_points(capsys, tmp_path):
    a = _save_net(tmp_path / "a.pt")
    code, _, err = run(
        capsys,
        "surface",
        "plane",
        a,
        a,
        a,
        "--model",
        MODEL,
        "--data",
        DATA,
        "--out",
        str(tmp_path / "s"),
        "--no-progress",
    )
    assert_one_line_error(code, err, r"w2: expected weights different from w1")


# ---------------------------------------------------------------------------------------------- working paths
def test_diagnose_end_to_end_json(capsys, tmp_path, monkeypatch):
    """Run from the output's parent with a relative ``--out`` (as a user types it)."""
    _save_net(tmp_path / "c.pt")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
    out = tmp_path / "diag"
    code, stdout, err = run(
        capsys,
        "diagnose",
        "c.pt",
        "--model",
        MODEL,
        "--data",
        DATA,
        "--out",
        "diag",
        "--quick",
        "--json",
        "--resolution",
        "5",
        "--no-progress",
    )
    assert code == 0, err
    metrics = json.loads(stdout)
    for key in ("phi", "S", "S_hat"):
        assert isinstance(metrics["sharpness"][key], float)
    assert metrics["sharpness"]["S"] >= 0
    assert len(metrics["hessian"]["top_eigenvalues"]) == 3
    assert metrics["train"]["samples"] == 96 and metrics["test"]["samples"] == 48
    assert (out / "report.html").is_file() and (out / "metrics.json").is_file()
    assert json.loads((out / "metrics.json").read_text())["sharpness"]["phi"] == metrics["sharpness"]["phi"]
    from basinscope.report import referenced_paths

    refs = referenced_paths(out / "report.html")
    assert any(r.endswith("density.png") for r in refs)
    assert all((out / r).is_file() for r in refs)


def test_diagnose_matches_python_api(capsys, tmp_path):
    """The CLI's numbers are those of the Python API on the same model and data."""
    from basinscope.diagnose import diagnose

    ckpt = _save_net(tmp_path / "c.pt")
    code, stdout, _ = run(
        capsys,
        "diagnose",
        ckpt,
        "--model",
        MODEL,
        "--data",
        DATA,
        "--out",
        str(tmp_path / "d"),
        "--quick",
        "--json",
        "--no-surface",
        "--no-density",
        "--batch-size",
        "32",
    )
    assert code == 0
    d = make_data()
    batches = [(d["x_train"][i : i + 32], d["y_train"][i : i + 32]) for i in range(0, 96, 32)]
    ref = diagnose(make_net(), batches, (d["x_test"], d["y_test"]), quick=True, surfaces=False, density=False)
    got = json.loads(stdout)
    assert got["sharpness"]["S_hat"] == pytest.approx(ref.metrics["sharpness"]["S_hat"], rel=1e-5)
    assert got["hessian"]["top_eigenvalues"] == pytest.approx(ref.metrics["hessian"]["top_eigenvalues"], rel=1e-4)
    assert got["test"]["accuracy"] == ref.metrics["test"]["accuracy"]


def test_surface_line_and_random(capsys, tmp_path):
    gen = torch.Generator().manual_seed(1)  # own generator: building a model reseeds the global one
    a = _save_net(tmp_path / "a.pt")
    other = make_net()
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
    b = tmp_path / "b.pt"
    torch.save(other.state_dict(), b)
    out = tmp_path / "line"
    code, stdout, err = run(
        capsys,
        "surface",
        "line",
        a,
        str(b),
        "--model",
        MODEL,
        "--data",
        DATA,
        "--out",
        str(out),
        "--points",
        "5",
        "--json",
        "--no-progress",
    )
    assert code == 0, err
    summary = json.loads(stdout)["summary"]
    assert summary["kind"] == "line" and summary["train_loss"]["min"] > 0
    for name in ("surface.npz", "surface.json", "surface.png", "surface.html"):
        assert (out / name).stat().st_size > 0
    c = tmp_path / "c.pt"
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
    torch.save(other.state_dict(), c)
    out3 = tmp_path / "plane"
    code, stdout, err = run(
        capsys,
        "surface",
        "plane",
        a,
        str(b),
        str(c),
        "--model",
        MODEL,
        "--data",
        DATA,
        "--out",
        str(out3),
        "--resolution",
        "3",
        "--json",
        "--no-progress",
    )
    assert code == 0, err
    assert json.loads(stdout)["summary"]["labels"][:3] == ["a", "b", "c"]
    from basinscope.surface import Surface2D

    plane = Surface2D.load(out3 / "surface")
    assert plane.test_error is not None and np.isfinite(plane.train_loss).all()
    out2 = tmp_path / "random"
    code, _, err = run(
        capsys,
        "surface",
        "random",
        a,
        "--model",
        MODEL,
        "--data",
        DATA,
        "--out",
        str(out2),
        "--resolution",
        "3",
        "--no-progress",
    )
    assert code == 0, err
    assert (out2 / "surface.png").is_file()


TRAIN = ["--model", MODEL, "--data", DATA, "--budget", "30", "--batch-size", "16", "--no-progress"]


@pytest.mark.parametrize("method", ["sgd", "swa", "salr-sgd", "sam"])
def test_train_writes_final_weights_and_history(capsys, tmp_path, method):
    out = tmp_path / method
    opt = ["--opt", "c=5"] if method == "swa" else ["--opt", "c=2,n_descent=2,n_ascent=2"] if "salr" in method else []
    code, stdout, err = run(capsys, "train", method, *TRAIN, "--out", str(out), "--json", *opt)
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["method"] == method and 0 < summary["gradient_calls"] <= 30
    assert 0 <= summary["test"]["accuracy"] <= 1
    from basinscope.checkpoint import load_into

    net = load_into(make_net(), out / "final.pt")
    assert not torch.equal(net[0].weight, make_net()[0].weight)  # trained
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == summary["iterations"]


def test_train_resume_equals_uninterrupted(capsys, tmp_path):
    """A run stopped mid-way (here by a callback raising) and resumed with --resume ends with the same weights."""
    from basinscope.checkpoint import load_state_dict
    from basinscope.optim import train

    args = ["salr-sgd", *TRAIN, "--checkpoint-every", "2", "--opt", "c=2,n_descent=2,n_ascent=2"]
    assert run(capsys, "train", *args, "--out", str(tmp_path / "full"))[0] == 0

    def stop(it, info):
        if it == 5:
            raise KeyboardInterrupt

    d = make_data()
    with pytest.raises(KeyboardInterrupt):
        train(
            "salr-sgd",
            make_net(),
            (d["x_train"], d["y_train"]),
            test_data=(d["x_test"], d["y_test"]),
            budget=30,
            batch_size=16,
            seed=0,
            checkpoint=tmp_path / "cut" / "checkpoint.pt",
            checkpoint_every=2,
            progress=False,
            callback=stop,
            c=2,
            n_descent=2,
            n_ascent=2,
        )
    code, _, err = run(capsys, "train", *args, "--out", str(tmp_path / "cut"), "--resume")
    assert code == 0, err
    a, b = load_state_dict(tmp_path / "full" / "final.pt"), load_state_dict(tmp_path / "cut" / "final.pt")
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_train_refuses_to_overwrite_without_resume(capsys, tmp_path):
    assert run(capsys, "train", "sgd", *TRAIN, "--out", str(tmp_path))[0] == 0
    code, _, err = run(capsys, "train", "sgd", *TRAIN, "--out", str(tmp_path))
    assert_one_line_error(code, err, r"--out: expected a directory without a previous run's checkpoint.pt")


def test_train_swa_streams_samples_usable_by_surface(capsys, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = run(capsys, "train", "dswa", *TRAIN, "--out", str(out), "--opt", "c=2", "--json")
    assert code == 0, err
    summary = json.loads(stdout)
    samples = out / "samples"
    names = sorted(p.name for p in samples.iterdir())
    n = len(summary["samples"]["samples"])
    assert n >= 3 and summary["samples"]["rounds"] == ["round_0.pt", "round_1.pt"]
    assert names == ["round_0.pt", "round_1.pt"] + [f"sample_{i:05d}.pt" for i in range(n)]
    from basinscope.checkpoint import load_state_dict

    # the last round's average is the final model's weights
    final, last = load_state_dict(out / "final.pt"), load_state_dict(samples / "round_1.pt")
    assert last.keys() == {n for n, _ in make_net().named_parameters()}
    assert all(torch.equal(final[k], last[k]) for k in last)
    pts = [str(samples / n) for n in ("sample_00000.pt", "sample_00002.pt", "round_1.pt")]
    args = ["--model", MODEL, "--data", DATA, "--resolution", "3", "--no-progress"]
    code, _, err = run(capsys, "surface", "plane", *pts, *args, "--out", str(tmp_path / "plane"))
    assert code == 0, err
    assert (tmp_path / "plane" / "surface.npz").is_file()


def test_surface_through_parameter_only_samples_of_a_batchnorm_model(capsys, tmp_path):
    bn = "tests.test_cli:make_bn_net"
    out = tmp_path / "run"
    train_args = ["--model", bn, "--data", DATA, "--budget", "30", "--batch-size", "16", "--no-progress"]
    code, _, err = run(capsys, "train", "swa", *train_args, "--out", str(out), "--opt", "c=2")
    assert code == 0, err
    assert re.search(r"SWA samples: \d+ \+ 1 round averages in .*samples", err)
    pts = [str(out / "samples" / f"sample_{i:05d}.pt") for i in (0, 2, 4)]
    args = ["--model", bn, "--data", DATA, "--resolution", "3", "--no-progress"]
    code, _, err = run(capsys, "surface", "plane", *pts, *args, "--out", str(tmp_path / "a"))
    assert_one_line_error(
        code, err, r"checkpoints: expected full state_dicts with the model's buffers, or --recompute-bn"
    )
    assert not (tmp_path / "a").exists()
    code, _, err = run(capsys, "surface", "plane", *pts, *args, "--recompute-bn", "--out", str(tmp_path / "b"))
    assert code == 0, err
    assert (tmp_path / "b" / "surface.png").is_file()


def test_train_bad_option(capsys, tmp_path):
    code, _, err = run(capsys, "train", "sgd", *TRAIN, "--out", str(tmp_path), "--opt", "rho=0.1")
    assert_one_line_error(code, err, r"options of 'sgd': expected names among .*, got unknown rho")


def test_toy_salr(capsys, tmp_path):
    code, stdout, err = run(capsys, "toy", "salr", "--out", str(tmp_path), "--format", "png", "--json")
    assert code == 0, err
    assert json.loads(stdout)["summary"]["salr"]["steps"] > 0
    assert (tmp_path / "toy_salr.png").stat().st_size > 1000


# ---------------------------------------------------------------------------------------------- installed script
def _console_script() -> str | None:
    """The installed script: beside the running interpreter (a venv used without activation) or on PATH."""
    beside = Path(sys.executable).parent / "basinscope"
    return str(beside) if beside.is_file() else shutil.which("basinscope")


@pytest.mark.skipif(_console_script() is None, reason="the console script 'basinscope' is not installed")
def test_installed_console_script(tmp_path):
    exe = _console_script()
    proc = subprocess.run([exe, "toy", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "usage: basinscope toy" in proc.stdout
    proc = subprocess.run(
        [exe, "diagnose", str(tmp_path / "none.pt"), "--model", "mlp", "--data", "mnist1d"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("basinscope: error: checkpoint: expected an existing file")
    assert "Traceback" not in proc.stderr


def test_module_entry_point():
    proc = subprocess.run(
        [sys.executable, "-m", "basinscope.cli", "surface", "--help"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and "usage: basinscope surface" in proc.stdout


# ---------------------------------------------------------------------------------------------- robustness
THREADS_SEEN: list[int] = []


def make_net_recording_threads(hidden: int = 8) -> nn.Module:
    """make_net that records torch's thread setting when the command builds it."""
    THREADS_SEEN.append(torch.get_num_threads())
    return make_net(hidden)


def make_net_raising() -> nn.Module:
    """A factory failing with an error no layer maps (stands for a bug or an unforeseen input)."""
    raise KeyError("lookup inside the factory")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("command", ["diagnose", "surface", "train"])
def test_device_cuda_without_cuda_is_a_one_line_usage_error(capsys, tmp_path, command):
    a = _save_net(tmp_path / "a.pt")
    argv = {
        "diagnose": ["diagnose", a],
        "surface": ["surface", "line", a, a],
        "train": ["train", "sgd"],
    }[command]
    code, _, err = run(
        capsys, *argv, "--model", MODEL, "--data", DATA, "--device", "cuda", "--out", str(tmp_path / "o")
    )
    assert code == 2
    assert_one_line_error(
        code,
        err,
        r"^basinscope: error: --device: cuda is not available on this machine "
        r"\(torch.cuda.is_available\(\) is False\)$",
    )
    assert not (tmp_path / "o").exists()


def test_threads_applied_during_the_command_and_restored(capsys, tmp_path):
    a = _save_net(tmp_path / "a.pt")
    torch.set_num_threads(3)
    THREADS_SEEN.clear()
    model = "tests.test_cli:make_net_recording_threads"
    args = ["--data", DATA, "--quick", "--no-surface", "--no-density", "--no-progress", "--out", str(tmp_path / "o")]
    code, _, err = run(capsys, "diagnose", a, "--model", model, *args, "--threads", "2")
    assert code == 0, err
    assert THREADS_SEEN == [2] and torch.get_num_threads() == 3
    code, _, err = run(capsys, "diagnose", a, "--model", model, *args)  # default: one thread
    assert code == 0, err
    assert THREADS_SEEN == [2, 1] and torch.get_num_threads() == 3
    code, _, err = run(capsys, "diagnose", a, "--model", "tests.test_cli:make_net_raising", *args, "--threads", "2")
    assert code == 1 and torch.get_num_threads() == 3  # restored on error too


@pytest.mark.parametrize("argv", SUBCOMMANDS[:1] + SUBCOMMANDS[4:], ids=lambda a: " ".join(a))
def test_every_command_takes_threads(capsys, argv):
    code, out, _ = run(capsys, *argv, "--help")
    assert code == 0 and "--threads N" in out


def test_unexpected_error_is_one_line_with_a_debug_hint(capsys, tmp_path):
    a = _save_net(tmp_path / "a.pt")
    code, _, err = run(capsys, "diagnose", a, "--model", "tests.test_cli:make_net_raising", "--data", DATA)
    assert code == 1
    assert_one_line_error(
        code, err, r"KeyError: 'lookup inside the factory' \(set BASINSCOPE_DEBUG=1 for a traceback\)"
    )


@pytest.mark.parametrize(
    "damage",
    [lambda b: b[: len(b) // 2], lambda b: b"", lambda b: b"garbage\n"],
    ids=["truncated", "empty", "garbage"],
)
def test_corrupt_checkpoints_give_one_line_errors(capsys, tmp_path, damage):
    a = Path(_save_net(tmp_path / "a.pt"))
    a.write_bytes(damage(a.read_bytes()))
    code, _, err = run(capsys, "diagnose", str(a), "--model", MODEL, "--data", DATA, "--out", str(tmp_path / "o"))
    assert code == 2
    pattern = r"checkpoint: expected a (complete|weights-only) file written by torch.save, got '.*a\.pt', which "
    pattern += r".*(truncated|corrupt)"
    assert_one_line_error(code, err, pattern)


def test_corrupt_resume_checkpoint_gives_one_line_error(capsys, tmp_path):
    out = tmp_path / "run"
    args = [*TRAIN, "--out", str(out), "--checkpoint-every", "2"]
    code, _, err = run(capsys, "train", "sgd", *args)
    assert code == 0, err
    ckpt = out / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:300])
    code, _, err = run(capsys, "train", "sgd", *args, "--resume")
    assert code == 2
    assert_one_line_error(
        code, err, r"checkpoint: expected a complete file written by torch.save, got '.*checkpoint\.pt'"
    )


def test_truncated_surface_store_part_gives_one_line_error(capsys, tmp_path):
    a = _save_net(tmp_path / "a.pt")
    b = tmp_path / "b.pt"
    torch.save({k: v + 0.1 for k, v in make_net().state_dict().items()}, b)
    out = tmp_path / "line"
    args = ["surface", "line", a, str(b), "--model", MODEL, "--data", DATA, "--out", str(out), "--points", "3"]
    code, _, err = run(capsys, *args, "--no-progress")
    assert code == 0, err
    part = out / "store" / "part-0.npz"
    part.write_bytes(part.read_bytes()[:100])
    code, _, err = run(capsys, *args, "--no-progress")
    assert code == 2
    assert_one_line_error(
        code, err, r"store: expected readable part files, got a truncated or corrupt part-0\.npz .*delete"
    )


@pytest.mark.parametrize("progress", [True, False], ids=["progress", "no-progress"])
def test_diagnose_progress_bar_over_stages_on_stderr(capsys, tmp_path, progress):
    a = _save_net(tmp_path / "a.pt")
    args = [
        "--model",
        MODEL,
        "--data",
        DATA,
        "--quick",
        "--no-density",
        "--resolution",
        "2",
        "--out",
        str(tmp_path / "o"),
    ]
    code, out, err = run(capsys, "diagnose", a, *args, *([] if progress else ["--no-progress"]))
    assert code == 0, err
    bar = re.findall(r"diagnose: +\d+%\|[^|]*\| *(\d+)/(\d+) .*?stage", err)
    if progress:
        assert {total for _, total in bar} == {"9"}  # train/test evaluation, phi, S, S-hat, top-k, trace, line, plane
        for stage in ("phi", "eigen", "trace", "plane"):
            assert stage in err
        assert "random plane" in err  # the surfaces' own bars over grid points
    else:
        assert bar == [] and "%|" not in err
    assert "report:" in err and "%|" not in out


def test_surface_line_through_full_batchnorm_checkpoints_interpolates_the_statistics(capsys, tmp_path):
    from basinscope.surface import Surface1D

    g = torch.Generator().manual_seed(3)
    states = []
    for i in range(2):
        sd = make_bn_net().state_dict()
        sd = {k: v + 0.3 * torch.rand(v.shape, generator=g) if v.is_floating_point() else v + i for k, v in sd.items()}
        states.append(sd)
        torch.save(sd, tmp_path / f"s{i}.pt")
    out = tmp_path / "line"
    argv = [
        "surface",
        "line",
        str(tmp_path / "s0.pt"),
        str(tmp_path / "s1.pt"),
        "--model",
        "tests.test_cli:make_bn_net",
    ]
    code, _, err = run(
        capsys, *argv, "--data", DATA, "--out", str(out), "--points", "4", "--range=-0.5:1.5", "--no-progress"
    )
    assert code == 0, err
    surf = Surface1D.load(out / "surface")
    assert surf.settings["buffers"] == "interpolated"
    data = make_data()
    for t, value in zip(surf.ts, surf.train_loss):
        ref = make_bn_net()
        ref.load_state_dict(
            {
                k: (1 - t) * a + t * b if a.is_floating_point() else a
                for (k, a), b in zip(states[0].items(), states[1].values())
            }
        )
        ref.eval()
        with torch.no_grad():
            expected = nn.functional.cross_entropy(ref(data["x_train"]), data["y_train"]).item()
        assert value == pytest.approx(expected, rel=1e-5)
    # a parameter-only file beside a full one: named, one line
    torch.save({k: v for k, v in states[1].items() if "running" not in k and "num_batches" not in k}, tmp_path / "p.pt")
    code, _, err = run(
        capsys, *argv[:3], str(tmp_path / "p.pt"), *argv[4:], "--data", DATA, "--out", str(tmp_path / "x")
    )
    assert_one_line_error(
        code, err, r"checkpoints: expected state_dicts with the keys of '.*s0\.pt', got '.*p\.pt' with 3 missing"
    )


def test_outputs_replace_planted_symlinks_without_writing_their_targets(capsys, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out"
    (out / "figures").mkdir(parents=True)
    planted = ["surface.npz", "surface.json", "surface.png", "surface.html", "toy_salr.png", "toy_salr.html"]
    planted += ["metrics.json", "report.html", "figures/density.png"]
    for name in planted:
        (out / name).symlink_to(victim)
    a = _save_net(tmp_path / "a.pt")
    b = tmp_path / "b.pt"
    torch.save({k: v + 0.1 for k, v in make_net().state_dict().items()}, b)
    common = ["--model", MODEL, "--data", DATA, "--out", str(out), "--no-progress"]
    code, _, err = run(capsys, "surface", "line", a, str(b), *common, "--points", "3")
    assert code == 0, err
    code, _, err = run(capsys, "toy", "salr", "--out", str(out))
    assert code == 0, err
    code, _, err = run(capsys, "diagnose", a, *common, "--quick", "--no-surface")
    assert code == 0, err
    assert victim.read_text() == "precious"
    for name in planted:
        assert not (out / name).is_symlink() and (out / name).stat().st_size > 0, name


def test_demo_threads_reach_the_run_settings(monkeypatch, capsys, tmp_path):
    """``basinscope demo --threads N`` becomes the run's thread setting (the run sets threads from its config)."""
    import basinscope.demo

    seen = {}

    def fake_run_demo(out_dir, **kw):
        seen.update(kw)
        return {"report": "r", "json": "j"}

    monkeypatch.setattr(basinscope.demo, "run_demo", fake_run_demo)
    assert main(["demo", "--quick", "--threads", "2", "--out", str(tmp_path), "--no-progress"]) == 0
    from basinscope.demo import DemoConfig

    assert seen["config"].threads == 2
    assert seen["config"].size == "quick" and seen["config"] == dataclasses.replace(DemoConfig.quick(), threads=2)
