"""Figs. 2–4 of seed 002, drawn from the rows of the DMTRL results files.

Each function takes a results file's ``rows`` (settings ``"<method label> @ <fraction>%"``, as
the examples write them), so the same figure comes out at the end of a run and, from whatever
rows a (partial) results file holds, from ``python examples/dmtrl/dmtrl_figures.py``, which
rewrites ``results/figures/dmtrl_{mnist,faces,omniglot}_<mode>.png``:

* Fig. 2 (:func:`figure_mnist`) — error vs training fraction, three metrics;
* Fig. 3 (:func:`figure_faces`) — gender and age-group error vs fraction;
* Fig. 4 (:func:`figure_omniglot`) — mean alphabet error vs fraction, and ρ per layer (Eq. 9).

>>> rows = [{"setting": "STL @ 5%", "metric": "error_pct", "ours": 70.0, "ours_std": 1.0}]
>>> _series(rows, "error_pct")
{'STL': ([0.05], [70.0], [1.0])}
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

Rows = Sequence[Mapping[str, Any]]
OMNIGLOT_LAYERS = ("Conv1", "Conv2", "Conv3", "FC1")


def _split(setting: str) -> tuple[str, float]:
    """``"DMTRL-TT @ 1.0%"`` → ``("DMTRL-TT", 0.01)``."""
    label, _, fraction = setting.rpartition(" @ ")
    return label, float(fraction.rstrip("%")) / 100


def _series(rows: Rows, metric: str) -> dict[str, tuple[list[float], list[float], list[float]]]:
    """``{method label: (fractions, means, stds)}`` of ``metric``, fractions ascending, labels in file order."""
    points: dict[str, list[tuple[float, float, float]]] = {}
    for row in rows:
        if row["metric"] == metric:
            label, fraction = _split(row["setting"])
            points.setdefault(label, []).append((fraction, row["ours"], row.get("ours_std") or 0.0))
    out = {}
    for label, values in points.items():
        values.sort()
        out[label] = ([v[0] for v in values], [v[1] for v in values], [v[2] for v in values])
    return out


def _error_panel(ax: plt.Axes, rows: Rows, metric: str, title: str, denominator: str) -> None:
    series = _series(rows, metric)
    if not series:
        ax.text(0.5, 0.5, f"no {metric} rows in the results file", ha="center", va="center", transform=ax.transAxes)
    fractions = sorted({f for xs, _, _ in series.values() for f in xs})
    for label, (xs, means, stds) in series.items():
        ax.errorbar([100 * x for x in xs], means, yerr=stds, marker="o", capsize=3, label=label)
    if len(fractions) > 1:
        ax.set_xscale("log")
    ax.set_xticks([100 * f for f in fractions], [f"{100 * f:g}" for f in fractions])
    ax.minorticks_off()
    ax.set_xlabel(f"training data (% of {denominator})")
    ax.set_ylabel("error (%)")
    ax.set_title(title)


def figure_mnist(rows: Rows, mode: str) -> Figure:
    """Fig. 2: the three MNIST metrics (mean ± std over repeats) against the training fraction."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    panels = (
        ("binary_error_pct", "binary error, all test images"),
        ("balanced_binary_error_pct", "binary error, balanced test sets"),
        ("multiclass_error_pct", "multi-class error (ranking)"),
    )
    for ax, (metric, title) in zip(axes, panels, strict=True):
        _error_panel(ax, rows, metric, title, "60k")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Fig. 2: DMTRL, MNIST one-vs-all ({mode} mode)")
    fig.tight_layout()
    return fig


def figure_faces(rows: Rows, mode: str) -> Figure:
    """Fig. 3: gender and age-group test error against the training fraction."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, task in zip(axes, ("gender", "age_group"), strict=True):
        _error_panel(ax, rows, f"test_error_{task}_pct", task.replace("_", " "), "the training split")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Fig. 3: DMTRL, faces (UTKFace for Adience; {mode} mode)")
    fig.tight_layout()
    return fig


def figure_omniglot(rows: Rows, mode: str) -> Figure:
    """Fig. 4: mean error over the alphabets against the fraction, and ρ per layer (both normalisations)."""
    fig, axes = plt.subplots(1, 3, figsize=(16, 3.8))
    _error_panel(axes[0], rows, "error_pct", "mean error over the alphabets", "each character's drawings")
    axes[0].legend(fontsize=7)
    for ax, (key, normalization) in zip(axes[1:], (("rho", "softmax (paper)"), ("rho_abs", "abs")), strict=True):
        by_setting: dict[str, dict[str, float]] = {}
        for row in rows:
            for layer in OMNIGLOT_LAYERS:
                if row["metric"] == f"{key}_{layer}":
                    by_setting.setdefault(row["setting"], {})[layer] = row["ours"]
        width = 0.8 / max(1, len(by_setting))
        for i, (setting, values) in enumerate(by_setting.items()):
            xs = [x + i * width for x, layer in enumerate(OMNIGLOT_LAYERS) if layer in values]
            ax.bar(xs, [values[layer] for layer in OMNIGLOT_LAYERS if layer in values], width, label=setting)
        ax.set_xticks([x + width * (len(by_setting) - 1) / 2 for x in range(len(OMNIGLOT_LAYERS))], OMNIGLOT_LAYERS)
        ax.set_ylim(0, 1.25)  # ρ ≤ 1: the band above holds the legend, clear of the bars
        ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
        ax.set_ylabel("sharing strength ρ")
        ax.set_title(f"ρ (Eq. 9), {normalization} normalisation")
    axes[2].legend(fontsize=7, loc="upper center", ncol=3)
    fig.suptitle(f"Fig. 4: DMTRL, Omniglot ({mode} mode)")
    fig.tight_layout()
    return fig


FIGURES = {"mnist": figure_mnist, "faces": figure_faces, "omniglot": figure_omniglot}


def main(results_dir: Path) -> list[Path]:
    """Redraw every figure whose results file exists; returns the written paths."""
    written = []
    for name, draw in FIGURES.items():
        path = results_dir / f"dmtrl_{name}.json"
        if not path.is_file():
            continue
        data = json.loads(path.read_text())
        out = results_dir / "figures" / f"dmtrl_{name}_{data['mode']}.png"
        fig = draw(data["rows"], data["mode"])
        fig.savefig(out, dpi=110)
        plt.close(fig)
        written.append(out)
    return written


if __name__ == "__main__":
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "results"
    for written in main(root):
        print(f"wrote {written}")
