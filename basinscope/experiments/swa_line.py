"""SWA Revisited Fig. 7 on MNIST-1D: train loss and test error on the lines SWA → DSWA and SWA → TSWA.

The lines join the final averages of the Case II runs at the paper's high constant SWA rate C_h (the runs of
``swa-case2``, shared through the kept runs: computed once), every seed: θ(t) = (1 − t)·SWA + t·DSWA (or TSWA)
for t in [−0.5, 1.5], with t = 0 and t = 1 on grid nodes. §4 reads Fig. 7 as "DSWA and TSWA find flatter optima
than SWA"; the claim here compares how much the training loss rises over the same distance (half the SWA–end
distance) beyond each end, and the test errors at the two ends.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import register
from ._swa_runs import Problem
from .result import ExperimentResult, claim
from .swa_revisited import _NOT_EVIDENCE, SETTINGS, _runs

__all__ = ["swa_line"]


def _line_values(prob: Problem, start: dict, end: dict, ts: np.ndarray, store, name: str, progress: bool) -> dict:
    """Train loss (all training examples) and test error at (1 − t)·start + t·end, kept in ``store``."""
    from .. import surface

    doc = store.load(name)
    if doc is None:
        names = prob.train_obj.names
        line = surface.line(
            prob.train_obj,
            {k: start[k] for k in names},
            {k: end[k] for k in names},
            ts=ts,
            test=prob.test_obj,
            progress=progress,
        )
        doc = {
            "ts": [float(t) for t in ts],
            "train_loss": [float(v) for v in line.train_loss],
            "test_error": [float(v) for v in line.test_error],
            "distance": float(math.sqrt(sum(float(((end[k] - start[k]).double() ** 2).sum()) for k in names))),
        }
        store.save(name, doc)
    return doc


@register("swa-line")
def swa_line(*, seeds: Sequence[int], size: str, out_dir: Path, progress: bool) -> ExperimentResult:
    """SWA Revisited Fig. 7: the lines SWA → DSWA and SWA → TSWA of the Case II runs at C_h, every seed."""
    cfg = SETTINGS[size]
    t0 = time.perf_counter()
    rate = cfg["lr_high"]
    n = dict(cfg["case2_swa"])[rate]
    case2 = {**cfg, "case2_swa": ((rate, n),)}
    prob, runs = _runs("case2", seeds, case2, Path(out_dir), progress)
    points = cfg["line_points"]
    ts = np.linspace(-0.5, 1.5, points)  # (points − 1) divisible by 4: t = 0 and t = 1 are nodes
    i0, i1 = int(np.argmin(np.abs(ts))), int(np.argmin(np.abs(ts - 1.0)))
    lines: dict[str, list[dict]] = {"dswa": [], "tswa": []}
    for end in lines:
        for s in seeds:
            key = dict(start=runs[s]["start_key"], n=n, cycle=cfg["cycle"], rate=rate)
            store = prob.store(run="line", seed=s, end=end, ts=[float(t) for t in ts], **key)
            a, b = runs[s][rate]["swa"][1]["average"], runs[s][rate][end][1]["average"]
            lines[end].append(_line_values(prob, a, b, ts, store, f"seed{s}/line-swa-{end}", progress))
    claims = []
    note = f"Case II runs at the SWA rate {rate:g}; outward rise over 0.5 of the SWA–end distance on either side"
    if size == "quick":
        note += "; " + _NOT_EVIDENCE
    minima: dict[str, list[float]] = {}
    for end in lines:
        up_end = [d["train_loss"][-1] - d["train_loss"][i1] for d in lines[end]]
        up_swa = [d["train_loss"][0] - d["train_loss"][i0] for d in lines[end]]
        # where the training loss is lowest on the line: beyond t = 1 the line still descends past the end point,
        # and a small "rise" there says that, not that the end point sits in a wider basin
        minima[end] = [float(ts[int(np.argmin(d["train_loss"]))]) for d in lines[end]]
        beyond = sum(t > 1.0 for t in minima[end])
        where = (
            f"; the training loss along the line is lowest beyond {end.upper()} (t > 1) on {beyond} of "
            f"{len(seeds)} seeds: there the line still descends past the end point, so a smaller rise is not by "
            "itself a wider basin"
            if beyond
            else ""
        )
        claims.append(
            claim(
                f"Fig. 7: {end.upper()} lies in a flatter region than SWA (train loss rises less outward)",
                "§4: 'DSWA and TSWA find flatter optima than SWA' (Fig. 7; no number printed)",
                "rise of the training loss",
                (f"rise beyond {end.upper()} (t 1 → 1.5)", up_end),
                ("rise beyond SWA (t 0 → −0.5)", up_swa),
                "less",
                note=note + where,
            )
        )
        claims.append(
            claim(
                f"Fig. 7: test error at {end.upper()} is below that at SWA along the line",
                "Fig. 7 (curves; no number printed)",
                "test error, percentage points",
                (f"{end.upper()} (t = 1)", [100 * d["test_error"][i1] for d in lines[end]]),
                ("SWA (t = 0)", [100 * d["test_error"][i0] for d in lines[end]]),
                "less",
                note=note,
            )
        )
    return ExperimentResult(
        name="swa-line",
        title="SWA Revisited, Fig. 7: train loss and test error on the lines SWA → DSWA and SWA → TSWA (Case II)",
        settings={**case2, "ts": [float(t) for t in ts], "line_rate": rate},
        seeds=list(seeds),
        size=size,
        numbers={"lines": lines, "t_start": float(ts[i0]), "t_end": float(ts[i1]), "train_loss_minimum_t": minima},
        claims=claims,
        wall_s=time.perf_counter() - t0,
    )
