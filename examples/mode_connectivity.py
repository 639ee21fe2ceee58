"""Mode connectivity and directions that carry meaning, on MLPs trained on MNIST-1D.

Trains the ``mlp`` of :mod:`basinscope.models` twice from different seeds (keeping the first run's weights after
every epoch) and draws

1. a quadratic Bézier curve and a polygonal chain between the two solutions, trained by SGD over t ~ U(0, 1), with
   train loss and test error along each curve and along the straight line, and their barrier heights
   (Garipov et al. 2018, "Loss Surfaces, Mode Connectivity, and Fast Ensembling of DNNs", Fig. 2);
2. the loss on the plane of the first run's two principal directions, its trajectory projected onto it
   (Li et al. 2018, "Visualizing the Loss Landscape of Neural Nets", §7);
3. the loss on the plane of the two top Hessian eigenvectors at the first solution;

as PNG files (matplotlib) and self-contained HTML pages (plotly), and saves every result (npz + json).

Run:  python examples/mode_connectivity.py --out mode_connectivity        (about a minute on 2 CPU cores)
      python examples/mode_connectivity.py --quick --out /tmp/mc          (seconds; what the tests run)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from basinscope.data import mnist1d
from basinscope.models import build_model
from basinscope.objective import Objective
from basinscope.surface import curve, hessian_plane, pca_plane


def train_run(seed: int, epochs: int, n_train: int, hidden: tuple[int, ...]):
    """SGD with momentum on MNIST-1D; returns the weights after every epoch (the last is the solution)."""
    data = mnist1d()
    torch.manual_seed(seed)
    model = build_model("mlp", hidden=hidden)
    x, y = data.x_train[:n_train], data.y_train[:n_train]
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    g = torch.Generator().manual_seed(seed)
    iterates = []
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 50):
            idx = order[i : i + 50]
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
        iterates.append({k: v.detach().clone() for k, v in model.named_parameters()})
    return model, data, iterates


def main(argv: list[str] | None = None) -> dict[str, Path]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small run for tests (seconds)")
    ap.add_argument("--out", default="mode_connectivity", help="output directory")
    ap.add_argument("--html", action=argparse.BooleanOptionalAction, default=True, help="write plotly HTML pages")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.quick:
        epochs, n_train, n_test, hidden, steps, points, res = 8, 1000, 500, (32, 32), 200, 11, 7
    else:
        epochs, n_train, n_test, hidden, steps, points, res = 30, 4000, 1000, (100, 100), 3000, 31, 21
    model, data, run_a = train_run(0, epochs, n_train, hidden)
    _, _, run_b = train_run(1, epochs, n_train, hidden)
    w1, w2 = run_a[-1], run_b[-1]
    train = Objective(model, F.cross_entropy, (data.x_train[:n_train], data.y_train[:n_train]))
    test = Objective(model, F.cross_entropy, (data.x_test[:n_test], data.y_test[:n_test]))
    progress = not args.quick
    files: dict[str, Path] = {}

    for kind in ("bezier", "polychain"):
        res_c = curve(train, w1, w2, kind=kind, steps=steps, batch_size=50, lr=0.05, points=points, test=test,
                      labels=("seed 0", "seed 1"), progress=progress)  # fmt: skip
        res_c.save(out / kind)
        files[f"{kind}_png"] = out / f"{kind}.png"
        res_c.plot(path=files[f"{kind}_png"])
        if args.html:
            files[f"{kind}_html"] = out / f"{kind}.html"
            res_c.plot("plotly", path=files[f"{kind}_html"])
        b = res_c.barrier
        print(
            f"{kind}: train-loss barrier {b['curve']['train_loss']:.4f} (line {b['line']['train_loss']:.4f}), "
            f"test-error barrier {b['curve']['test_error']:.4f} (line {b['line']['test_error']:.4f})"
        )

    pca = pca_plane(train, run_a, resolution=res, test=test, progress=progress)
    pca.save(out / "pca_plane")
    files["pca_png"] = out / "pca_plane.png"
    pca.plot(metric="train_loss", path=files["pca_png"])
    ratio = pca.settings["explained_variance_ratio"]
    print(f"PCA plane: the two directions explain {100 * ratio[0]:.1f} % and {100 * ratio[1]:.1f} % of the variance")

    hess = hessian_plane(train, center=w1, span=0.5, resolution=res, test=test, progress=progress)
    hess.save(out / "hessian_plane")
    files["hessian_png"] = out / "hessian_plane.png"
    hess.plot(metric="train_loss", path=files["hessian_png"])
    print(f"Hessian plane: top eigenvalues {[round(v, 3) for v in hess.settings['eigenvalues']]}")
    if args.html:
        files["pca_html"] = out / "pca_plane.html"
        pca.plot("plotly", metric="train_loss", path=files["pca_html"])
        files["hessian_html"] = out / "hessian_plane.html"
        hess.plot("plotly", metric="train_loss", path=files["hessian_html"])
    print(f"wrote {len(files)} plots to {out}")
    return files


if __name__ == "__main__":
    main()
