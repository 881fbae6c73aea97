"""Does bf16 autocast train to the same accuracy as fp32? Fashion-MNIST item + group, 3 seeds each.

The check behind ``Trainer(precision="bf16")`` (:mod:`mtlkit.precision`): the same two-task CNN
(the coursework's Task-6 setting at a small width, λ = 0.5), the same seeds, batches and epochs;
only the precision differs. bf16 is "the same accuracy" if the mean difference is within two
standard errors of the difference of the two means.

    mtlkit reproduce precision-check --mode reduced
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from functools import partial

import torch
from torch.nn import functional as F

from mtlkit import LinearHead, MultiTaskModel, Trainer
from mtlkit.data import fashion_mnist_tasks
from mtlkit.experiments import RunContext, register_experiment
from mtlkit.gates import Gate, last_fraction_change
from mtlkit.nn import Conv, ConvNet, Dense, Flatten, MaxPool

NAME = "precision-check"
TASKS = ("item", "group")
LAMBDA = 0.5
#: The objective of a uniform prediction (10 items, 3 groups): the scale on which convergence is read,
#: since the objective itself heads for 0 as the net fits its training set.
UNIFORM_OBJECTIVE = LAMBDA * math.log(10) + (1 - LAMBDA) * math.log(3)


@dataclass(frozen=True)
class Budget:
    small: bool  # the 2k/1k Fashion-MNIST subset shipped with mtlkit
    epochs: int
    seeds: tuple[int, ...] = (0, 1, 2)
    batch_size: int = 128


BUDGETS = {
    "quick": Budget(small=True, epochs=2),
    "reduced": Budget(small=False, epochs=8),
    "full": Budget(small=False, epochs=8),
}

GATES = [
    Gate("fp32 trains", key="ours", above=0.8, settings="fp32", metric="test_acc_item"),
    Gate("training converged", key="train_loss_change_last10pct", below=0.05, settings="fp32|bf16", per_row=True),
]


def model(seed: int) -> MultiTaskModel:
    torch.manual_seed(seed)
    trunk = ConvNet(
        (1, 28, 28), [Conv(32, 3, padding=1), MaxPool(2), Conv(64, 3, padding=1), MaxPool(2), Flatten(), Dense(128)]
    )
    return MultiTaskModel(trunk, {"item": LinearHead(128, 10), "group": LinearHead(128, 3)})


def train_one(ctx: RunContext, b: Budget, precision: str, seed: int) -> dict[str, float]:
    train, test = (fashion_mnist_tasks(split, root=ctx.data_root, small=b.small) for split in ("train", "test"))
    net = model(seed)
    run_dir = ctx.run_dir(precision, f"seed{seed}")
    trainer = Trainer(
        net,
        torch.optim.Adam(net.parameters(), 1e-3),
        {t: F.cross_entropy for t in TASKS},
        weights={"item": LAMBDA, "group": 1 - LAMBDA},
        checkpoint_dir=run_dir,
        seed=seed,
        progress=ctx.progress,
        precision=precision,
    )
    start = time.process_time()
    history = trainer.fit(train.batches(b.batch_size, seed=seed), epochs=b.epochs)
    cpu_s = time.process_time() - start
    scores = trainer.evaluate(test.batches(1000, shuffle=False))
    curve = [LAMBDA * r["train/item/loss"] + (1 - LAMBDA) * r["train/group/loss"] for r in history]
    return {
        "item": scores["item/acc"],
        "group": scores["group/acc"],
        "cpu_s": cpu_s,
        "train_loss": [round(x, 5) for x in curve],
        "train_loss_change_last10pct": last_fraction_change(curve, reference=UNIFORM_OBJECTIVE),
    }


@register_experiment(
    NAME,
    origin="issue 13",
    description="bf16 autocast vs fp32: same accuracy? (Fashion-MNIST item+group CNN, 3 seeds)",
    threads=1,
    gates=GATES,
)
def run(ctx: RunContext) -> None:
    b = BUDGETS[ctx.mode]
    deviations = [
        "Not a paper experiment: the check that Trainer(precision='bf16') trains to fp32's accuracy, on the "
        "coursework's Fashion-MNIST item + group task with a 2-conv CNN (32, 64 channels, FC 128), λ = 0.5, "
        f"Adam lr 1e-3, batch {b.batch_size}, {b.epochs} epochs, "
        + ("the 2k/1k subset shipped with mtlkit." if b.small else "all 60,000 training and 10,000 test images."),
        "Gate 'training converged': the training objective moved by less than 5 % of a uniform prediction's "
        f"objective ({UNIFORM_OBJECTIVE:.3f} = 0.5 ln 10 + 0.5 ln 3) over the last 10 % of epochs.",
    ]
    results = ctx.results(deviations=deviations, seeds=list(b.seeds), name="precision_check")
    configs = [f"{p} seed{s}" for p in ("fp32", "bf16") for s in b.seeds]
    results.plan(configs)
    runs: dict[str, dict[int, dict[str, float]]] = {"fp32": {}, "bf16": {}}
    for precision, per_seed in runs.items():
        for seed in b.seeds:
            key = f"{precision} seed{seed}"
            records = results.data.setdefault("per_run", {})
            # A record without its curve predates the convergence measure on the uniform scale: train it again.
            if key in records and "train_loss" not in records[key]:
                del records[key]
            per_seed[seed] = results.kept(key, partial(train_one, ctx, b, precision, seed))
    for task in TASKS:
        means = {}
        for precision, by_seed in runs.items():
            values = [by_seed[s][task] for s in b.seeds]
            means[precision] = values
            results.add_row(
                precision,
                f"test_acc_{task}",
                round(statistics.mean(values), 4),
                ours_std=round(statistics.stdev(values), 4),
                per_repeat=values,
                train_loss_change_last10pct=max(by_seed[s]["train_loss_change_last10pct"] for s in b.seeds),
                cpu_s=[round(by_seed[s]["cpu_s"], 1) for s in b.seeds],
                headline=task == "item",
            )
        diff = statistics.mean(means["bf16"]) - statistics.mean(means["fp32"])
        se = math.sqrt(
            statistics.variance(means["bf16"]) / len(b.seeds) + statistics.variance(means["fp32"]) / len(b.seeds)
        )
        results.add_row(
            "bf16 − fp32",
            f"test_acc_{task}",
            round(diff, 4),
            n=len(b.seeds),
            standard_error=round(se, 4),
            within_2_standard_errors=bool(abs(diff) <= 2 * se),
        )
    cpu = {p: statistics.mean(runs[p][s]["cpu_s"] for s in b.seeds) for p in runs}
    results.add_row("bf16 / fp32", "cpu_time_ratio", round(cpu["bf16"] / cpu["fp32"], 3), n=len(b.seeds))
    verdicts = [r for r in results.rows if r["setting"] == "bf16 − fp32"]
    results.set(
        "conclusions",
        [
            f"{r['metric']}: bf16 − fp32 = {r['ours']:+.4f} (2 SE = {2 * r['standard_error']:.4f}, n = {r['n']} each): "
            + ("within" if r["within_2_standard_errors"] else "NOT within")
            + " the seed spread."
            for r in verdicts
        ]
        + [f"bf16 training took {cpu['bf16'] / cpu['fp32']:.2f}× the CPU time of fp32."],
    )
