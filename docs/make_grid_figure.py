"""Draw the factorised-layer grid figure from ``results/benchmarks.json`` (run by hand; the PNG is committed).

``python docs/make_grid_figure.py`` writes ``docs/figures/factorized_grid.png``: one point per grid
shape of ``python -m benchmarks --only factorized`` (linear and conv layers; filled markers for a
shared input, hollow for per-task inputs), the measured time ratio against ``T`` dense
layers over the FLOP ratio of the same training step, with the targets ``time = FLOP`` and
``time = 1.5 × FLOP``.
"""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).parent.parent
MARKERS = {"laf": "o", "tucker": "s", "tt": "^", "cp": "D"}


def main() -> None:
    entries = json.loads((ROOT / "results" / "benchmarks.json").read_text())["entries"]
    grid = [e for e in entries if str(e.get("name", "")).startswith("grid/") and "flop_ratio" in e]
    fig, ax = plt.subplots(figsize=(6.5, 5))
    for layer, colour in (("linear", "C0"), ("conv", "C2")):
        for kind, marker in MARKERS.items():
            points = [
                e
                for e in grid
                if e["name"].split()[0] == f"grid/{kind}" and ((" conv " in e["name"]) == (layer == "conv"))
            ]
            for shared in (True, False):
                chosen = [e for e in points if e["name"].endswith("shared") == shared]
                ax.scatter(
                    [e["flop_ratio"] for e in chosen], [e["ratio"] for e in chosen], marker=marker, s=22,
                    facecolors=colour if shared else "none", edgecolors=colour,
                    label=f"{layer} {kind}" if shared else None,
                )  # fmt: skip
    low = min(v for e in grid for v in (e["flop_ratio"], e["ratio"])) / 1.5
    high = max(v for e in grid for v in (e["flop_ratio"], e["ratio"])) * 1.5
    ax.plot([low, high], [low, high], "k-", lw=0.8, label="time = FLOP ratio")
    ax.plot([low, high], [1.5 * low, 1.5 * high], "k--", lw=0.8, label="target: time = 1.5 × FLOP")
    ax.axhline(1.0, color="grey", lw=0.5)
    ax.set(xscale="log", yscale="log", xlabel="FLOP ratio vs T dense layers (training step)")
    ax.set(
        ylabel="time ratio vs T dense layers",
        title=f"Factorised layers, {len(grid)} grid points (filled: shared input)",
    )
    ax.legend(fontsize=6, loc="upper left", ncol=2)
    fig.tight_layout()
    out = Path(__file__).parent / "figures" / "factorized_grid.png"
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
