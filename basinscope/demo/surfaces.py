"""The demo's surface (first seed): the test-error plane through three SWA samples (SWA Revisited Fig. 6) with
every marked point evaluated. (The Fig. 7 lines are the ``swa-line`` experiment's.)"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["demo_plane"]


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


def demo_plane(obj, test_obj, samples, swa, cfg, folder: Path, store, progress: bool, timings: dict[str, float]):
    """Compute (or reload) the test-error plane through the three ``samples`` (state_dicts) with the SWA average
    ``swa`` marked; returns ``{"result": Surface2D, "json": dict}`` (marked points evaluated)."""
    from .. import surface
    from ..surface import Surface2D

    folder.mkdir(parents=True, exist_ok=True)
    names = obj.names

    def params(state):
        return {k: state[k] for k in names}

    plane_path = folder / "plane"
    if store.load("surface/plane") is not None and plane_path.with_suffix(".npz").is_file():
        plane = Surface2D.load(plane_path)
    else:
        t0 = time.perf_counter()
        plane = surface.plane(
            obj,
            *[params(s) for s in samples],
            test=test_obj,
            resolution=cfg.plane_resolution,
            labels=("sample 1", "sample 2", "sample 3"),
            marks={"SWA": params(swa)},
            store=folder / "plane-store",
            progress=progress,
        )
        plane.save(plane_path)
        store.save("surface/plane", {"seconds": time.perf_counter() - t0})
    timings["surface plane"] = plane.seconds
    pts = {f"sample {i + 1}": params(s) for i, s in enumerate(samples)}
    pts["SWA"] = params(swa)
    return {
        "result": plane,
        "json": {
            "alphas": plane.alphas,
            "betas": plane.betas,
            "train_loss": plane.train_loss,
            "test_error": plane.test_error,
            "points": plane.points,
            "point_labels": plane.point_labels,
            "marked_points": _marked(obj, test_obj, plane, pts),
            "seconds": plane.seconds,
        },
    }
