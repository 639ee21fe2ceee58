"""The shared figure style: scale choice, plain tick labels, colour norms, non-overlapping labels."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import numpy as np
from matplotlib.colors import LogNorm, Normalize

from basinscope import style

PLAIN = re.compile(r"^[−-]?\d+(\.\d+)?$")


def test_choose_scale():
    assert style.choose_scale([2.2906, 2.2911]) == "linear"
    assert style.choose_scale([0.01, 0.5]) == "log"
    assert style.choose_scale([-1.0, 100.0]) == "linear"
    assert style.choose_scale([np.nan, 1.0, 5.0]) == "linear"


def test_plain_ticks_on_a_narrow_range():
    fig, ax = style.new_figure()
    ax.plot([0, 1, 2], [2.2906, 2.2909, 2.2911])
    style.apply_scale(ax, [2.2906, 2.2909, 2.2911])
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert labels and all(PLAIN.match(s) for s in labels), labels
    assert not ax.yaxis.get_offset_text().get_text()


def test_color_norm():
    assert isinstance(style.color_norm([0.01, 0.9]), LogNorm)
    n = style.color_norm([0.4, 0.5])
    assert isinstance(n, Normalize) and not isinstance(n, LogNorm)


def test_labels_do_not_overlap():
    fig, ax = style.new_figure()
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    style.label_points(ax, {"SWA": (0.5, 0.5), "DSWA": (0.505, 0.5), "TSWA": (0.5, 0.505)})
    fig.canvas.draw()
    from matplotlib.text import Text

    boxes = [Text.get_window_extent(t, fig.canvas.get_renderer()) for t in ax.texts]
    assert len(boxes) == 3
    assert not any(boxes[i].overlaps(boxes[j]) for i in range(3) for j in range(i + 1, 3))


def test_plotly_labels_of_close_points_take_different_corners():
    pos = style.plotly_text_positions([[0, 0], [1, 0], [0, 1], [0.34, 0.33], [0.35, 0.33], [0.345, 0.335]])
    assert pos[:4] == ["top right"] * 4
    assert len(set(pos[3:])) == 3  # SWA, DSWA and TSWA side by side: three corners
    assert style.plotly_text_positions([]) == []


def test_log_axis_labels_are_plain_numbers_within_range():
    assert [style._log_label(v) for v in (0.001, 0.02, 1.0, 500.0)] == ["0.001", "0.02", "1", "500"]
    assert style._log_label(1e-6) == "$10^{-6}$" and style._log_label(1e7) == "$10^{7}$"
