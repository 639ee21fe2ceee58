"""Every figure kind on tiny data: tick labels are plain numbers (``0.25``, ``−1``, ``2.2906``), an axis is
logarithmic only where its values span more than a decade (then labels are plain numbers or ``10^k``), colours
are viridis, and only the orthonormal plane gets equal aspect. Plotly pages: Viridis, no SI/exponent labels."""

from __future__ import annotations

import dataclasses
import re

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from matplotlib.colors import LogNorm

from basinscope.hessian.results import DensityResult
from basinscope.optim.result import TrainResult
from basinscope.surface import CurveResult, Surface1D, Surface2D
from basinscope.toy.results import EscapeResult, SALRTrace, SharpnessProfile

PLAIN = re.compile(r"^[−-]?\d+(\.\d+)?$")
POWER = re.compile(r"^\$10\^\{[−-]?\d+\}\$$")

A = np.linspace(-0.5, 1.5, 9)
B = np.linspace(-0.4, 1.2, 7)
AA, BB = np.meshgrid(A, B)
BOWL = (AA - 0.4) ** 2 + (BB - 0.3) ** 2
NARROW = 2.2906 + 0.002 * BOWL  # a few per mille: the case that used to read 2.2906×10⁰
WIDE = 1e-3 + 4 * BOWL**1.5  # spans decades
PTS = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.34, 0.33], [0.35, 0.33]])
LABELS = ["w1", "w2", "w3", "SWA", "DSWA"]
T = np.linspace(-0.5, 1.5, 11)


def _plane(z, kind="plane"):
    return Surface2D(A, B, z, test_error=z / 10, points=PTS, point_labels=LABELS,
                     point_indices=[[0, 0], [-1, -1], [-1, -1], [-1, -1], [-1, -1]], kind=kind)  # fmt: skip


def _curve(scale):
    t = np.linspace(0, 1, 11)
    curve = {"train_loss": 2.2906 + scale * 0.01 * t * (1 - t), "test_error": 0.30 + 0.004 * t}
    line = {"train_loss": 2.2906 + scale * t * (1 - t) ** 3, "test_error": 0.30 + 0.2 * t * (1 - t)}
    barrier = {
        p: {m: float(v.max() - (v[0] + v[-1]) / 2) for m, v in d.items()} for p, d in (("curve", curve), ("line", line))
    }
    as_lists = lambda d: {m: v.tolist() for m, v in d.items()}  # noqa: E731
    return CurveResult("bezier", t, as_lists(curve), as_lists(line), barrier, {"w": torch.zeros(1)}, np.zeros(0))


def _history(loss):
    n = len(loss)
    sharp = torch.full((n,), float("nan"))
    sharp[::3] = torch.linspace(0.004, 0.006, len(sharp[::3]))
    hist = {"loss": torch.tensor(loss), "lr": torch.linspace(0.05, 0.051, n), "sharpness": sharp}
    return TrainResult("salr-sgd", hist, {}, n, n, {})


def _density(spread):
    grid = torch.linspace(-1, 5, 200, dtype=torch.float64)
    y = torch.exp(-((grid - 1) ** 2) / 2) * spread + 1.0
    nodes = torch.zeros(1, 2)
    return DensityResult(grid, y, nodes, torch.ones(1, 2) / 2, 0.1, "native")


_TOY_X = np.linspace(-3, 3, 50)
_TOY = {
    "toy-sharpness": lambda: SharpnessProfile(
        _TOY_X,
        _TOY_X,
        0.01 + 0 * _TOY_X,
        0.02 + 0 * _TOY_X,
        0.03 + 0.001 * _TOY_X,
        _TOY_X,
        np.sin(_TOY_X) + 1,
        settings={"epsilon": 0.1, "gamma": 0.01},
    ),
    "toy-escape": lambda: EscapeResult(
        ["GD", "GD-SALR"],
        np.stack([np.linspace(-1.5, -1.0, 20)] * 2),
        np.full((2, 20), 0.01),
        np.full((2, 20), np.nan),
        -1.0,
        0.3,
        _TOY_X,
        np.sin(_TOY_X) + 1,
    ),
    "toy-salr": lambda: SALRTrace(
        np.linspace(2.9, 3.6, 20),
        np.linspace(0.02, 0.0201, 20),
        np.linspace(0.5, 0.501, 20),
        _TOY_X,
        np.sin(_TOY_X) + 1,
    ),
}

