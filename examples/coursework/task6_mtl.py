r"""Coursework Task 6: multi-task learning on Fashion-MNIST (10-way item + 3-way group).

6.1: two single-task CNNs. 6.2: one network with a shared backbone and dense layer and two task
branches, trained on :math:`L = \lambda L_\text{item} + (1 - \lambda) L_\text{group}` for five
values of :math:`\lambda`, after a small Adam (learning rate, :math:`\beta_1, \beta_2`) sweep on a
validation split carved out of the training set.
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import dataclass

import cw_data
import cw_models
import cw_training
import numpy as np
import torch
from torch.nn import functional as F

from mtlkit import SingleTaskModels, Trainer
from mtlkit.data import ImageDataset
from mtlkit.experiments import RunContext, register_experiment
from mtlkit.gates import Gate
from mtlkit.results import ResultsFile
from mtlkit.viz import plot_sweep

TASKS = ("item", "group")
LAMBDAS = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class Adam:
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)

    @property
    def name(self) -> str:
        return f"Adam lr={self.lr:g} betas=({self.betas[0]:g}, {self.betas[1]:g})"


# The sweep varies the learning rate at the default betas, then the betas at lr 1e-3.
SWEEP = (Adam(), Adam(3e-4), Adam(3e-3), Adam(1e-3, (0.5, 0.999)), Adam(1e-3, (0.9, 0.99)))


@dataclass(frozen=True)
class Budget:
    small: bool  # the 2k/1k Fashion-MNIST subset shipped with mtlkit (no data root needed)
    n_train: int | None  # class-balanced training subset (None: all)
    n_test: int | None
    epochs: int
    batch_size: int
    seeds: tuple[int, ...]
    lambdas: tuple[float, ...]
    sweep: tuple[Adam, ...]
    sweep_train: int
    sweep_val: int
    sweep_epochs: int
    # Adam setting of the λ and single-task runs; None: the sweep's winner.
    adam: Adam | None = None


BUDGETS = {
    "quick": Budget(True, 128, 200, 1, 64, (0,), (0.0, 0.5, 1.0), SWEEP[:1], 64, 64, 1),
    # Reduced: the sweep's winner at 2 epochs (β1 = 0.5) made seed 1 collapse in a first pass of the λ runs
    # (docs/coursework.rst), and its margin over the default was within single-seed noise, so the
    # λ runs use the default setting for 3 epochs.
    "reduced": Budget(False, 5000, None, 3, 128, (0, 1, 2), LAMBDAS, SWEEP, 3000, 1000, 2, adam=Adam()),
    "full": Budget(False, None, None, 30, 64, (0, 1, 2), LAMBDAS, SWEEP, 50000, 10000, 5),
}
# The brief's numbers are for L = L_item + λ' L_group with λ' = 1, i.e. our λ = 0.5 up to a factor 2.
BRIEF = {("MTL λ=0.5", "item"): 0.91, ("MTL λ=0.5", "group"): 0.99, ("STL", "item"): 0.90, ("STL", "group"): 0.995}


def deviations(budget: Budget) -> list[str]:
    out = [
        "task branches: one hidden ReLU layer of 256 units each (the brief only says 'dense layers')",
        "'same' padding, so the 6272-unit flattened map feeds the shared dense layer of 3136",
        "the two single-task CNNs of one seed are trained side by side in one SingleTaskModels "
        "(disjoint parameters, per-parameter Adam: identical to two separate runs on the same batches)",
        "the Adam sweep uses one seed, λ=0.5 and a validation split carved from the training set",
    ]
    if budget.adam is not None:
        out.append(f"the λ and single-task runs use {budget.adam.name}, not the sweep's winner (which is reported)")
    if budget.small:
        out.append("quick mode uses the 2000/1000-image Fashion-MNIST subset shipped with mtlkit")
    if budget.n_train is not None:
        out.append(f"trained on a class-balanced {budget.n_train}-image subset of the training set")
    if budget.n_test is not None:
        out.append(f"tested on a class-balanced {budget.n_test}-image test subset")
    out.append(f"{budget.epochs} epoch(s), batch size {budget.batch_size}; sweep: {budget.sweep_train} train / "
               f"{budget.sweep_val} validation images, {budget.sweep_epochs} epoch(s)")
    return out


def sweep_splits(train: ImageDataset, budget: Budget) -> tuple[ImageDataset, ImageDataset]:
    pool = cw_data.subset(train, budget.sweep_train + budget.sweep_val, seed=2)
    order = np.random.default_rng(2).permutation(len(pool))
    return pool.subset(order[: budget.sweep_train]), pool.subset(order[budget.sweep_train:])


def mtl_trainer(ctx: RunContext, lam: float, adam: Adam, run: tuple[str, ...], seed: int) -> Trainer:
    cw_training.seeded(seed)
    model = cw_models.fashion_multitask()
    run_dir = ctx.run_dir(*run)
    return Trainer(
        model,
        torch.optim.Adam(model.parameters(), lr=adam.lr, betas=adam.betas),
        {task: F.cross_entropy for task in TASKS},
        weights={"item": lam, "group": 1.0 - lam},
        device=ctx.device,
        checkpoint_dir=run_dir,
        log_dir=run_dir,
        progress=ctx.progress,
    )


def tune_adam(ctx: RunContext, results: ResultsFile, train: ImageDataset, budget: Budget) -> Adam:
    """Train the λ=0.5 MTL net with each Adam setting; the best mean validation accuracy wins."""
    sweep_train, sweep_val = sweep_splits(train, budget)
    val = sweep_val.batches(1000, shuffle=False)
    for adam in budget.sweep:
        if results.has(adam.name, "val_acc_mean"):
            continue
        trainer = mtl_trainer(ctx, 0.5, adam, ("sweep", f"lr{adam.lr:g}_b{adam.betas[0]:g}_{adam.betas[1]:g}"), 0)
        trainer.fit(sweep_train.batches(budget.batch_size, seed=0), epochs=budget.sweep_epochs)
        metrics = trainer.evaluate(val)
        results.add_row(adam.name, "val_acc_mean", (metrics["item/acc"] + metrics["group/acc"]) / 2,
                        val_acc_item=metrics["item/acc"], val_acc_group=metrics["group/acc"], lam=0.5)
    return max(budget.sweep, key=lambda a: results.get(a.name, "val_acc_mean")["ours"])


def _head_unchanged(model: torch.nn.Module, initial: dict[str, torch.Tensor], task: str) -> bool:
    now = model.state_dict()
    keys = [k for k in initial if k.startswith(f"heads.{task}.")]
    return bool(keys) and all(torch.equal(initial[k], now[k]) for k in keys)


GATES = [
    Gate("single-task CNN trains", key="ours", above=0.7, settings="STL*", metric="test_acc_item"),
    Gate("training converged", key="train_loss_change_last10pct", below=0.02, settings="STL*|MTL*",
         metric="test_acc_*"),
]


@register_experiment(
    "coursework-task6",
    seed_file="004_63daf360e7c99336.txt",
    description="Task 6: Fashion-MNIST item/group single-task CNNs vs λ-weighted MTL, Adam sweep, 3 seeds",
    gates=GATES,
)
def run(ctx: RunContext) -> None:
    budget = BUDGETS[ctx.mode]
    results = ctx.results(deviations=deviations(budget), seeds=list(budget.seeds))
    full_train, full_test = cw_data.fashion(ctx.data_root, budget.small)
    train = cw_data.subset(full_train, budget.n_train, seed=0)
    test = cw_data.subset(full_test, budget.n_test, seed=0).batches(1000, shuffle=False)
    tuned = tune_adam(ctx, results, full_train, budget)
    adam = budget.adam or tuned
    results.set("adam_selected", tuned.name)
    results.set("adam_used", adam.name)

    # 6.1: single-task CNNs.
    for seed in budget.seeds:
        if results.has(f"STL seed {seed}"):
            continue
        cw_training.seeded(seed)
        model = SingleTaskModels({task: cw_models.fashion_single_task(n) for task, n in (("item", 10), ("group", 3))})
        run_dir = ctx.run_dir("stl", f"seed{seed}")
        trainer = Trainer(model, torch.optim.Adam(model.parameters(), lr=adam.lr, betas=adam.betas),
                          {task: F.cross_entropy for task in TASKS}, device=ctx.device,
                          checkpoint_dir=run_dir, log_dir=run_dir, progress=ctx.progress)
        history = trainer.fit(train.batches(budget.batch_size, seed=seed), epochs=budget.epochs)
        metrics = trainer.evaluate(test)
        for task in TASKS:
            results.add_row(f"STL seed {seed}", f"test_acc_{task}", metrics[f"{task}/acc"], seed=seed,
                            params=cw_models.count_parameters(model.trunk[task]),
                            train_time_s=sum(r["time_s"] for r in history))

    # 6.2: the MTL network for every λ.
    for lam in budget.lambdas:
        for seed in budget.seeds:
            setting = f"MTL λ={lam:g} seed {seed}"
            if results.has(setting):
                continue
            trainer = mtl_trainer(ctx, lam, adam, (f"lam{lam:g}", f"seed{seed}"), seed)
            initial = {k: v.clone() for k, v in trainer.model.state_dict().items()}
            history = trainer.fit(train.batches(budget.batch_size, seed=seed), epochs=budget.epochs)
            metrics = trainer.evaluate(test)
            for task in TASKS:
                results.add_row(setting, f"test_acc_{task}", metrics[f"{task}/acc"], seed=seed, lam=lam,
                                head_unchanged=_head_unchanged(trainer.model, initial, task),
                                params=cw_models.count_parameters(trainer.model),
                                train_time_s=sum(r["time_s"] for r in history))

    summarise(ctx, results, budget)


def _std(values: list[float]) -> float:
    """Sample standard deviation over seeds (0 for a single seed)."""
    return statistics.stdev(values) if len(values) > 1 else 0.0


def _per_seed(results: ResultsFile, prefix: str, metric: str, seeds: tuple[int, ...]) -> list[float]:
    return [results.get(f"{prefix} seed {s}", metric)["ours"] for s in seeds]


def summarise(ctx: RunContext, results: ResultsFile, budget: Budget) -> None:
    """Mean ± std rows over seeds, the accuracy-vs-λ figure and the conclusions."""
    table: dict[str, dict[str, list[float]]] = {}
    for prefix in ["STL"] + [f"MTL λ={lam:g}" for lam in budget.lambdas]:
        table[prefix] = {}
        for task in TASKS:
            values = _per_seed(results, prefix, f"test_acc_{task}", budget.seeds)
            table[prefix][task] = values
            results.add_row(prefix, f"test_acc_{task}", statistics.fmean(values),
                            ours_std=_std(values) if len(values) > 1 else None,
                            paper=BRIEF.get((prefix, task)), per_seed=values, n_seeds=len(values))
    series = {
        f"MTL {task}": ([statistics.fmean(table[f"MTL λ={lam:g}"][task]) for lam in budget.lambdas],
                        [_std(table[f"MTL λ={lam:g}"][task]) for lam in budget.lambdas])
        for task in TASKS
    }
    fig = plot_sweep(list(budget.lambdas), series,
                     references={f"single-task {task}": statistics.fmean(table["STL"][task]) for task in TASKS},
                     xlabel="λ (weight of the item loss; group loss weighted 1 − λ)", ylabel="test accuracy",
                     title=f"Fashion-MNIST MTL, mean ± std over {len(budget.seeds)} seed(s)")
    results.set("figures", [ctx.save_figure(fig, "coursework_task6_lambda", dpi=120)])

    def acc(prefix: str, task: str) -> float:
        return statistics.fmean(table[prefix][task])

    frozen = {lam: all(results.get(f"MTL λ={lam:g} seed {s}", f"test_acc_{task}")["head_unchanged"]
                       for s in budget.seeds) for lam, task in ((0.0, "item"), (1.0, "group")) if lam in budget.lambdas}
    results.set("lambda_interpretation", (
        "λ = 1 trains only the item loss: the network is a single-task item classifier with the shared layers "
        "plus an extra group branch that receives exactly zero gradient, so the group branch keeps its random "
        f"initialisation (bit-identical after training: {frozen.get(1.0)}) and its accuracy "
        f"({acc('MTL λ=1', 'group'):.1%}) only reflects how a random read-out of item-trained features happens to "
        "fall. λ = 0 is the mirror image: a single-task group classifier whose item branch is never trained "
        f"(unchanged: {frozen.get(0.0)}; item accuracy {acc('MTL λ=0', 'item'):.1%}), even though the shared "
        "features learned for the 3 groups carry some item information. Only 0 < λ < 1 is multi-task learning."
    ))
    mixed = [lam for lam in budget.lambdas if 0 < lam < 1]
    if mixed and {0.0, 1.0} <= set(budget.lambdas):
        best = max(mixed, key=lambda lam: acc(f"MTL λ={lam:g}", "item"))
        results.set("conclusions", (
            f"Best mixed weighting λ={best:g}: {acc(f'MTL λ={best:g}', 'item'):.2%} item / "
            f"{acc(f'MTL λ={best:g}', 'group'):.2%} group test accuracy, vs {acc('STL', 'item'):.2%} / "
            f"{acc('STL', 'group'):.2%} for the Task-6.1 single-task CNNs and {acc('MTL λ=1', 'item'):.2%} item "
            f"(λ=1) / {acc('MTL λ=0', 'group'):.2%} group (λ=0) for the same MTL network trained on one task; "
            "at λ=0 or 1 the unweighted branch stays untrained."
        ))


if __name__ == "__main__":
    from mtlkit.cli import main

    sys.exit(main(["reproduce", "coursework-task6", *sys.argv[1:]]))
