"""The Multi-MNIST figures: left- against right-item accuracy per method, drawn from a results file's rows.

The experiment draws one figure per dataset as soon as that dataset's configurations have run;
``python examples/multi_mnist/multi_mnist_figures.py [--mode reduced]`` redraws
``results/figures/multi_mnist_<dataset>_<mode>.png`` from whatever rows ``results/multi_mnist.json``
holds (a partial file too).

>>> rows = [{"setting": "mnist / EW", "metric": f"test_acc_{t}", "ours": 90.0, "ours_std": 0.5, "n": 3}
...         for t in ("left", "right")]
>>> points(rows, "mnist")
{'EW (n=3)': (90.0, 0.5, 90.0, 0.5)}
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from mtlkit.viz import plot_two_task_scores

TASKS = ("left", "right")
REFERENCE = "EW"
VARIANT_TITLES = {"mnist": "MNIST", "fashion": "Fashion", "fashion_mnist": "(Fashion+MNIST)"}
Rows = Sequence[Mapping[str, Any]]


def points(rows: Rows, variant: str) -> dict[str, tuple[float, float, float, float]]:
    """``{"<method> (n=<seeds>)": (left mean, left std, right mean, right std)}`` in the rows' method order."""
    found: dict[str, dict[str, Mapping[str, Any]]] = {}
    for row in rows:
        method = str(row["setting"]).removeprefix(f"{variant} / ")
        if method != row["setting"] and row["metric"] in {f"test_acc_{t}" for t in TASKS}:
            found.setdefault(method, {})[row["metric"].removeprefix("test_acc_")] = row
    out = {}
    for method, by_task in found.items():
        if set(by_task) == set(TASKS):
            left, right = by_task["left"], by_task["right"]
            out[f"{method} (n={left['n']})"] = (
                left["ours"], left.get("ours_std") or 0.0, right["ours"], right.get("ours_std") or 0.0
            )  # fmt: skip
    return out


def figure(rows: Rows, variant: str, mode: str) -> Figure | None:
    """The figure of ``variant``, cross-hairs through EW; ``None`` while EW has no row."""
    found = points(rows, variant)
    reference = next((name for name in found if name.startswith(f"{REFERENCE} (n=")), None)
    if reference is None:
        return None
    return plot_two_task_scores(
        found,
        xlabel="left-item accuracy (%)",
        ylabel="right-item accuracy (%)",
        reference=reference,
        title=f"Multi-{VARIANT_TITLES[variant]} ({mode}), mean ± std over seeds",
    )


def save(rows: Rows, variant: str, mode: str, figures_dir: Path) -> str | None:
    """Draw and save ``multi_mnist_<variant>_<mode>.png``; its path relative to the results folder."""
    fig = figure(rows, variant, mode)
    if fig is None:
        return None
    name = f"multi_mnist_{variant}_{mode}.png"
    figures_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(figures_dir / name, dpi=110)
    plt.close(fig)
    return f"figures/{name}"


def main(argv: Sequence[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results-dir", type=Path, default=Path(__file__).resolve().parents[2] / "results")
    args = parser.parse_args(argv)
    result = json.loads((args.results_dir / "multi_mnist.json").read_text())
    saved = [save(result["rows"], v, result["mode"], args.results_dir / "figures") for v in VARIANT_TITLES]
    return [path for path in saved if path is not None]


if __name__ == "__main__":
    print("\n".join(main()))
