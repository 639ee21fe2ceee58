"""Loss-surface plots for a small network trained on MNIST-1D.

Trains the ``mlp`` of :mod:`basinscope.models` (40-100-100-10) with SGD at a constant learning rate, keeps three
snapshots from the end of training (as SWA collects its samples) and draws

1. the test-error surface on the plane through the three snapshots, with their average (the SWA solution)
   marked — the construction of the SWA-revisited paper's Fig. 6 (Garipov et al. 2018);
2. train loss and test error on the line from the average to the last snapshot (Figs. 7–8);
3. a random filter-normalized plane around the average (Li et al. 2018);

as PNG files (matplotlib) and self-contained interactive HTML files (plotly), and saves the results (npz+json).

Run:  python examples/surface_plots.py --out surface_plots        (about a minute on 2 CPU cores)
      python examples/surface_plots.py --quick --out /tmp/sp      (a few seconds; what the tests run)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from basinscope.data import mnist1d
from basinscope.models import build_model
from basinscope.objective import Objective
from basinscope.surface import line, plane, random_plane


def train_snapshots(epochs: int, n_train: int, seed: int = 0):
    """SGD on MNIST-1D; returns the model and the weights at the end of the last three epochs."""
    data = mnist1d()
    torch.manual_seed(seed)
    model = build_model("mlp")
    x, y = data.x_train[:n_train], data.y_train[:n_train]
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(seed)
    snapshots = []
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 64):
            idx = order[i : i + 64]
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
        snapshots.append({k: v.detach().clone() for k, v in model.named_parameters()})
    return model, data, snapshots[-3:]


def main(argv: list[str] | None = None) -> dict[str, Path]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small run for tests (seconds)")
    ap.add_argument("--out", default="surface_plots", help="output directory")
    ap.add_argument("--html", action=argparse.BooleanOptionalAction, default=True, help="write plotly HTML files")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    epochs, n_train, n_test, res = (4, 1000, 500, 7) if args.quick else (30, 4000, 1000, 21)

    model, data, (w1, w2, w3) = train_snapshots(epochs, n_train)
    train = Objective(model, F.cross_entropy, [(data.x_train[:n_train], data.y_train[:n_train])])
    test = Objective(model, F.cross_entropy, (data.x_test[:n_test], data.y_test[:n_test]))
    average = {k: (w1[k] + w2[k] + w3[k]) / 3 for k in w1}
    progress = not args.quick

    files: dict[str, Path] = {}
    surf = plane(train, w1, w2, w3, test=test, resolution=res, marks={"SWA": average}, progress=progress)
    surf.save(out / "plane")
    files["plane_png"] = out / "plane_test_error.png"
    surf.plot(metric="test_error", path=files["plane_png"])
    files["plane_train_png"] = out / "plane_train_loss.png"
    surf.plot(metric="train_loss", path=files["plane_train_png"])

    ts = torch.linspace(-1.0, 2.0, 13 if args.quick else 41)
    ln = line(train, average, w3, ts=ts, test=test, labels=("SWA", "last SGD"), progress=progress)
    ln.save(out / "line")
    files["line_png"] = out / "line.png"
    ln.plot(path=files["line_png"])

    rnd = random_plane(train, center=average, seed=0, resolution=res, test=test, progress=progress)
    rnd.save(out / "random_plane")
    files["random_png"] = out / "random_plane.png"
    rnd.plot(metric="train_loss", path=files["random_png"])

    if args.html:
        files["plane_html"] = out / "plane.html"
        surf.plot(backend="plotly", metric="test_error", path=files["plane_html"])
        files["line_html"] = out / "line.html"
        ln.plot(backend="plotly", path=files["line_html"])
    print(f"test error at w1, w2, w3: {[round(surf.at_point(k, 'test_error'), 4) for k in ('w1', 'w2', 'w3')]}")
    print(f"wrote {len(files)} plots to {out}")
    return files


if __name__ == "__main__":
    main()
