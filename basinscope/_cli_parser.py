"""The parser of the ``basinscope`` command line (see :mod:`basinscope.cli` for the commands it runs).

Bad input raises :class:`UsageError` carrying one line, which ``basinscope.cli.main`` prints with exit status 2.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from ._argtypes import int_at_least_2, nonneg_float, options, positive_float, positive_int, range_pair

__all__ = ["PROG", "UsageError", "build_parser"]

PROG = "basinscope"


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


def _add_common(p: argparse.ArgumentParser) -> None:
    """``--quiet`` (alias ``--no-progress``) and ``--threads``: every subcommand takes them (add them to new ones)."""
    p.add_argument(
        "-q",
        "--quiet",
        "--no-progress",
        dest="quiet",
        action="store_true",
        help="no progress bars (the summary line and errors remain)",
    )
    p.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        metavar="N",
        help="torch intra-op threads (default: %(default)s; small networks are fastest on one)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``basinscope`` command."""
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
    p.add_argument("--out", default="basinscope-demo", metavar="DIR", help="output directory (default: %(default)s)")
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
    p.add_argument("--out", default="basinscope-train", metavar="DIR", help="output directory (default: %(default)s)")
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
    p.add_argument(
        "--out", default="basinscope-diagnose", metavar="DIR", help="output directory (default: %(default)s)"
    )
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
        help="loss/test-error surfaces: planes, lines, random/Hessian/PCA directions, mode-connecting curves",
        description="Evaluate train loss and test error on a plane through three checkpoints (Garipov et al.), "
        "along the line between two, on a line or plane through one checkpoint along random (Li et al.), Hessian "
        "or PCA directions, or along a trained mode-connecting curve between two checkpoints and the line beside it.",
    )
    ssub = p.add_subparsers(dest="kind", metavar="KIND", parser_class=_Parser)
    for kind, nargs, helptext in (
        ("plane", "+", "the plane through three checkpoints, or through one along --directions"),
        ("line", "+", "the line (1-t)*A + t*B between two checkpoints, or through one along --directions"),
        ("random", 1, "a filter-normalized random plane around one checkpoint (= plane --directions random)"),
        ("curve", 2, "a mode-connecting Bezier curve (or polygonal chain) between two checkpoints, and the line"),
    ):
        q = ssub.add_parser(kind, help=helptext, description=helptext[0].upper() + helptext[1:] + ".")
        count = {"plane": "3 (or 1 with --directions)", "line": "2 (or 1 with --directions)"}.get(kind, str(nargs))
        q.add_argument("checkpoints", nargs=nargs, metavar="CHECKPOINT", help=f"{count} checkpoint file(s)")
        _add_model_data(q)
        q.add_argument("--out", default=f"basinscope-surface-{kind}", metavar="DIR", help="output directory")
        if kind in ("plane", "line"):
            q.add_argument(
                "--directions",
                choices=["random", "hessian", "pca"],
                default=None,
                help="through one checkpoint along filter-normalized random directions, the top Hessian "
                "eigenvectors, or the principal directions of --trajectory (default: through the checkpoints)",
            )
            q.add_argument(
                "--trajectory",
                nargs="+",
                default=None,
                metavar="CKPT",
                help="the iterates of a run, in training order, for --directions pca",
            )
        if kind == "line":
            q.add_argument(
                "--range",
                type=range_pair,
                default=None,
                metavar="LO:HI",
                help="range of t (default -0.5:1.5 between two checkpoints, -1:1 along a direction, the iterates' "
                "range for pca)",
            )
            q.add_argument("--points", type=int_at_least_2, default=41, metavar="N", help="number of t values")
            q.add_argument("--seed", type=int, default=0, help="seed of the random or Hessian directions")
        elif kind == "curve":
            q.add_argument("--curve", choices=["bezier", "polychain"], default="bezier", help="curve family")
            q.add_argument("--steps", type=positive_int, default=1000, help="SGD steps fitting the bend")
            q.add_argument("--fit-batch-size", type=positive_int, default=128, metavar="N", help="fit minibatch size")
            q.add_argument("--lr", type=positive_float, default=0.05, help="initial fit learning rate")
            q.add_argument("--momentum", type=nonneg_float, default=0.9, help="fit momentum")
            q.add_argument("--weight-decay", type=nonneg_float, default=0.0, help="L2 penalty on the curve's point")
            q.add_argument("--seed", type=int, default=0, help="seed of the t's, minibatches and dropout")
            q.add_argument("--points", type=int_at_least_2, default=21, metavar="N", help="evaluated t's on [0, 1]")
        else:
            q.add_argument("--resolution", type=int_at_least_2, default=21, metavar="N", help="grid points per axis")
            q.add_argument(
                "--span", type=positive_float, default=1.0, help="grid half-width for random or Hessian directions"
            )
            q.add_argument("--seed", type=int, default=0, help="seed of the random or Hessian directions")
            if kind == "plane":
                q.add_argument(
                    "--margin",
                    type=nonneg_float,
                    default=0.25,
                    help="grid margin around the points or the projected trajectory (fraction)",
                )
        if kind != "curve":
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
    p.add_argument("--out", default="basinscope-toy", metavar="DIR", help="output directory (default: %(default)s)")
    p.add_argument("--format", choices=["png", "html", "both"], default="both", help="figure format")
    p.add_argument("--json", action="store_true", help="print the demo summaries as JSON on stdout")
    _add_common(p)

    p = sub.add_parser(
        "reproduce",
        help="run a paper experiment (table or figure) with claims, intervals and verdicts; resumable",
        description="Run (or resume) the named paper experiments: every training run is kept in --out, so an "
        "interrupted call re-run with the same arguments ends with the identical result. Writes NAME/result.json, "
        "figures/ and index.html (a verdict table: each paper claim, its number in the paper, the number here with "
        "its 95%% interval over seeds, the verdict). 'basinscope reproduce --list' lists the experiments.",
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="experiment names ('all': every experiment)")
    p.add_argument("--list", action="store_true", help="list the experiments and exit")
    p.add_argument("--seeds", type=int_at_least_2, default=5, metavar="N", help="seeds 0..N-1 (default: %(default)s)")
    p.add_argument(
        "--size",
        choices=["quick", "demo", "full"],
        default="full",
        help="quick: a smoke test (numbers not evidence); demo: the demo's budgets; full: as the paper "
        "(default: %(default)s)",
    )
    p.add_argument("--quick", action="store_true", help="same as --size quick")
    p.add_argument(
        "--out", default="basinscope-reproduce", metavar="DIR", help="output directory (default: %(default)s)"
    )
    _add_common(p)
    return parser
