"""Save/load round trips; plots written as non-empty files; plotly HTML is self-contained and renders."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from basinscope.surface import Surface1D, Surface2D, line, plane, random_plane

from ._surface_dist_script import problem


@pytest.fixture(scope="module")
def surfaces():
    obj, test, w1, w2, w3 = problem()
    s = plane(
        obj,
        w1,
        w2,
        w3,
        test=test,
        resolution=6,
        progress=False,
        marks={"avg": {k: (w1[k] + w2[k] + w3[k]) / 3 for k in w1}},
    )
    l = line(obj, w1, w2, ts=np.linspace(-0.5, 1.5, 9), test=test, progress=False)
    r = random_plane(obj, resolution=5, progress=False)
    return s, l, r


def test_save_load_round_trip(surfaces, tmp_path):
    for res, cls in zip(surfaces, (Surface2D, Surface1D, Surface2D)):
        back = cls.load(res.save(tmp_path / res.kind))
        for f in ("train_loss", "train_error", "test_loss", "test_error", "points"):
            a, b = getattr(res, f), getattr(back, f)
            assert (a is None and b is None) or np.array_equal(a, b), f
        assert back.point_labels == res.point_labels and back.settings == res.settings and back.cost == res.cost
        if cls is Surface2D:
            assert np.array_equal(back.alphas, res.alphas) and back.point_indices == res.point_indices


@pytest.mark.parametrize(
    "which, kwargs, suffix",
    [
        (0, {}, "png"),
        (0, {"metric": "train_loss", "kind": "surface"}, "png"),
        (2, {"metric": "train_error"}, "pdf"),
        (1, {}, "png"),
        (1, {"metric": "test_loss"}, "svg"),
        (0, {"backend": "plotly"}, "html"),
        (0, {"backend": "plotly", "kind": "contour", "metric": "train_loss"}, "html"),
        (1, {"backend": "plotly"}, "html"),
    ],
    ids=["contour", "surface3d", "random-pdf", "line-twin", "line-one", "plotly-both", "plotly-contour", "plotly-line"],
)
def test_plot_files_non_empty(surfaces, tmp_path, which, kwargs, suffix):
    path = tmp_path / f"plot.{suffix}"
    fig = surfaces[which].plot(path=str(path), **kwargs)
    assert fig is not None and path.stat().st_size > 5000
    if suffix == "html":
        html = path.read_text()
        assert re.search(r"<script[^>]*\bsrc=", html) is None  # plotly.js embedded, no CDN script tag
        assert len(html) > 1_000_000


def test_matplotlib_contour_levels_are_log_spaced_only_across_decades(surfaces):
    s = surfaces[0]
    z = s.values("test_error")
    spread = np.log10(z.max() / z.min()) if z.min() > 0 else 0.0
    assert spread < 1  # the tiny problem's test error spans less than a decade: even levels, linear colours
    fig = s.plot(metric="test_error", levels=12)
    ax = fig.axes[0]
    levels = np.asarray(ax.collections[0].levels)
    assert len(levels) == 12
    np.testing.assert_allclose(np.diff(levels), np.diff(levels)[0], rtol=1e-9)
    a = np.linspace(-1, 1, 9)
    wide = Surface2D(alphas=a, betas=a, train_loss=1e-3 + np.add.outer(a**2, a**2), kind="random_plane")
    levels = np.asarray(wide.plot(metric="train_loss", levels=12).axes[0].collections[0].levels)
    ratios = levels[1:] / levels[:-1]
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-9)  # geometric, i.e. log-spaced
    assert ratios[0] > 1.0
    labels = [t.get_text() for t in ax.texts]
    assert labels == ["w1", "w2", "w3", "avg"]
    with pytest.raises(ValueError, match=r"backend: expected one of 'matplotlib', 'plotly', got 'bokeh'"):
        s.plot(backend="bokeh")
    with pytest.raises(ValueError, match=r"kind: expected one of 'contour', 'surface', got 'both'"):
        s.plot(kind="both")


def _browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def test_plotly_html_renders_in_headless_chromium(surfaces, tmp_path):
    browser = _browser()
    if browser is None:
        pytest.skip("no chromium/chrome executable found on PATH (apt-get install -y chromium)")
    html = tmp_path / "surface.html"
    surfaces[0].plot(backend="plotly", path=str(html))
    shot = tmp_path / "shot.png"
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--enable-unsafe-swiftshader", f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}",
           f"--screenshot={shot}", "--window-size=1200,650", html.resolve().as_uri()]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(tmp_path)})
    assert shot.is_file(), proc.stderr[-2000:]
    import matplotlib.image

    img = matplotlib.image.imread(str(shot))[..., :3]
    non_white = (img < 0.95).any(axis=-1).mean()
    colours = len(np.unique((img * 255).astype(np.uint8).reshape(-1, 3), axis=0))
    # plotly draws the surface and the contour map only after its JavaScript ran: many colours, much ink
    assert non_white > 0.15, non_white
    assert colours > 200, colours


def test_plot_does_not_need_pyplot_state(surfaces, tmp_path):
    import matplotlib.pyplot as plt

    n = len(plt.get_fignums())
    surfaces[1].plot(path=str(Path(tmp_path) / "a.png"))
    assert len(plt.get_fignums()) == n


@pytest.mark.parametrize("suffix", [".png", ".html"])
def test_plot_replaces_a_planted_symlink_without_touching_its_target(surfaces, tmp_path, suffix):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    path = tmp_path / f"plane{suffix}"
    path.symlink_to(victim)
    surfaces[0].plot("matplotlib" if suffix == ".png" else "plotly", path=str(path))
    assert victim.read_text() == "precious"
    assert not path.is_symlink() and path.stat().st_size > 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([victim.name, path.name])  # no temporary left