FIGURES = {
    "plane-narrow": lambda: _plane(NARROW).plot(metric="train_loss"),
    "plane-wide": lambda: _plane(WIDE).plot(metric="train_loss"),
    "plane-3d-narrow": lambda: _plane(NARROW).plot(metric="train_loss", kind="surface"),
    "plane-3d-wide": lambda: _plane(WIDE).plot(metric="train_loss", kind="surface"),
    "random-plane": lambda: _plane(NARROW, "random_plane").plot(metric="test_error"),
    "hessian-plane": lambda: _plane(NARROW, "hessian_plane").plot(metric="test_error"),
    "pca-plane": lambda: dataclasses.replace(
        _plane(NARROW, "pca_plane"), path=PTS[:3], settings={"explained_variance_ratio": [0.93, 0.05]}
    ).plot(metric="train_loss"),
    "curve-narrow": lambda: _curve(1e-4).plot(),
    "curve-wide": lambda: _curve(1e3).plot(),
    "line-narrow": lambda: Surface1D(
        T,
        2.2906 + 0.003 * T**2,
        test_error=0.30 + 0.004 * T,
        points=np.array([0.0, 0.02, 1.0]),
        point_labels=["a", "b", "c"],
    ).plot(),
    "line-wide": lambda: Surface1D(T, 1e-3 + 5 * T**4, test_error=0.05 + 0.2 * T**2).plot(),
    "density-log": lambda: _density(1e6).plot(),
    "density-narrow": lambda: _density(0.01).plot(),
    "training-narrow": lambda: _history([2.3012, 2.3008, 2.3005, 2.3001, 2.2998, 2.2995, 2.2991]).plot(),
    "training-wide": lambda: _history([2.3, 1.0, 0.3, 0.1, 0.03, 0.01, 0.005]).plot(),
    **{k: (lambda make=make: make().plot()) for k, make in _TOY.items()},
}


def _tick_labels(fig):
    fig.draw_without_rendering()
    out = []
    for ax in fig.axes:
        for name in ("x", "y", "z"):
            axis = getattr(ax, f"{name}axis", None)
            if axis is None or not axis.get_visible():
                continue
            texts = [t.get_text() for t in axis.get_ticklabels(minor=False) + axis.get_ticklabels(minor=True)]
            out.append((axis.get_scale(), [t for t in texts if t], axis.get_offset_text().get_text()))
    return out


@pytest.mark.parametrize("name", list(FIGURES))
def test_every_tick_label_is_a_plain_number(name):
    fig = FIGURES[name]()
    axes = _tick_labels(fig)
    assert axes and any(labels for _, labels, _ in axes)
    for scale, labels, offset in axes:
        assert not offset, (name, offset)  # no "+2.29" or "1e-3" beside the axis
        for text in labels:
            ok = PLAIN.match(text) or (scale == "log" and POWER.match(text))
            assert ok, (name, scale, text)


@pytest.mark.parametrize(
    "name, log_axes",
    [("line-narrow", 0), ("line-wide", 1), ("density-narrow", 0), ("density-log", 1),
     ("training-narrow", 0), ("training-wide", 1), ("curve-narrow", 0), ("curve-wide", 1)],
)  # fmt: skip
def test_log_axis_only_across_decades(name, log_axes):
    fig = FIGURES[name]()
    scales = [ax.get_yscale() for ax in fig.axes]
    assert scales.count("log") == log_axes, scales


