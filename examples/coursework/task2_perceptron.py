"""Coursework Task 2: a numpy perceptron (`perceptron.py` beside it) on pairs of MNIST digits.

Labels are -1 for the first digit of a pair and +1 for the second. Figures: training error per
iteration (pass over the data) for every pair, and each learned ``w`` as a 28x28 image.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import cw_data
import numpy as np
from perceptron import error_rate, optimize
from perceptron_diagram import draw_perceptron

from mtlkit.data import ImageDataset
from mtlkit.experiments import RunContext, register_experiment
from mtlkit.viz import plot_curves, plot_image_grid

PAIRS = ((0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (3, 5), (4, 9), (7, 9))
# Figures the brief gives for a pair (test accuracy): "~99%" for 0-1, "say, 95%" for 3-5.
BRIEF = {(0, 1): 0.99, (3, 5): 0.95}


@dataclass(frozen=True)
class Budget:
    n_train: int | None  # images per pair (None: all of both digits)
    max_iter: int


BUDGETS = {"quick": Budget(400, 5), "reduced": Budget(None, 50), "full": Budget(None, 100)}


def pair_data(dataset: ImageDataset, a: int, b: int, n: int | None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised images of digits a (label -1) and b (label +1)."""
    digits = dataset.labels["digit"].numpy()
    index = np.flatnonzero((digits == a) | (digits == b))
    if n is not None and n < len(index):
        index = np.sort(np.random.default_rng(seed).choice(index, n, replace=False))
    x = cw_data.pixels(dataset.subset(index))
    return x, np.where(digits[index] == b, 1, -1)


@register_experiment(
    "coursework-task2",
    seed_file="004_63daf360e7c99336.txt",
    description="Task 2: numpy perceptron on MNIST digit pairs; error curves, weight images, accuracy table",
)
def run(ctx: RunContext) -> None:
    budget = BUDGETS[ctx.mode]
    deviations = [
        f"at most {budget.max_iter} passes over the training pairs (stops earlier at zero training error)",
        "returned w, b are the pocket (lowest-training-error) pass, since most pairs are not separable",
    ]
    if budget.n_train is not None:
        deviations.append(f"{budget.n_train} random training images per pair")
    results = ctx.results(deviations=deviations, seeds=[0])
    split = cw_data.mnist(ctx.data_root, None, None)
    curves: dict[str, list[float]] = {}
    weights = []
    for a, b in PAIRS:
        x, y = pair_data(split.train, a, b, budget.n_train)
        w, bias, errors = optimize(x, y, max_iter=budget.max_iter, seed=0)
        x_test, y_test = pair_data(split.test, a, b, None)
        name = f"{a}-{b}"
        curves[name] = errors
        weights.append(w.reshape(28, 28))
        results.add_row(
            f"pair {name}",
            "test_acc",
            1.0 - error_rate(x_test, y_test, w, bias),
            **({"brief_says": BRIEF[(a, b)]} if (a, b) in BRIEF else {}),
            train_error=min(errors),
            final_train_error=errors[-1],
            iterations=len(errors) - 1,
            n_train=len(x),
            n_test=len(x_test),
        )
    records = [
        {"iteration": float(i), **{k: v[i] for k, v in curves.items() if i < len(v)}}
        for i in range(max(map(len, curves.values())))
    ]
    plot_curves(
        records,
        list(curves),
        x_key="iteration",
        xlabel="iteration (pass over the data)",
        ylabel="training error rate",
        title="Perceptron training error",
    ).savefig(ctx.figures_dir / "coursework_task2_errors.png", dpi=120)
    plot_image_grid(
        weights,
        titles=[f"w: {a} (−) vs {b} (+)" for a, b in PAIRS],
        ncols=4,
        cmap="RdBu_r",
        symmetric=True,
        cell_size=1.8,
        suptitle="Learned perceptron weights",
    ).savefig(ctx.figures_dir / "coursework_task2_weights.png", dpi=120)
    diagram = ctx.save_figure(draw_perceptron(), "coursework_task2_diagram", dpi=120)
    results.set("figures", [diagram, "figures/coursework_task2_errors.png", "figures/coursework_task2_weights.png"])
    accs = {r["setting"]: r["ours"] for r in results.rows}
    easiest, hardest = max(accs, key=accs.get), min(accs, key=accs.get)
    results.set(
        "conclusions",
        f"A linear perceptron separates {easiest} best ({accs[easiest]:.1%} test accuracy) and "
        f"{hardest} worst ({accs[hardest]:.1%}): digits that share strokes are harder.",
    )


if __name__ == "__main__":
    from mtlkit.cli import main

    sys.exit(main(["reproduce", "coursework-task2", *sys.argv[1:]]))
