"""The ``landscape`` command line: parses arguments and calls the public Python API, nothing else.

Subcommands::

    landscape demo      [--out DIR] [--quick] [--seed N]
    landscape train     METHOD --model SPEC --data SPEC [--budget N] [--out DIR] [--resume] ...
    landscape diagnose  CHECKPOINT --model SPEC --data SPEC [--out DIR] [--json] ...
    landscape surface   plane CKPT1 CKPT2 CKPT3 | line CKPT_A CKPT_B | random CKPT   --model SPEC --data SPEC ...
    landscape toy       [sharpness|escape|salr|all] [--out DIR]

Bad input ends with one line ``landscape: error: <what>`` on stderr and exit status 2 (no traceback; set
``LANDSCAPE_DEBUG=1`` to see one); a failure during the computation ends with one line and exit status 1.
``main(argv)`` returns the exit status, so it can be called in-process.

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
from typing import Any, NoReturn

from ._argtypes import int_at_least_2, nonneg_float, options, positive_float, positive_int, range_pair

__all__ = ["build_parser", "main"]

PROG = "landscape"


class UsageError(Exception):
    """Bad command-line input (reported as one line, exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error instead of usage + message."""

    def error(self, message: str) -> NoReturn:
        hint = f" (see '{self.prog} --help')"
        raise UsageError(message + hint)


# ---------------------------------------------------------------------------------------------- parser
def _add_model_data(p: argparse.ArgumentParser, *, eval_batch: bool = True) -> None:
    p.add_argument(
        "--model",
        required=True,
        metavar="SPEC",
        help="zoo name with optional kwargs (mlp, cnn1d:width=32, toy_cnn, vgg16, ...) or module:factory",
    )
    p.add_argument(
        "--data",
        required=True,
        metavar="SPEC",
        help="mnist1d, cifar10:DIR, cifar100:DIR or module:factory",
    )
    p.add_argument("--train-samples", type=positive_int, metavar="N", help="use only the first N training examples")
    p.add_argument("--test-samples", type=positive_int, metavar="N", help="use only the first N test examples")
    if eval_batch:
        p.add_argument("--batch-size", type=positive_int, default=500, metavar="N", help="evaluation batch size")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")


def _add_common(p: argparse.ArgumentParser, *, progress: bool = True) -> None:
    if progress:
        p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        metavar="N",
        help="torch intra-op threads (default: %(default)s; small networks are fastest on one)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``landscape`` command."""
    from . import __version__

    parser = _Parser(
        prog=PROG,
        description="Measurement-first loss-landscape toolkit: sharpness, Hessian spectra, loss surfaces, "
        "and the SWA/DSWA/TSWA/SALR/SAM/Entropy-SGD optimizers.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser(
        "demo",
        help="the showcase: SWA/DSWA/TSWA and SALR on MNIST-1D, measured, as an HTML report + JSON",
        description="Train on the embedded MNIST-1D: SGD stopped early (Case II) and to convergence (Case I); "
        "from each SWA, DSWA and TSWA at equal budgets; SGD-SALR vs SGD at equal gradient calls. Every solution "
        "is measured (test accuracy, phi, S, S-hat, top Hessian eigenvalue, trace); the test-error plane "
        "through three SWA samples and the SWA-DSWA line are drawn. Writes report.html and results.json.",
    )
    p.add_argument("--out", default="landscape-demo", metavar="DIR", help="output directory (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="small budgets (under 2 minutes), for tests")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--fresh", action="store_true", help="recompute every stage (default: reuse finished stages)")
    _add_common(p)

    from .optim import METHODS  # the runner's method names

    p = sub.add_parser(
        "train",
        help="train a model with one of the reference optimizers (checkpoints, --resume)",
        description="Train with METHOD under a budget of gradient calls; writes checkpoints, the final weights "
        "(final.pt), and the per-iteration history (history.json). Killed and re-run with --resume, the run "
        "continues from its last checkpoint and ends with the same weights as an uninterrupted run.",
    )
    p.add_argument("method", choices=list(METHODS), metavar="METHOD", help="one of: " + ", ".join(METHODS))
    _add_model_data(p, eval_batch=False)
    p.add_argument("--out", default="landscape-train", metavar="DIR", help="output directory (default: %(default)s)")
    p.add_argument(
        "--budget", type=positive_int, default=2000, metavar="N", help="gradient calls (default: %(default)s)"
    )
    p.add_argument("--lr", type=positive_float, default=None, help="base learning rate (method default if omitted)")
    p.add_argument("--batch-size", type=positive_int, default=128, metavar="N", help="training minibatch size")
    p.add_argument("--init", default=None, metavar="CHECKPOINT", help="start from these weights")
    p.add_argument(
        "--checkpoint-every", type=positive_int, default=None, metavar="N", help="iterations between checkpoints"
    )
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument(
        "--opt",
        type=options,
        default={},
        metavar="K=V,...",
        help="method hyperparameters, e.g. --opt c=2,gamma=0.01 (SALR rate bounds: --opt max_ratio=2,min_ratio=0.5)",
    )
    p.add_argument("--json", action="store_true", help="print the final metrics as JSON on stdout")
    _add_common(p)

    p = sub.add_parser(
        "diagnose",
        help="measure a trained checkpoint: sharpness, Hessian spectrum, 1-D/2-D surfaces",
        description="Load CHECKPOINT safely (weights only; files that need pickled code are refused) into --model "
        "and measure on --data: sharpness (phi, S, S-hat), the Hessian's top eigenvalues, trace and spectral "
        "density, a random 1-D line and 2-D plane. Writes report.html and metrics.json to --out.",
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a state_dict file written by torch.save")
    _add_model_data(p)
    p.add_argument("--out", default="landscape-diagnose", metavar="DIR", help="output directory (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON on stdout")
    p.add_argument("--epsilon", type=positive_float, default=1e-2, help="radius for phi and S (default: %(default)s)")
    p.add_argument("--gamma", type=positive_float, default=1e-2, help="step size for S-hat (default: %(default)s)")
    p.add_argument("--steps", type=positive_int, default=5, help="S-hat descent/ascent steps (default: %(default)s)")
    p.add_argument(
        "--top-k", type=positive_int, default=3, metavar="K", help="top Hessian eigenvalues (default: %(default)s)"
    )
    p.add_argument("--resolution", type=int_at_least_2, default=15, metavar="N", help="surface grid points per axis")
    p.add_argument(
        "--span", type=positive_float, default=1.0, help="surfaces cover [-SPAN, SPAN] in filter-normalized units"
    )
    p.add_argument("--no-surface", action="store_true", help="skip the 1-D/2-D surfaces")
    p.add_argument("--no-density", action="store_true", help="skip the spectral density")
    p.add_argument("--quick", action="store_true", help="cheap settings (for tests and smoke runs)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    _add_common(p)

    p = sub.add_parser(
        "surface",
        help="loss/test-error surfaces: plane through 3 checkpoints, line between 2, random plane",
        description="Evaluate train loss and test error on a plane through three checkpoints (Garipov et al.), "
        "along the line between two, or on a filter-normalized random plane around one (Li et al.).",
    )
    ssub = p.add_subparsers(dest="kind", metavar="KIND", parser_class=_Parser)
    for kind, nargs, helptext in (
        ("plane", 3, "the plane through three checkpoints"),
        ("line", 2, "the line (1-t)*A + t*B between two checkpoints"),
        ("random", 1, "a filter-normalized random plane around one checkpoint"),
    ):
        q = ssub.add_parser(kind, help=helptext, description=helptext[0].upper() + helptext[1:] + ".")
        q.add_argument("checkpoints", nargs=nargs, metavar="CHECKPOINT", help=f"{nargs} checkpoint file(s)")
        _add_model_data(q)
        q.add_argument("--out", default=f"landscape-surface-{kind}", metavar="DIR", help="output directory")
        if kind == "line":
            q.add_argument("--range", type=range_pair, default=(-0.5, 1.5), metavar="LO:HI", help="range of t")
            q.add_argument("--points", type=int_at_least_2, default=41, metavar="N", help="number of t values")
        else:
            q.add_argument("--resolution", type=int_at_least_2, default=21, metavar="N", help="grid points per axis")
            if kind == "random":
                q.add_argument("--span", type=positive_float, default=1.0, help="grid half-width (direction units)")
                q.add_argument("--seed", type=int, default=0, help="seed of the random directions")
            else:
                q.add_argument(
                    "--margin", type=nonneg_float, default=0.25, help="grid margin around the points (fraction)"
                )
        q.add_argument("--recompute-bn", action="store_true", help="recompute BatchNorm statistics at every point")
        q.add_argument("--json", action="store_true", help="print the surface summary as JSON on stdout")
        _add_common(q)

    p = sub.add_parser(
        "toy",
        help="the 1-D teaching demos of the SALR paper (Figs. 1-3)",
        description="f(theta) = 0.5*theta*sin(3*theta) + 1: phi, S and S-hat across theta (SALR Fig. 2); GD vs "
        "GD-SALR started on the slope into a sharp minimum; the SALR learning rate against sharpness (Fig. 3).",
    )
    p.add_argument("which", nargs="?", default="all", choices=["sharpness", "escape", "salr", "all"], help="which demo")
    p.add_argument("--out", default="landscape-toy", metavar="DIR", help="output directory (default: %(default)s)")
    p.add_argument("--format", choices=["png", "html", "both"], default="both", help="figure format")
    p.add_argument("--json", action="store_true", help="print the demo summaries as JSON on stdout")
    _add_common(p, progress=False)
    return parser


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
    out = run_demo(a.out, quick=a.quick, seed=a.seed, progress=not a.no_progress, reuse=not a.fresh, config=config)
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
        progress=not a.no_progress,
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
        progress=not a.no_progress,
    )
    if a.json:
        _print_json(res["metrics"])
    else:
        _say(f"report: {res['report']}\nnumbers: {res['json']}")
    return 0


def _cmd_surface(a: argparse.Namespace) -> int:
    from .workflows import surface_run

    if a.kind is None:
        raise UsageError("surface: expected a kind (plane, line or random), got none (see 'landscape surface --help')")
    kw: dict[str, Any] = {}
    if a.kind == "line":
        kw.update(coord_range=a.range, points=a.points)
    else:
        kw.update(resolution=a.resolution)
        if a.kind == "random":
            kw.update(span=a.span, seed=a.seed)
        else:
            kw.update(margin=a.margin)
    res = surface_run(
        a.kind,
        a.checkpoints,
        a.model,
        a.data,
        out_dir=a.out,
        recompute_bn=a.recompute_bn,
        batch_size=a.batch_size,
        train_samples=a.train_samples,
        test_samples=a.test_samples,
        device=_device(a.device),
        progress=not a.no_progress,
        **kw,
    )
    if a.json:
        _print_json(res)
    else:
        _say("written: " + ", ".join(str(p) for p in res["files"]))
    return 0


def _cmd_toy(a: argparse.Namespace) -> int:
    from .workflows import toy_run

    res = toy_run(a.which, out_dir=a.out, fmt=a.format)
    if a.json:
        _print_json(res)
    else:
        _say("written: " + ", ".join(str(p) for p in res["files"]))
    return 0


_COMMANDS = {
    "demo": _cmd_demo,
    "train": _cmd_train,
    "diagnose": _cmd_diagnose,
    "surface": _cmd_surface,
    "toy": _cmd_toy,
}


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 400 else text[:397] + "..."


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """torch's intra-op threads set to ``n`` for the block, the previous number restored afterwards."""
    if n is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    Called in-process, it leaves torch's thread setting as it found it (``--threads`` applies while the
    command runs).
    """
    debug = os.environ.get("LANDSCAPE_DEBUG", "") not in ("", "0")
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:  # --help / --version
            return int(e.code or 0)
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        with _threads(getattr(args, "threads", None)):
            return _COMMANDS[args.command](args)
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
        _say(f"{PROG}: error: {type(e).__name__}: {_one_line(e)} (set LANDSCAPE_DEBUG=1 for a traceback)")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