def test_planes_use_viridis_with_log_colours_only_across_decades_and_equal_aspect_only_when_orthonormal():
    narrow, wide, rand = (FIGURES[k]() for k in ("plane-narrow", "plane-wide", "random-plane"))
    for fig in (narrow, wide, rand):
        assert fig.axes[0].collections[0].get_cmap().name == "viridis"
    assert not isinstance(narrow.axes[0].collections[0].norm, LogNorm)
    assert isinstance(wide.axes[0].collections[0].norm, LogNorm)
    assert narrow.axes[0].get_aspect() == 1.0  # Gram-Schmidt basis of the plane through three points
    assert rand.axes[0].get_aspect() == "auto"  # random filter-normalized directions: not orthonormal
    assert FIGURES["hessian-plane"]().axes[0].get_aspect() == 1.0  # orthonormal eigenvectors
    pca = FIGURES["pca-plane"]()
    assert pca.axes[0].get_aspect() == "auto"  # orthonormal, but the 2nd direction is often tiny: free aspect
    assert "93.00 %" in pca.axes[0].get_xlabel() and "5.00 %" in pca.axes[0].get_ylabel()
    assert len(pca.axes[0].lines) >= 1  # the trajectory drawn over the contours
    assert FIGURES["plane-3d-wide"]().axes[0].collections[0].get_cmap().name == "viridis"


def test_point_labels_do_not_overlap():
    from matplotlib.text import Text

    for fig in (FIGURES["plane-narrow"](), FIGURES["line-narrow"]()):
        fig.draw_without_rendering()
        renderer = fig.canvas.get_renderer()
        boxes = [Text.get_window_extent(t, renderer) for t in fig.axes[0].texts]
        assert len(boxes) >= 3
        assert not any(boxes[i].overlaps(boxes[j]) for i in range(len(boxes)) for j in range(i + 1, len(boxes)))


def _plotly_axes(fig):
    layout = fig.layout.to_plotly_json()
    axes = {k: v for k, v in layout.items() if re.match(r"^[xy]axis\d*$", k)}
    for k, v in layout.items():
        if k.startswith("scene"):
            axes.update({f"{k}.{a}": v.get(a, {}) for a in ("xaxis", "yaxis", "zaxis")})
    return axes


@pytest.mark.parametrize(
    "make, log_axes",
    [
        (lambda: _plane(NARROW).plot("plotly", metric="train_loss"), []),
        (lambda: _plane(WIDE).plot("plotly", metric="train_loss", kind="contour"), []),
        (lambda: Surface1D(T, 1e-3 + 5 * T**4, test_error=0.05 + 0.2 * T**2).plot("plotly"), ["yaxis"]),
        (lambda: _density(1e6).plot("plotly"), ["yaxis"]),
        (lambda: _history([2.3, 1.0, 0.3, 0.1, 0.03, 0.01, 0.005]).plot("plotly"), ["yaxis"]),
        (lambda: _TOY["toy-salr"]().plot("plotly"), []),
        (lambda: _curve(1e-4).plot("plotly"), []),
        (lambda: _curve(1e3).plot("plotly"), ["yaxis"]),
    ],
    ids=["plane", "plane-wide-contour", "line", "density", "training", "toy", "curve", "curve-wide"],
)
def test_plotly_pages_use_plain_labels_and_viridis(make, log_axes):
    fig = make()
    axes = _plotly_axes(fig)
    assert axes
    for key, ax in axes.items():
        if key in log_axes:
            assert ax.get("type") == "log", key
        else:
            assert ax.get("type") != "log" and ax.get("exponentformat") == "none", (key, ax)
    for trace in fig.data:
        if "colorscale" in trace and trace.colorscale is not None:
            assert trace.colorscale[0][1].lower() in ("#440154", "rgb(68,1,84)"), trace.colorscale[0]
