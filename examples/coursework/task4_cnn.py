"""Coursework Task 4: the [32, 64, 128] 4x4 CNN on MNIST, four other CNNs, and CNN vs MLP."""

from __future__ import annotations

import functools
import json
import sys

import cw_compare
import cw_models

from mtlkit.experiments import RunContext, register_experiment
from mtlkit.gates import Gate
from mtlkit.viz import plot_tradeoff

BUDGETS = cw_compare.BUDGETS
PAPER = {"CNN 4.1 [32,64,128]": 0.99}  # the brief: "around 99%"
CNN_41 = cw_models.CNN_41_NAME


GATES = [
    Gate("CNNs train", key="ours", above=0.9, settings="CNN*", metric="test_acc"),
    Gate(
        "training converged",
        key="train_loss_change_last10pct",
        below=0.02,
        settings="CNN*",
        metric="test_acc",
        per_row=True,
    ),
]


@register_experiment(
    "coursework-task4",
    seed_file="004_63daf360e7c99336.txt",
    description="Task 4: CNN [32,64,128] 4x4 curves, four other CNNs, CNN vs MLP table",
    gates=GATES,
)
def run(ctx: RunContext) -> None:
    budget = BUDGETS[ctx.mode]
    deviations = budget.deviations() + [
        "batch size 128, Adam lr 1e-3, 'valid' padding (Keras default), no pooling (the brief specifies none)",
        "one seed",
    ]
    results = ctx.results(deviations=deviations, seeds=[0])
    nets = {name: functools.partial(cw_models.cnn, *arch) for name, arch in cw_models.CNN_VARIANTS.items()}
    curves = cw_compare.train_architectures(ctx, results, nets, budget, paper=PAPER)
    figures = [
        cw_compare.save_curves(
            ctx, curves[CNN_41], "coursework_task4_curves", "CNN [32, 64, 128], 4x4 kernels, on MNIST"
        )
    ]
    rows = {name: results.get(name, "test_acc") for name in nets}
    # CNN vs MLP: the Task-3 results of the same mode, when they exist.
    mlp_file = ctx.results_dir / "coursework_task3.json"
    mlps = {}
    if mlp_file.is_file():
        mlp_data = json.loads(mlp_file.read_text())
        if mlp_data.get("mode") == ctx.mode:
            mlps = {r["setting"]: r for r in mlp_data["rows"] if r["metric"] == "test_acc"}
    for name, row in mlps.items():
        results.add_row(
            f"{name} (Task 3)", "test_acc", row["ours"], params=row["params"], source="coursework_task3.json"
        )
    series = {"CNN": [(r["params"], r["ours"]) for r in rows.values()]}
    if mlps:
        series["MLP (Task 3)"] = [(r["params"], r["ours"]) for r in mlps.values()]
    fig = plot_tradeoff(
        series, xlabel="parameters", ylabel="test accuracy", log_x=True, title="MNIST: test accuracy vs model size"
    )
    figures.append(ctx.save_figure(fig, "coursework_task4_cnn_vs_mlp", dpi=120))
    results.set("figures", figures)
    best_cnn = max(r["ours"] for r in rows.values())
    summary = f"The best CNN reaches {best_cnn:.2%} test accuracy"
    if mlps:
        best_mlp = max(mlps.values(), key=lambda r: r["ours"])
        summary += (
            f" vs {best_mlp['ours']:.2%} for the best MLP ({best_mlp['setting']}), with "
            f"{rows[CNN_41]['params'] / 1e6:.2f} M parameters for CNN 4.1 vs {best_mlp['params'] / 1e6:.2f} M"
        )
    results.set("conclusions", summary + ".")


if __name__ == "__main__":
    from mtlkit.cli import main

    sys.exit(main(["reproduce", "coursework-task4", *sys.argv[1:]]))
