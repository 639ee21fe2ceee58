"""The ``basinscope`` command line: parses arguments and calls the public Python API, nothing else.

Subcommands::

    basinscope demo      [--out DIR] [--quick] [--seed N]
    basinscope train     METHOD --model SPEC --data SPEC [--budget N] [--out DIR] [--resume] ...
    basinscope diagnose  CHECKPOINT --model SPEC --data SPEC [--out DIR] [--json] ...
    basinscope surface   plane CKPT1 CKPT2 CKPT3 | line CKPT_A CKPT_B | random CKPT   --model SPEC --data SPEC ...
    basinscope surface   plane|line CKPT --directions random|hessian|pca [--trajectory CKPT...]   --model ... --data ...
    basinscope surface   curve CKPT_A CKPT_B [--curve bezier|polychain] [--steps N]   --model SPEC --data SPEC ...
    basinscope toy       [sharpness|escape|salr|all] [--out DIR]
    basinscope reproduce NAME... | all | --list   [--seeds N] [--size quick|demo|full] [--quick] [--out DIR]

Bad input ends with one line ``basinscope: error: <what>`` on stderr and exit status 2 (no traceback; set
``BASINSCOPE_DEBUG=1`` to see one); a failure during the computation ends with one line and exit status 1.
``main(argv)`` returns the exit status, so it can be called in-process.

Every command shows progress bars on stderr (what it is doing, how far, the time left:
:func:`basinscope._progress.progress`) for its long steps; ``--quiet``/``-q`` (alias ``--no-progress``) hides
them, leaving the one summary line.

Every command takes ``--threads N`` (default 1): torch's intra-op threads while it runs. The networks these
commands are usually run on are small, and one thread is as fast for them while staying fast on a loaded
machine; raise it for large models. ``main`` restores the previous setting when the command returns.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from ._cli_parser import PROG, UsageError, build_parser

__all__ = ["build_parser", "main"]


# ---------------------------------------------------------------------------------------------- commands
def _device(name: str | None):
    import torch

    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise UsageError(f"--device: expected a torch device such as cpu or cuda:0, got {name!r}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"--device: {name} is not available on this machine (torch.cuda.is_available() is False)")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise UsageError(f"--device: expected cuda:0 to cuda:{count - 1} on this machine, got {name!r}")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(
            f"--device: {name} is not available on this machine (torch.backends.mps.is_available() is False)"
        )
    return dev


def _print_json(obj: Any) -> None:
    from .report import dumps

    sys.stdout.write(dumps(obj) + "\n")


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")


def _cmd_demo(a: argparse.Namespace) -> int:
    import dataclasses

    from .demo import DemoConfig, run_demo

    # the run sets torch's threads from its config; --threads is part of the settings (results may differ with it)
    config = dataclasses.replace(DemoConfig.quick() if a.quick else DemoConfig(), threads=a.threads)
    out = run_demo(a.out, quick=a.quick, seed=a.seed, progress=not a.quiet, reuse=not a.fresh, config=config)
    _say(f"report: {out['report']}\nnumbers: {out['json']}")
    return 0


def _cmd_train(a: argparse.Namespace) -> int:
    from .workflows import train_run

    res = train_run(
        a.method,
        a.model,
        a.data,
        out_dir=a.out,
        budget=a.budget,
        lr=a.lr,
        batch_size=a.batch_size,
        init=a.init,
        checkpoint_every=a.checkpoint_every,
        resume=a.resume,
        seed=a.seed,
        options=a.opt,
        train_samples=a.train_samples,
        test_samples=a.test_samples,
        device=_device(a.device),
        progress=not a.quiet,
    )
    if a.json:
        _print_json(res)
    else:
        _say(f"final weights: {res['final']}\nhistory: {res['history']}")
        if res["samples"] is not None:
            smp = res["samples"]
            _say(f"SWA samples: {len(smp['samples'])} + {len(smp['rounds'])} round averages in {smp['dir']}")
    return 0


def _cmd_diagnose(a: argparse.Namespace) -> int:
    from .diagnose import diagnose_checkpoint

    res = diagnose_checkpoint(
        a.checkpoint,
        a.model,
        a.data,
        out_dir=a.out,
        epsilon=a.epsilon,
        gamma=a.gamma,
        steps=a.steps,
        top_k=a.top_k,
        resolution=a.resolution,
        span=a.span,
        surfaces=not a.no_surface,
        density=not a.no_density,
        quick=a.quick,
        seed=a.seed,
        batch_size=a.batch_size,
        train_samples=a.train_samples,
        test_samples=a.test_samples,
        device=_device(a.device),
        progress=not a.quiet,
    )
    if res["report"] is None:  # a rank other than 0 under torchrun: rank 0 reports
        return 0
    if a.json:
        _print_json(res["metrics"])
    else:
        _say(f"report: {res['report']}\nnumbers: {res['json']}")
    return 0


def _cmd_surface(a: argparse.Namespace) -> int:
    from .workflows import curve_run, surface_run

    if a.kind is None:
        raise UsageError(
            "surface: expected a kind (plane, line, random or curve), got none (see 'basinscope surface --help')"
        )
    common: dict[str, Any] = {
        "out_dir": a.out,
        "batch_size": a.batch_size,
        "train_samples": a.train_samples,
        "test_samples": a.test_samples,
        "device": _device(a.device),
        "progress": not a.quiet,
    }
    if a.kind == "curve":
        res = curve_run(
            a.checkpoints,
            a.model,
            a.data,
            kind=a.curve,
            steps=a.steps,
            fit_batch_size=a.fit_batch_size,
            lr=a.lr,
            momentum=a.momentum,
            weight_decay=a.weight_decay,
            seed=a.seed,
            points=a.points,
            **common,
        )
    else:
        kw: dict[str, Any] = {"seed": a.seed}
        if a.kind in ("plane", "line"):
            kw.update(directions=a.directions, trajectory=a.trajectory)
        if a.kind == "line":
            kw.update(coord_range=a.range, points=a.points)
        else:
            kw.update(resolution=a.resolution, span=a.span)
            if a.kind == "plane":
                kw.update(margin=a.margin)
        res = surface_run(a.kind, a.checkpoints, a.model, a.data, recompute_bn=a.recompute_bn, **kw, **common)
    if a.json:
        _print_json(res)
    else:
        _say("written: " + ", ".join(str(p) for p in res["files"]))
    return 0


def _cmd_toy(a: argparse.Namespace) -> int:
    from .workflows import toy_run

    res = toy_run(a.which, out_dir=a.out, fmt=a.format, progress=not a.quiet)
    if a.json:
        _print_json(res)
    else:
        _say("written: " + ", ".join(str(p) for p in res["files"]))
    return 0


def _cmd_reproduce(a: argparse.Namespace) -> int:
    from .experiments import EXPERIMENTS, available, reproduce

    names = available()
    if a.list:
        for name in names:
            doc = (EXPERIMENTS[name].__doc__ or "").strip().splitlines()
            sys.stdout.write(f"{name}\t{doc[0] if doc else ''}\n")
        return 0
    if not a.names:
        raise UsageError("reproduce: expected experiment names (or 'all'; see 'basinscope reproduce --list')")
    wanted = names if a.names == ["all"] else a.names
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise UsageError(f"NAME: expected one of {', '.join(names)} or all, got {', '.join(unknown)}")
    size = "quick" if a.quick else a.size
    out = reproduce(wanted, seeds=a.seeds, size=size, out_dir=a.out, progress=not a.quiet)
    for name, res in out["results"].items():
        counts = {v: sum(c.verdict == v for c in res.claims) for v in ("reproduces", "contradicts", "inconclusive")}
        _say(f"{name}: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + f" ({res.wall_s:.0f} s)")
    _say(f"page: {out['page']}")
    return 0


_COMMANDS = {
    "demo": _cmd_demo,
    "train": _cmd_train,
    "diagnose": _cmd_diagnose,
    "surface": _cmd_surface,
    "toy": _cmd_toy,
    "reproduce": _cmd_reproduce,
}


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 400 else text[:397] + "..."


@contextlib.contextmanager
def _out_dir(args: argparse.Namespace) -> Iterator[None]:
    """``--out`` checked before the command starts (an existing file, read-only, full: exit status 2); the
    directories created for it are removed again when the command fails before writing into them."""
    out = getattr(args, "out", None)
    if out is None or getattr(args, "list", False):  # `reproduce --list` only prints
        yield
        return
    from ._outdir import output_dir

    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(output_dir(out, name="--out"))
        except OSError as e:
            raise UsageError(str(e)) from None
        yield


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    Called in-process, it leaves torch's thread setting as it found it (``--threads`` applies while the
    command runs).
    """
    debug = os.environ.get("BASINSCOPE_DEBUG", "") not in ("", "0")
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:  # --help / --version
            return int(e.code or 0)
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        from ._progress import quiet
        from ._threads import torch_threads

        # --quiet silences every bar made while the command runs, also those of code not told about it
        try:
            with torch_threads(getattr(args, "threads", None)), quiet(getattr(args, "quiet", False)), _out_dir(args):
                return _COMMANDS[args.command](args)
        finally:
            # a process group set up for this command is torn down while the interpreter is alive (only the module
            # that sets groups up can have done so: not imported, nothing to do)
            dist_mod = sys.modules.get("basinscope.surface.distributed")
            if dist_mod is not None:
                dist_mod.release()
    except KeyboardInterrupt:
        _say(f"{PROG}: interrupted")
        return 130
    except UsageError as e:
        _say(f"{PROG}: error: {_one_line(e)}")
        return 2
    except (ValueError, TypeError, FileNotFoundError, NotADirectoryError, PermissionError, ImportError) as e:
        if debug:
            raise
        _say(f"{PROG}: error: {_one_line(e)}")
        return 2
    except (RuntimeError, OSError) as e:  # e.g. a --model that does not fit the --data's shapes
        if debug:
            raise
        _say(f"{PROG}: error: {type(e).__name__}: {_one_line(e)}")
        return 1
    except Exception as e:  # anything else is a bug or an unforeseen input: still one line, with a way to see more
        if debug:
            raise
        _say(f"{PROG}: error: {type(e).__name__}: {_one_line(e)} (set BASINSCOPE_DEBUG=1 for a traceback)")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
