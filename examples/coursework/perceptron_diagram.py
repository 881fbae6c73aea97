r"""Task 2's diagram of a single-layer perceptron, drawn with matplotlib.

The perceptron of Task 2 computes :math:`\hat y = \operatorname{sign}(\mathbf w^\top \mathbf x + b)`
on the 784 pixels :math:`x_1, \dots, x_{784}` of an image, with :math:`\hat y = -1` for the first
digit of a pair and :math:`+1` for the second. The figure shows a few inputs (the rest elided),
their weights on the edges, the bias, the summation node and the sign activation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SHOWN = ("x_1", "x_2", "x_3", None, "x_{784}")  # None: the vertical ellipsis between x_3 and x_784


def draw_perceptron(n_inputs: int = 784) -> Figure:
    """Inputs → weighted edges → Σ (with bias b) → sign → ŷ ∈ {−1, +1}; returns the figure."""
    if not isinstance(n_inputs, int) or n_inputs < 4:
        raise ValueError(f"n_inputs must be an int >= 4 (three inputs, an ellipsis and the last), got {n_inputs!r}")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch

    labels = (*SHOWN[:-1], f"x_{{{n_inputs}}}")
    weights = ("w_1", "w_2", "w_3", None, f"w_{{{n_inputs}}}")
    fig, ax = plt.subplots(figsize=(8, 4.2))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 6)
    ax.set_aspect("equal")
    ax.axis("off")
    sum_xy, act_xy, out_x = (5.0, 3.0), (7.2, 3.0), 9.3
    ys = (5.2, 4.1, 3.0, 1.95, 0.8)
    for label, weight, y in zip(labels, weights, ys, strict=True):
        if label is None:
            ax.text(1.0, y, r"$\vdots$", ha="center", va="center", fontsize=18)
            continue
        ax.add_patch(Circle((1.0, y), 0.38, fc="#dbe9f6", ec="#1f4e79", lw=1.5))
        ax.text(1.0, y, f"${label}$", ha="center", va="center", fontsize=12)
        ax.add_patch(
            FancyArrowPatch(
                (1.4, y),
                (sum_xy[0] - 0.55, sum_xy[1] + (y - 3.0) * 0.25),
                arrowstyle="-|>",
                mutation_scale=12,
                color="#444444",
                lw=1.2,
            )
        )
        ax.text(2.9, y + (3.0 - y) * 0.35 + 0.18, f"${weight}$", ha="center", fontsize=11, color="#8b0000")
    # Bias: a constant input 1 with weight b.
    ax.add_patch(Circle((sum_xy[0], 5.3), 0.33, fc="#eeeeee", ec="#555555", lw=1.2))
    ax.text(sum_xy[0], 5.3, "$1$", ha="center", va="center", fontsize=12)
    ax.add_patch(
        FancyArrowPatch(
            (sum_xy[0], 4.95),
            (sum_xy[0], sum_xy[1] + 0.55),
            arrowstyle="-|>",
            mutation_scale=12,
            color="#444444",
            lw=1.2,
        )
    )
    ax.text(sum_xy[0] + 0.2, 4.3, "$b$", fontsize=11, color="#8b0000")
    ax.add_patch(Circle(sum_xy, 0.55, fc="#fff2cc", ec="#7f6000", lw=1.8))
    ax.text(*sum_xy, r"$\Sigma$", ha="center", va="center", fontsize=18)
    ax.text(sum_xy[0], sum_xy[1] - 0.95, r"$z = \mathbf{w}^\top\mathbf{x} + b$", ha="center", fontsize=11)
    ax.add_patch(
        FancyArrowPatch(
            (sum_xy[0] + 0.55, 3.0),
            (act_xy[0] - 0.7, 3.0),
            arrowstyle="-|>",
            mutation_scale=12,
            color="#444444",
            lw=1.2,
        )
    )
    ax.add_patch(
        FancyBboxPatch((act_xy[0] - 0.7, 2.45), 1.4, 1.1, boxstyle="round,pad=0.05", fc="#e2f0d9", ec="#385723", lw=1.8)
    )
    ax.text(*act_xy, r"$\mathrm{sign}(z)$", ha="center", va="center", fontsize=12)
    ax.add_patch(
        FancyArrowPatch(
            (act_xy[0] + 0.75, 3.0), (out_x - 0.45, 3.0), arrowstyle="-|>", mutation_scale=12, color="#444444", lw=1.2
        )
    )
    ax.text(out_x, 3.0, r"$\hat y$", ha="center", va="center", fontsize=14)
    ax.text(out_x, 2.35, r"$\in\{-1, +1\}$", ha="center", fontsize=10)
    ax.text(1.0, 0.05, f"{n_inputs} pixel inputs", ha="center", fontsize=10)
    ax.set_title("Single-layer perceptron (Task 2)", fontsize=12)
    fig.tight_layout()
    return fig
