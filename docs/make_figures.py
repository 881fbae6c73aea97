"""Draw the concept figures of the docs (run by hand; the PNGs are committed).

``python docs/make_figures.py`` writes ``docs/figures/factorizations.png``: the three ways DMTRL
composes a layer's weight tensor, with the task-specific factor highlighted.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

SHARED, TASK = "#9ecae1", "#fdae6b"


def box(ax, x, y, w, h, label, color):
    ax.add_patch(Rectangle((x, y), w, h, facecolor=color, edgecolor="black", lw=1.2))
    ax.text(x + w / 2, y + h / 2, label, ha="center", va="center", fontsize=10)


def main() -> None:
    fig, axes = plt.subplots(3, 1, figsize=(9, 8.5))
    for ax in axes:
        ax.set_xlim(0, 16)
        ax.set_ylim(0, 5)
        ax.axis("off")

    ax = axes[0]
    ax.set_title(r"LAF:  $W = L\,S$  (over the last-axis flattening)", fontsize=11)
    box(ax, 0.5, 0.5, 3.0, 4.0, "$W$\n$(D_1\\cdots D_N) \\times T$", "white")
    ax.text(4.0, 2.5, "=", fontsize=18, va="center")
    box(ax, 4.8, 0.5, 3.0, 4.0, "$L$\n$(D_1\\cdots D_N) \\times K$", SHARED)
    ax.text(8.2, 2.5, r"$\cdot$", fontsize=22, va="center")
    box(ax, 9.0, 1.7, 4.0, 1.6, "$S$\n$K \\times T$", TASK)

    ax = axes[1]
    ax.set_title(r"Tucker:  $W = \mathcal{S} \times_1 U_1 \cdots \times_N U_N \times_{N+1} U_T$", fontsize=11)
    box(ax, 0.3, 1.7, 3.2, 1.6, "$U_1$\n$D_1 \\times K_1$", SHARED)
    box(ax, 4.0, 1.7, 2.2, 1.6, "$\\cdots$", "white")
    box(ax, 6.7, 1.7, 3.2, 1.6, "core $\\mathcal{S}$\n$K_1 \\times\\cdots\\times K_{N+1}$", SHARED)
    box(ax, 10.4, 1.7, 2.6, 1.6, "$U_N$\n$D_N \\times K_N$", SHARED)
    box(ax, 13.3, 1.7, 2.6, 1.6, "$U_T$\n$T \\times K_{N+1}$", TASK)
    ax.text(8.0, 0.6, "one factor per weight axis; the last one is per task", ha="center", fontsize=9)

    ax = axes[2]
    ax.set_title(r"Tensor train:  $W[i_1, \ldots, i_N, t] = G_1[i_1]\, G_2[i_2] \cdots G_N[i_N]\, G_T[t]$", fontsize=11)
    labels = [
        ("$G_1$\n$1 \\times D_1 \\times K_1$", SHARED),
        ("$G_2$\n$K_1 \\times D_2 \\times K_2$", SHARED),
        ("$\\cdots$", "white"),
        ("$G_T$\n$K_N \\times T \\times 1$", TASK),
    ]
    for i, (label, color) in enumerate(labels):
        box(ax, 0.3 + i * 4.0, 1.7, 3.4, 1.6, label, color)
    ax.text(
        8.0, 0.6, "cores are contracted over the shared ranks $K_n$; the last core is per task", ha="center", fontsize=9
    )

    fig.text(0.5, 0.01, "blue: shared by all tasks     orange: task-specific", ha="center", fontsize=10)
    fig.tight_layout()
    out = Path(__file__).parent / "figures" / "factorizations.png"
    fig.savefig(out, dpi=100, bbox_inches="tight")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
