"""The 1-D teaching functions and demos (SALR paper, Figs. 1–3, Theorems 1–2), and the example script."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from basinscope.toy import (
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


# ---------------------------------------------------------------- escape from the sharp well (illustration)
def test_escape_demo_from_outside_gd_is_trapped_gd_salr_is_thrown_out():
    r = escape_demo()
    a = SHARP_FLAT_MINIMA[0]
    assert r.settings["theta0"] == a - 0.5 and abs(r.settings["theta0"] - a) > r.radius  # starts outside
    gd_path = r.paths[r.names.index("GD")]
    salr_path = r.paths[r.names.index("GD-SALR")]
    assert r.visited("GD") and not r.escaped("GD")
    assert abs(r.final("GD") - a) < 1e-6  # GD runs into the sharp minimum and converges there
    assert np.all(np.abs(gd_path[np.argmax(np.abs(gd_path - a) <= r.radius) :] - a) <= r.radius)  # never leaves
    # GD-SALR (empty history) enters the well, is thrown out and ends outside it, towards the flat minimum
    inside = np.abs(salr_path - a) <= r.radius
    k_in = int(np.argmax(inside))
    assert inside.any() and r.visited("GD-SALR") and r.escaped("GD-SALR")
    assert r.final("GD-SALR") > a + r.radius
    lr = r.lrs[r.names.index("GD-SALR")]
    # inside the well the rate exceeds GD's stability limit 2/f''(θ*) = 2/145, which the base rate does not
    assert r.settings["eta0"] < 2 / 145.0 < lr[k_in:].max()
    # the rate is η₀·Ŝ_k/median(Ŝ_1..Ŝ_k) with the history started empty (Algorithm 1)
    sh = r.sharpness[r.names.index("GD-SALR")]
    assert np.allclose(lr, [0.01 * sh[k] / np.median(sh[: k + 1]) for k in range(len(sh))], rtol=1e-12)
    # started inside, the median is the well's own Ŝ: the ratio stays near 1 and GD-SALR stays like GD
    assert not r.escaped("GD-SALR (started inside)")
    assert r.lrs[r.names.index("GD-SALR (started inside)")].max() < 2 / 145.0


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
    assert "GD-SALR: θ_K" in out and "visited B_δ(θ*): True, ended outside: True" in out
