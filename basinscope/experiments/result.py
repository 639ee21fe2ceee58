"""The result of one paper experiment: its settings, seeds, numbers and claims with verdicts.

Every table or figure of the two papers that the toolkit reproduces is a function returning an
:class:`ExperimentResult` (see :mod:`basinscope.experiments`). The demo report and ``basinscope reproduce NAME``
are built from these objects; nothing in a report is computed outside them.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._checks import check_choice, fail
from ..report.json import jsonable
from ..results import atomic_write_bytes
from .stats import VERDICTS, Interval, paired_difference, verdict

__all__ = ["Claim", "ExperimentResult", "claim"]


@dataclasses.dataclass(frozen=True)
class Claim:
    """One "paper says / here" row.

    Attributes:
        text: the claim in words ("DSWA beats SWA in Case II (Table 1)").
        paper: the paper's number, as printed (a string: "+0.9 points", "SGD 92.0 vs SWA 93.2").
        metric: what was compared (e.g. "test accuracy, %").
        a, b: the two compared quantities' names (difference a − b).
        interval: the paired difference over seeds with its 95 % interval.
        expected: "greater", "less" or "equal".
        verdict: "reproduces", "contradicts" or "inconclusive".
        note: anything the reader must know to read the row (settings that differ from the paper's).
    """

    text: str
    paper: str
    metric: str
    a: str
    b: str
    interval: Interval
    expected: str
    verdict: str
    note: str = ""


def claim(
    text: str,
    paper: str,
    metric: str,
    a: tuple[str, Sequence[float]],
    b: tuple[str, Sequence[float]],
    expected: str,
    *,
    margin: float = 0.0,
    note: str = "",
    method: str = "t",
) -> Claim:
    """Build a :class:`Claim` from per-seed values of ``a`` and ``b`` (same seed order): interval and verdict.

    Example:
        >>> c = claim("a beats b", "+1", "acc", ("a", [2.0, 3.0, 4.0]), ("b", [1.0, 1.5, 2.0]), "greater")
        >>> c.verdict
        'reproduces'
    """
    iv = paired_difference(a[1], b[1], method=method)
    return Claim(text, paper, metric, a[0], b[0], iv, expected, verdict(iv, expected, margin=margin), note)


@dataclasses.dataclass(frozen=True)
class ExperimentResult:
    """What one experiment measured.

    Attributes:
        name: the experiment's registry name (``basinscope reproduce NAME``).
        title: which table or figure of which paper it reproduces.
        settings: every setting that determines the numbers (model, data, budgets, rates, schedule).
        seeds: the seeds run.
        size: "quick" (test mode; its numbers are not evidence), "demo" or "full".
        numbers: the measured values, JSON-ready (per method and seed, curves, sweeps).
        claims: the paper's claims with intervals and verdicts.
        wall_s: wall-clock seconds of the computation (0 for parts reused from a store).
    """

    name: str
    title: str
    settings: dict[str, Any]
    seeds: list[int]
    size: str
    numbers: dict[str, Any]
    claims: list[Claim]
    wall_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return jsonable(dataclasses.asdict(self))

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``path`` (JSON) atomically; returns it."""
        path = Path(path)
        atomic_write_bytes(path, json.dumps(self.to_dict(), indent=1, allow_nan=False).encode())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> ExperimentResult:
        """Read a result written by :meth:`save` (one-line error on a file of another kind)."""
        try:
            doc = json.loads(Path(path).read_text())
            claims = []
            for c in doc["claims"]:
                c = dict(c)
                c["interval"] = Interval(**c["interval"])
                check_choice("verdict", c["verdict"], VERDICTS)
                claims.append(Claim(**c))
            doc["claims"] = claims
            return cls(**doc)
        except (OSError, ValueError, KeyError, TypeError) as e:
            fail("path", "an experiment result written by ExperimentResult.save", f"'{path}' ({e})", raw=True)
