"""Tasks 3 and 4: train several MNIST classifiers and tabulate size, accuracy and time."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import cw_data
import cw_models
import cw_training
import numpy as np
from torch import nn

from mtlkit import Trainer
from mtlkit.data import Split, balanced_sample
from mtlkit.experiments import RunContext
from mtlkit.gates import last_fraction_change
from mtlkit.results import ResultsFile
from mtlkit.viz import plot_curves


@dataclass(frozen=True)
class Budget:
    n_train: int | None  # None: all 60 000 (less the validation images)
    n_test: int | None  # None: all 10 000
    n_val: int  # class-balanced validation images carved from the training set (the stopping rule's)
    n_train_eval: int  # training images scored after every epoch for the train-accuracy curve
    epochs: int  # at most this many
    min_epochs: int
    patience: int | None  # stop once validation accuracy has not improved for this many epochs
    batch_size: int = 128
    lr: float = 1e-3

    def deviations(self) -> list[str]:
        out = []
        if self.n_train is not None:
            out.append(f"trained on a class-balanced {self.n_train}-image subset of the MNIST training images")
        else:
            out.append(f"trained on the 60 000 MNIST training images less {self.n_val} held out for validation")
        if self.n_test is not None:
            out.append(f"tested on a class-balanced {self.n_test}-image subset of the 10 000 test images")
        if self.patience is not None:
            out.append(
                f"at least {self.min_epochs} and at most {self.epochs} epochs: training stops once validation "
                f"accuracy (on {self.n_val} carved training images) has not improved for {self.patience} epochs "
                "(the FAQ suggests 100-300 epochs)"
            )
        else:
            out.append(f"{self.epochs} epochs (the FAQ suggests 100-300)")
        out.append(f"training accuracy per epoch is measured on {self.n_train_eval} training images")
        out.append(
            "gate 'training converged' (ours): the training loss moved by less than 2 % of a uniform predictor's "
            "loss (ln 10) over the last 10 % of epochs; relative to its own value, a loss that heads for 0 as the "
            "net fits the training set keeps a large change however flat its curve"
        )
        return out


# One budget table for Tasks 3, 4 and 5, so that the CNN-vs-MLP comparison is like for like and
# Task 5 visualises exactly the Task-4.1 network that Task 4 trained (it resumes its checkpoint).
BUDGETS = {
    "quick": Budget(n_train=500, n_test=200, n_val=200, n_train_eval=200, epochs=2, min_epochs=2, patience=None),
    "reduced": Budget(n_train=None, n_test=None, n_val=5000, n_train_eval=5000, epochs=30, min_epochs=10, patience=3),
    "full": Budget(n_train=None, n_test=None, n_val=5000, n_train_eval=10000, epochs=300, min_epochs=100, patience=10),
}


def mnist_splits(ctx: RunContext, budget: Budget, seed: int = 0) -> tuple[Iterable, dict[str, Iterable], Split]:
    """Shuffled training batches, the per-epoch evaluation sets, and the (train less validation, test) split."""
    split = cw_data.mnist(ctx.data_root, budget.n_train, budget.n_test, seed=0)
    val_index = balanced_sample(split.train.labels["digit"].numpy(), budget.n_val, seed=4)
    val = split.train.subset(val_index)
    fit = split.train.subset(np.setdiff1d(np.arange(len(split.train)), val_index))
    train = fit.batches(budget.batch_size, shuffle=True, seed=seed)
    evals = {
        "train": cw_data.subset(fit, budget.n_train_eval, seed=1).batches(1000, shuffle=False),
        "val": val.batches(1000, shuffle=False),
        "test": split.test.batches(1000, shuffle=False),
    }
    return train, evals, Split(fit, split.test)


def train_one(
    ctx: RunContext, name: str, build: Callable[[], nn.Module], budget: Budget, seed: int = 0
) -> tuple[nn.Module, Trainer, list[dict[str, float]]]:
    """Train (or resume, or just reload) one classifier; returns the net, its Trainer and its curves."""
    train, evals, _ = mnist_splits(ctx, budget, seed)
    cw_training.seeded(seed)
    net = build()
    trainer = cw_training.classifier(ctx, net, (_slug(name), f"seed{seed}"), lr=budget.lr)
    curves = cw_training.fit_with_curves(
        trainer, train, budget.epochs, evals, min_epochs=budget.min_epochs, patience=budget.patience
    )
    return net, trainer, curves


def train_architectures(
    ctx: RunContext,
    results: ResultsFile,
    nets: Mapping[str, Callable[[], nn.Module]],
    budget: Budget,
    *,
    paper: Mapping[str, float],
    seed: int = 0,
) -> dict[str, list[dict[str, float]]]:
    """Train each net (skipping finished ones); add one row per net and metric; return the curves."""
    all_curves = {}
    n_test = len(mnist_splits(ctx, budget, seed)[2].test)
    for name, build in nets.items():
        net, _, curves = train_one(ctx, name, build, budget, seed)
        all_curves[name] = curves
        last = curves[-1]
        params = cw_models.count_parameters(net)
        val = [r["val/acc"] for r in curves]
        common = {"params": params, "epochs": len(curves), "best_val_epoch": val.index(max(val)) + 1}
        losses = [r["train_loss/digit"] for r in curves]
        results.add_row(
            name,
            "test_acc",
            last["test/acc"],
            **common,
            val_acc=last["val/acc"],
            # On a uniform predictor's loss: the loss itself heads for 0 as the net fits its training set.
            train_loss_change_last10pct=last_fraction_change(losses, reference=math.log(10)),
            **brief(paper, name),
        )
        results.add_row(name, "train_acc", last["train/acc"], **common)
        results.add_row(
            name,
            "train_time_s",
            sum(r["train_time_s"] for r in curves),
            **common,
            per_epoch=[round(r["train_time_s"], 2) for r in curves],
        )
        results.add_row(name, "test_time_s", last["test_eval_time_s"], n_test=n_test, **common)
        results.add_row(name, "params", float(params))
    return all_curves


def brief(paper: Mapping[str, float], name: str) -> dict[str, float]:
    """The brief's illustrative figure for ``name`` as a ``brief_says`` extra ("about 98 %" is not a measurement)."""
    return {"brief_says": paper[name]} if name in paper else {}


def save_curves(ctx: RunContext, curves: list[dict[str, float]], name: str, title: str) -> str:
    """Train/test accuracy per epoch as ``figures/<name>.png``; returns the path relative to results."""
    fig = plot_curves(
        curves,
        ["train/acc", "val/acc", "test/acc"],
        labels=["train", "validation", "test"],
        ylabel="accuracy",
        title=title,
    )
    return ctx.save_figure(fig, name, dpi=120)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")
