"""Coursework Task 3: MLPs on MNIST — [784, 1000, 1000, 10] and four deeper nets (3, 4, 5, 7 hidden)."""

from __future__ import annotations

import functools
import sys

import cw_compare
import cw_models

from mtlkit.experiments import RunContext, register_experiment
from mtlkit.gates import Gate

BUDGETS = cw_compare.BUDGETS
PAPER = {"MLP 3.1 [1000,1000]": 0.98}  # the brief: "about 98% test accuracy"


GATES = [
    Gate("MLPs train", key="ours", above=0.9, metric="test_acc"),
    Gate("training converged", key="train_loss_change_last10pct", below=0.02, metric="test_acc", per_row=True),
]


@register_experiment(
    "coursework-task3",
    seed_file="004_63daf360e7c99336.txt",
    description="Task 3: MLP [784,1000,1000,10] curves + 3/4/5/7-hidden-layer MLPs (params, accuracy, time)",
    gates=GATES,
)
def run(ctx: RunContext) -> None:
    budget = BUDGETS[ctx.mode]
    deviations = budget.deviations() + ["batch size 128, Adam lr 1e-3 (the FAQ's suggested values); one seed"]
    results = ctx.results(deviations=deviations, seeds=[0])
    nets = {name: functools.partial(cw_models.mlp, hidden) for name, hidden in cw_models.MLP_VARIANTS.items()}
    curves = cw_compare.train_architectures(ctx, results, nets, budget, paper=PAPER)
    figure = cw_compare.save_curves(
        ctx, curves["MLP 3.1 [1000,1000]"], "coursework_task3_curves", "MLP [784, 1000, 1000, 10] on MNIST"
    )
    results.set("figures", [figure])
    test = {name: results.get(name, "test_acc")["ours"] for name in nets}
    best = max(test, key=test.get)
    results.set(
        "conclusions",
        f"All MLPs land within {max(test.values()) - min(test.values()):.1%} of each other "
        f"(best: {best}, {test[best]:.2%}); extra depth adds little on MNIST.",
    )


if __name__ == "__main__":
    from mtlkit.cli import main

    sys.exit(main(["reproduce", "coursework-task3", *sys.argv[1:]]))
