"""The SALR paper's 1-D teaching demos: sharpness profiles (Fig. 2), GD-SALR thrown out of a sharp minimum that
GD is trapped in (an illustration, not Theorems 1–2) and the SALR learning rate against the sharpness (Fig. 3,
right).

    python examples/toy_demos.py --out toy_out            # full resolution
    python examples/toy_demos.py --out toy_out --quick    # a few seconds (run by the test suite)

Writes <name>.png (matplotlib) and <name>.html (plotly, self-contained) for each demo, and prints the
escape demo's final positions.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from basinscope.toy import escape_demo, salr_trace, sharp_flat, sharpness_profile


def main(argv: list[str] | None = None) -> dict[str, Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("toy_demos_out"), help="output directory")
    parser.add_argument("--quick", action="store_true", help="coarse grids and short runs")
    args = parser.parse_args(argv)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    n_points = 41 if args.quick else 241
    written: dict[str, Path] = {}

    results = {
        "profile_salr_toy": sharpness_profile(thetas=np.linspace(-3, 3, n_points), epsilon=0.1),
        "profile_sharp_flat": sharpness_profile(sharp_flat, thetas=np.linspace(-2, 3, n_points), epsilon=0.1),
        "escape": escape_demo(),  # 200 steps, about a second: fewer do not reach the sharp well
        "salr_trace": salr_trace(steps=20 if args.quick else 80),
    }
    for name, result in results.items():
        for backend, suffix in (("matplotlib", ".png"), ("plotly", ".html")):
            path = out / f"{name}{suffix}"
            result.plot(backend=backend, path=path)
            written[f"{name}{suffix}"] = path
    esc = results["escape"]
    for n in esc.names:
        print(f"{n:>24}: θ_K = {esc.final(n):+.4f}, visited B_δ(θ*): {esc.visited(n)}, ended outside: {esc.escaped(n)}")
    print(f"wrote {len(written)} files to {out}")
    return written


if __name__ == "__main__":
    main()
