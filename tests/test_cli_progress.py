"""Progress bars: every long command shows what it is doing and the time left on stderr; ``--quiet`` (alias
``--no-progress``) removes them; the summary line is printed once. And the helper they all use."""

from __future__ import annotations

import io
import re
import sys

import pytest
import torch

from basinscope import _progress
from basinscope.cli import main

from .test_cli import DATA, MODEL, SUBCOMMANDS, make_net

ETA = re.compile(r"\[\d\d:\d\d<(\d\d:\d\d|\?)")  # [elapsed<left]


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def _visible_lines(err: str) -> list[str]:
    """What a terminal shows at the end: carriage returns, newlines and tqdm's cursor-up escapes (nested bars)
    replayed on a grid of lines, blank lines dropped."""
    screen: list[list[str]] = [[]]
    row = col = 0
    for token in re.split(r"(\r|\n|\x1b\[A)", err):
        if token == "\r":
            col = 0
        elif token == "\n":
            row, col = row + 1, 0
            screen += [[] for _ in range(row + 1 - len(screen))]
        elif token == "\x1b[A":
            row = max(row - 1, 0)
        else:
            line = screen[row]
            line += [" "] * (col + len(token) - len(line))
            line[col : col + len(token)] = token
            col += len(token)
    return [text for text in ("".join(line).strip() for line in screen) if text]


@pytest.fixture()
def ckpt(tmp_path):
    path = tmp_path / "w.pt"
    torch.save(make_net().state_dict(), path)
    return str(path)


def _cases(ckpt: str, out: str) -> dict[str, tuple[list[str], list[str], str]]:
    """command → (argv, bar descriptions expected, summary line prefix)."""
    md = ["--model", MODEL, "--data", DATA, "--out", out]
    return {
        "train": (["train", "sgd", *md, "--budget", "24", "--batch-size", "16"], ["train sgd"], "final weights:"),
        "diagnose": (
            ["diagnose", ckpt, *md, "--quick", "--resolution", "3", "--no-density"],
            ["diagnose", "lanczos", "surface: random plane"],
            "report:",
        ),
        "surface": (["surface", "line", ckpt, ckpt, *md, "--points", "3"], ["surface: line"], "written:"),
        "toy": (["toy", "salr", "--format", "png", "--out", out], ["toy"], "written:"),
    }


@pytest.mark.parametrize("command", ["train", "diagnose", "surface", "toy"])
def test_bars_by_default_and_none_with_quiet(capsys, tmp_path, ckpt, command):
    argv, descs, summary = _cases(ckpt, str(tmp_path / "a"))[command]
    code, err = _run(capsys, *argv)
    assert code == 0, err
    for desc in descs:
        assert re.search(rf"(^|\r){re.escape(desc)}: +\d+%", err, re.M), (desc, err[-2000:])
    assert ETA.search(err), err[-2000:]
    shown = _visible_lines(err)
    assert sum(ln.startswith(summary) for ln in shown) == 1, shown  # printed once, bars cleared around it
    assert all(not ETA.search(ln) for ln in shown), shown  # no finished bar left behind

    for k, flag in enumerate(("--quiet", "--no-progress")):
        argv, _, _ = _cases(ckpt, str(tmp_path / f"b{k}"))[command]
        code, err = _run(capsys, *argv, flag)
        assert code == 0, err
        assert "\r" not in err and not ETA.search(err) and "%|" not in err, err
        assert [ln for ln in err.splitlines() if ln.startswith(summary)] == err.splitlines()[:1], err


@pytest.mark.parametrize("sub", [s for s in SUBCOMMANDS if s != ["surface"]], ids=" ".join)
def test_every_subcommand_takes_quiet(capsys, sub):
    """Every command that runs something (``surface`` alone only dispatches to its kinds)."""
    assert main([*sub, "--help"]) == 0
    out = capsys.readouterr().out
    assert "-q, --quiet, --no-progress" in out, out


def test_progress_helper(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    bar = _progress.progress(total=4, desc="lanczos", unit="hvp")
    bar.update(2)
    bar.refresh()
    bar.close()
    text = err.getvalue()
    assert "lanczos:  50%" in text and "2/4" in text and ETA.search(text), text
    assert list(_progress.progress(range(3), desc="x", enabled=False)) == [0, 1, 2]
    err.truncate(0)
    with _progress.quiet(), _progress.quiet(False):
        assert not _progress.showing()
        bar = _progress.progress(range(2), desc="hidden")
        assert list(bar) == [0, 1]
        bar.update(1)
        bar.set_postfix(loss=1.0)
        bar.close()
    assert _progress.showing() and not _progress.showing(False)
    assert err.getvalue() == ""
