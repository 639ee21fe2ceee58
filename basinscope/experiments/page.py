"""The verdict table and the HTML page of experiment results (``basinscope reproduce`` and the demo report).

Layout (the reader's question first): a table with one row per paper claim — the claim, the paper's number as
printed, the number measured here (paired mean difference with its 95 % interval over seeds), the verdict — then
the figures, then everything else (settings, per-seed numbers, notes) folded in ``<details>`` blocks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..report import Report
from .result import ExperimentResult

__all__ = ["VERDICT_CLASSES", "add_experiment_details", "add_verdict_table", "verdict_rows", "write_page"]

#: verdict → CSS class of its cell (green, red, amber).
VERDICT_CLASSES = {v: v for v in ("reproduces", "contradicts", "inconclusive")}


def verdict_rows(results: Sequence[ExperimentResult]) -> list[dict[str, Any]]:
    """One row per claim of every result: experiment, claim, paper, here (a − b with the interval), verdict."""
    rows = []
    for res in results:
        for c in res.claims:
            iv = c.interval
            here = f"{iv.format()} (n = {iv.n}, {'t' if iv.method == 't' else 'bootstrap'})"
            rows.append(
                {
                    "experiment": res.name,
                    "claim": c.text,
                    "paper": c.paper,
                    "compared": f"{c.a} − {c.b} ({c.metric})",
                    "here: mean [95 % interval]": here,
                    "verdict": c.verdict,
                    "note": c.note,
                }
            )
    return rows


def add_verdict_table(rep: Report, results: Sequence[ExperimentResult]) -> None:
    """One verdict table per experiment (claim and verdict first, so that a phone shows them without scrolling),
    with the notes and how to read the verdicts folded below."""
    rows = verdict_rows(results)
    cols = ["claim", "verdict", "here: mean [95 % interval]", "paper", "compared"]
    for res in results:
        mine = [r for r in rows if r["experiment"] == res.name]
        if mine:
            rep.table(mine, columns=cols, caption=f"{res.name}: {res.title}", classes={"verdict": VERDICT_CLASSES})
    rep.open_details("How to read the verdicts, and the notes of every row")
    rep.text(
        "Each claim is a paired comparison over seeds: for every seed the difference a − b; 'here' is the mean "
        "difference with its 95 % interval (Student t over the seeds, or a paired bootstrap for a spread). A "
        "directional claim reproduces when the whole interval lies on the claimed side of zero, is contradicted "
        "when it lies on the other side, and is inconclusive when it contains zero; a claim of no change reproduces "
        "when the interval lies inside the stated band. Numbers of a quick run are not evidence."
    )
    rep.table(
        [{"experiment": r["experiment"], "claim": r["claim"], "note": r["note"]} for r in rows if r["note"]],
        columns=["experiment", "claim", "note"],
    )
    rep.close_details()


def add_experiment_details(rep: Report, res: ExperimentResult) -> None:
    """Settings, seeds and wall time of ``res``, folded."""
    rep.open_details(f"{res.name}: settings, seeds, wall time")
    rep.text(
        f"{res.title}. Size {res.size}; seeds {', '.join(map(str, res.seeds))}; "
        f"computed in {res.wall_s:.0f} s (parts reused from an earlier run count 0)."
    )
    rep.table([{"setting": k, "value": str(v)} for k, v in res.settings.items()], columns=["setting", "value"])
    rep.close_details()


def write_page(
    results: Sequence[ExperimentResult],
    folder: str | Path,
    figures: Mapping[str, Mapping[str, Path]],
    *,
    title: str = "basinscope reproduce",
    subtitle: str | None = None,
) -> Path:
    """``folder/index.html``: the verdict table, each experiment's figures, then its settings folded."""
    rep = Report(title, folder, subtitle=subtitle)
    rep.heading("Paper claims and verdicts")
    add_verdict_table(rep, results)
    for res in results:
        rep.heading(res.title)
        for caption, path in figures.get(res.name, {}).items():
            rep.figure(path, caption=caption)
        add_experiment_details(rep, res)
        rep.link(Path(folder) / res.name / "result.json", f"{res.name}: every number (result.json)")
    return rep.write("index.html")
