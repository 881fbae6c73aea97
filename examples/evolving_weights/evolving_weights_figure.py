"""The error difference to the baseline against u, one line per schedule, control included."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from evolving_weights_claim import Cell


def plot_differences(
    path: Path,
    cells: Mapping[tuple[str, int], Sequence[float]],
    paper: Mapping[tuple[str, int], float | None],
    title: str,
) -> None:
    """Mean ± std over seeds of ``error(schedule) - error(baseline)`` (points of %) against u.

    ``cells`` maps (schedule, u) to per-seed differences, ``paper`` (schedule, u) to the paper's
    value (drawn as a dashed line of the same colour where it exists). The x axis is symlog so that
    u = 0 sits beside u = 1000 ... 49 900.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(7, 4.5))
    for name in sorted({s for s, _ in cells}):
        us = sorted(u for s, u in cells if s == name)
        stats = [Cell.of(cells[name, u]) for u in us]
        low, high = min(c.n for c in stats), max(c.n for c in stats)
        line = ax.errorbar(
            us,
            [c.mean for c in stats],
            yerr=[c.std or 0.0 for c in stats],
            marker="o",
            capsize=3,
            label=f"{name} (n={low}{'' if low == high else f'–{high}'})",
        )
        known = [(u, paper.get((name, u))) for u in us]
        known = [(u, v) for u, v in known if v is not None]
        if known:
            ax.plot(*zip(*known, strict=True), linestyle="--", color=line[0].get_color(), alpha=0.6)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xscale("symlog", linthresh=1_000)
    ax.set_xlabel("u (unlabeled images)")
    ax.set_ylabel("error - baseline error (points of %)")
    ax.set_title(title + "\n(error bars: std over seeds; dashed: paper)")
    ax.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
