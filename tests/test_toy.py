"""The 1-D teaching functions and demos (SALR paper, Figs. 1–3, Theorems 1–2), and the example script."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from landscape.toy import (
    SHARP_FLAT_MINIMA,
    EscapeResult,
    escape_demo,
    salr_toy,
    salr_toy_critical_points,
    salr_trace,
    sharp_flat,
    sharpness_profile,
)

ROOT = Path(__file__).resolve().parents[1]


def toy_np(t):
    return 0.5 * t * np.sin(3 * t) + 1.0


def toy_grad_np(t):
    return 0.5 * np.sin(3 * t) + 1.5 * t * np.cos(3 * t)


# ---------------------------------------------------------------- functions
def test_salr_toy_is_the_papers_function():
    t = np.linspace(-3, 3, 13)
    assert np.allclose(salr_toy(torch.tensor(t)).numpy(), toy_np(t), atol=1e-15)


def test_critical_points_of_salr_toy():
    minima, maxima = salr_toy_critical_points(-3, 3)
    assert len(minima) == 3 and len(maxima) == 4
    for t in minima + maxima:
        assert abs(toy_grad_np(t)) < 1e-12
    for t in maxima:
        assert toy_np(t) > max(toy_np(t - 1e-3), toy_np(t + 1e-3))


def test_sharp_flat_has_two_minima_of_equal_depth_and_different_curvature():
    a, b = SHARP_FLAT_MINIMA
    pts = torch.tensor([a, b], dtype=torch.float64)
    values = sharp_flat(pts)
    assert abs(float(values[0] - values[1])) < 1e-7 and abs(float(values[1])) < 1e-12
    hess = torch.func.hessian(lambda x: sharp_flat(x).sum())(pts).diagonal()
    assert float(hess[0]) == pytest.approx(145.0, rel=1e-6)
    assert float(hess[1]) == pytest.approx(4.1, rel=1e-6)
    grid = torch.linspace(-3, 4, 7001, dtype=torch.float64)
    assert float(sharp_flat(grid).min()) >= float(values.min()) - 1e-12  # no deeper point anywhere


# ---------------------------------------------------------------- Fig. 2
def test_profile_reproduces_fig2_claims():
    _, maxima = salr_toy_critical_points(-3, 3)
    minima, _ = salr_toy_critical_points(-3, 3)
    prof = sharpness_profile(thetas=[*maxima, 1.1, -2.2], epsilon=0.1)
    n = len(maxima)
    assert np.all(np.abs(prof.phi[:n]) < 1e-12)  # ϕ ≈ 0 at local maxima
    assert np.all(prof.two_sided[:n] > 0.01) and np.all(prof.probe[:n] > 0.01)  # S, Ŝ are not
    assert np.all(prof.phi[n:] > 0.01)  # away from maxima ϕ is positive
    assert np.allclose(prof.f, toy_np(prof.thetas), atol=1e-15)
    assert prof.settings["gamma"] == pytest.approx(0.05)
    # at a minimum, S equals ϕ times the normalization 1 + f (eq. 2 equivalent to eq. 1)
    at_min = sharpness_profile(thetas=minima, epsilon=0.1)
    assert np.allclose(at_min.two_sided, at_min.phi * (1 + at_min.f), rtol=1e-6)


# ---------------------------------------------------------------- Theorems 1–2
def test_escape_demo_gd_stays_gd_salr_leaves():
    r = escape_demo(steps=30)
    a = SHARP_FLAT_MINIMA[0]
    gd_path = r.paths[r.names.index("GD")]
    salr_path = r.paths[r.names.index("GD-SALR")]
    assert np.all(np.abs(gd_path - a) <= r.radius)  # every GD iterate stays in B_δ(θ*)
    assert abs(r.final("GD") - a) < 1e-6  # and converges to the sharp minimum
    assert not r.escaped("GD")
    assert r.escaped("GD-SALR")
    assert r.final("GD-SALR") > a + r.radius  # left on the side of the flat minimum …
    assert np.all(np.diff(salr_path[1:]) > 0)  # … and moves on towards it
    # the SALR rate exceeds the escape threshold 2/μ of Theorem 1 on the first step (μ = f''(θ*) = 145)
    assert r.lrs[r.names.index("GD-SALR")][0] > 2 / 145.0
    # with an empty history the rule only sees the sharp well: it behaves like GD and stays
    assert not r.escaped("GD-SALR (no history)")


def test_escape_demo_trajectories_follow_gd_updates():
    r = escape_demo(steps=8)
    grad = torch.func.grad(lambda t: sharp_flat(t))
    for i in range(len(r.names)):
        path, lrs = r.paths[i], r.lrs[i]
        for k in range(8):
            step = lrs[k] * float(grad(torch.tensor(path[k], dtype=torch.float64)))
            assert path[k + 1] == pytest.approx(path[k] - step, abs=1e-13)


# ---------------------------------------------------------------- Fig. 3 (right)
def test_salr_trace_learning_rate_is_eta0_times_sharpness_over_running_median():
    tr = salr_trace(steps=25, eta0=0.02)
    expected = [0.02 * tr.sharpness[k] / np.median(tr.sharpness[: k + 1]) for k in range(25)]
    assert np.allclose(tr.lrs, expected, rtol=1e-12)
    for k in range(25):
        assert tr.path[k + 1] == pytest.approx(tr.path[k] - tr.lrs[k] * toy_grad_np(tr.path[k]), abs=1e-13)
    # Ŝ_k matches Definition 1 computed independently at every iterate
    gamma, n = tr.settings["gamma"], tr.settings["n_descent"]
    for k in range(0, 25, 6):
        lo = hi = tr.path[k]
        for _ in range(n):
            lo -= gamma * np.sign(toy_grad_np(lo))
            hi += gamma * np.sign(toy_grad_np(hi))
        assert tr.sharpness[k] == pytest.approx(toy_np(hi) - toy_np(lo), abs=1e-13)


# ---------------------------------------------------------------- plots and persistence
@pytest.fixture(scope="module")
def small_results():
    return {
        "profile": sharpness_profile(thetas=np.linspace(-1, 1, 5), epsilon=0.1),
        "escape": escape_demo(steps=5),
        "trace": salr_trace(steps=5),
    }


@pytest.mark.parametrize("name", ["profile", "escape", "trace"])
def test_plots_write_png_and_self_contained_html(small_results, name, tmp_path):
    r = small_results[name]
    png, html = tmp_path / f"{name}.png", tmp_path / f"{name}.html"
    fig = r.plot(backend="matplotlib", path=png)
    assert fig is not None and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r.plot(backend="plotly", path=html)
    text = html.read_text()
    assert "<html>" in text and "Plotly.newPlot" in text
    assert "<script src=" not in text and len(text) > 1_000_000  # plotly.js embedded, not loaded from a CDN


def test_plot_on_given_axes(small_results):
    from matplotlib.figure import Figure

    fig = Figure()
    axes = fig.subplots(1, 2)
    assert small_results["trace"].plot(ax=axes) is fig
    with pytest.raises(ValueError, match=r"^ax: expected 2 matplotlib Axes \(one per panel\), got 1$"):
        small_results["trace"].plot(ax=axes[0])


def test_escape_result_save_load(small_results, tmp_path):
    r = small_results["escape"]
    back = EscapeResult.load(r.save(tmp_path / "esc"))
    assert back.names == r.names and np.array_equal(back.paths, r.paths)
    assert back.escaped("GD-SALR") == r.escaped("GD-SALR")


@pytest.mark.parametrize(
    ("call", "exc", "message"),
    [
        (lambda: sharpness_profile(epsilon=0.0), ValueError, r"^epsilon: expected a finite number > 0, got 0\.0$"),
        (lambda: sharpness_profile(thetas=[]), ValueError, r"^thetas: expected a non-empty sequence"),
        (lambda: escape_demo(steps=0), ValueError, r"^steps: expected an integer >= 1, got 0$"),
        (lambda: escape_demo(eta0=-1.0), ValueError, r"^eta0: expected a finite number > 0, got -1\.0$"),
        (lambda: salr_trace(gamma=0.0), ValueError, r"^gamma: expected a finite number > 0, got 0\.0$"),
        (lambda: sharpness_profile(fn="sin"), TypeError, r"^fn: expected a callable"),
    ],
    ids=["eps", "thetas", "steps", "eta0", "gamma", "fn"],
)
def test_demo_bad_input(call, exc, message):
    with pytest.raises(exc, match=message):
        call()


def test_plot_bad_backend(small_results):
    with pytest.raises(ValueError, match=r"^backend: expected one of 'matplotlib', 'plotly', got 'svg'$"):
        small_results["profile"].plot(backend="svg")


# ---------------------------------------------------------------- the example script
def test_example_quick_mode(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("toy_demos_example", ROOT / "examples" / "toy_demos.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written = module.main(["--quick", "--out", str(tmp_path)])
    assert len(written) == 8
    for path in written.values():
        assert path.is_file() and path.stat().st_size > 1000
    out = capsys.readouterr().out
    assert "GD-SALR: θ_K" in out and "left B_δ(θ*): True" in out
