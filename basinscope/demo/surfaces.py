"""The demo's surfaces (first seed): the test-error plane through three SWA samples with every marked point
evaluated, the Case II SWA→DSWA and SWA→TSWA lines (SWA Revisited Fig. 7) and the Case I SWA→DSWA line
(Fig. 8)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["LINES", "demo_surfaces"]

#: name -> (start solution, end solution, title)
LINES = {
    "line_case2_dswa": ("case2/swa", "case2/dswa", "Case II: SWA → DSWA"),
    "line_case2_tswa": ("case2/swa", "case2/tswa", "Case II: SWA → TSWA"),
    "line_case1_dswa": ("case1/swa", "case1/dswa", "Case I: SWA → DSWA"),
}


def _interpolate(surf, metric: str, a: float, b: float) -> float:
    """Bilinear interpolation of a plane's metric at plane coordinates (a, b)."""
    from scipy.interpolate import RegularGridInterpolator

    f = RegularGridInterpolator((surf.betas, surf.alphas), np.asarray(surf.values(metric)), bounds_error=False)
    return float(f([[b, a]])[0])


def _marked(obj, test_obj, plane, pts: dict[str, dict]) -> list[dict[str, Any]]:
    """Every marked point of the plane evaluated at its own weights, beside the plane's value at its place
    (exact for the samples, on grid nodes; the bilinear interpolation at the projection for the SWA average)
    and its distance from the plane."""
    rows = []
    offsets = plane.settings.get("mark_offsets_from_plane", {})
    for label, (a, b) in zip(plane.point_labels, plane.points):
        tr, te = obj.evaluate(pts[label]), test_obj.evaluate(pts[label])
        rows.append(
            {
                "point": label,
                "train_loss": tr["loss"],
                "test_error": te["error"],
                "plane_train_loss": _interpolate(plane, "train_loss", float(a), float(b)),
                "plane_test_error": _interpolate(plane, "test_error", float(a), float(b)),
                "distance_from_plane": float(offsets.get(label, 0.0)),
            }
        )
    return rows


def demo_surfaces(obj, test_obj, samples, weights, cfg, folder: Path, store, key, progress, bar, timings):
    """Compute (or reload) the plane and the lines; returns ``{name: {"result": Surface, "json": dict}}``."""
    from .. import surface
    from ..surface import Surface1D, Surface2D

    out: dict[str, Any] = {}
    folder.mkdir(parents=True, exist_ok=True)
    names = obj.names

    def params(state):
        return {k: state[k] for k in names}

    bar.stage("plane")
    plane_path = folder / "plane"
    if store.load(f"{key}/surface/plane") is not None and plane_path.with_suffix(".npz").is_file():
        plane = Surface2D.load(plane_path)
    else:
        t0 = time.perf_counter()
        plane = surface.plane(
            obj,
            *[params(s) for s in samples],
            test=test_obj,
            resolution=cfg.plane_resolution,
            labels=("sample 1", "sample 2", "sample 3"),
            marks={"SWA": params(weights["case1/swa"])},
            store=folder / "plane-store",
            progress=progress,
        )
        plane.save(plane_path)
        store.save(f"{key}/surface/plane", {"seconds": time.perf_counter() - t0})
    timings["surface plane"] = plane.seconds
    pts = {f"sample {i + 1}": params(s) for i, s in enumerate(samples)}
    pts["SWA"] = params(weights["case1/swa"])
    marked = _marked(obj, test_obj, plane, pts)
    bar.done()
    out["plane"] = {
        "result": plane,
        "json": {
            "alphas": plane.alphas,
            "betas": plane.betas,
            "train_loss": plane.train_loss,
            "test_error": plane.test_error,
            "points": plane.points,
            "point_labels": plane.point_labels,
            "marked_points": marked,
            "seconds": plane.seconds,
        },
    }

    bar.stage("lines")
    for name, (a, b, title) in LINES.items():
        path = folder / name
        if store.load(f"{key}/surface/{name}") is not None and path.with_suffix(".npz").is_file():
            line = Surface1D.load(path)
        else:
            t0 = time.perf_counter()
            line = surface.line(
                obj,
                params(weights[a]),
                params(weights[b]),
                test=test_obj,
                ts=np.linspace(-0.5, 1.5, cfg.line_points),
                labels=(a.split("/")[1].upper(), b.split("/")[1].upper()),
                store=folder / f"{name}-store",
                progress=progress,
            )
            line.save(path)
            store.save(f"{key}/surface/{name}", {"seconds": time.perf_counter() - t0})
        timings[f"surface {name}"] = line.seconds
        out[name] = {
            "result": line,
            "json": {
                "title": title,
                "start": a,
                "end": b,
                "ts": line.ts,
                "train_loss": line.train_loss,
                "test_error": line.test_error,
                "labels": line.point_labels,
                "seconds": line.seconds,
            },
        }
    bar.done()
    return out
