"""The Multi-MNIST benchmark's network, methods and budgets (shared by the example and the benchmark)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from mtlkit import MultiTaskModel, SingleTaskModels
from mtlkit.balancing import (
    DBMTL,
    FAMO,
    IMTLG,
    MGDA,
    AlignedMTL,
    CAGrad,
    DynamicWeightAverage,
    EqualWeighting,
    GradNorm,
    NashMTL,
    PCGrad,
    RandomLossWeighting,
    TaskWeighting,
    UncertaintyWeighting,
    UPGrad,
)
from mtlkit.nn import lenet_head, lenet_trunk

TASKS = ("left", "right")
STL = "STL"


def multi_task_net() -> MultiTaskModel:
    return MultiTaskModel(lenet_trunk(), {task: lenet_head() for task in TASKS})


def single_task_nets() -> SingleTaskModels:
    return SingleTaskModels({task: nn.Sequential(lenet_trunk(), lenet_head()) for task in TASKS})


#: Method name → weighting factory of a run's seed (plain summing first: every cost is relative to it).
#: The names key the runs' records (a finished run is not trained again): a new method goes at the end.
METHODS: dict[str, Callable[[int], TaskWeighting]] = {
    "EW": lambda seed: EqualWeighting(TASKS),
    "UW": lambda seed: UncertaintyWeighting(TASKS),
    "DWA": lambda seed: DynamicWeightAverage(TASKS, temperature=2.0),
    "RLW": lambda seed: RandomLossWeighting(TASKS, seed=seed),
    "GradNorm": lambda seed: GradNorm(TASKS, alpha=1.5),
    "FAMO": lambda seed: FAMO(TASKS),
    "DB-MTL": lambda seed: DBMTL(TASKS),
    # gradient aggregators (issue #19)
    "MGDA-UB": lambda seed: MGDA(TASKS, representation=True),
    "PCGrad": lambda seed: PCGrad(TASKS, seed=seed),
    "CAGrad": lambda seed: CAGrad(TASKS, c=0.4),
    "Nash-MTL": lambda seed: NashMTL(TASKS),
    "IMTL-G": lambda seed: IMTLG(TASKS),
    "Aligned-MTL": lambda seed: AlignedMTL(TASKS),
    "UPGrad": lambda seed: UPGrad(TASKS),
}


@dataclass(frozen=True)
class Budget:
    variants: tuple[str, ...]
    n_train: int | None  # None = all 60,000
    n_test: int | None  # None = all 10,000
    epochs: int
    seeds: tuple[int, ...]
    lr: float = 1e-3
    batch_size: int = 256
    cosine: bool = False  # anneal the learning rate to 0 over the epochs (stepped once per epoch)


BUDGETS = {
    "quick": Budget(("mnist",), n_train=1000, n_test=500, epochs=2, seeds=(0,)),
    "reduced": Budget(
        ("mnist", "fashion", "fashion_mnist"), n_train=None, n_test=None, epochs=15, seeds=(0, 1, 2), cosine=True
    ),
    "full": Budget(("mnist", "fashion", "fashion_mnist"), n_train=None, n_test=None, epochs=100, seeds=(0, 1, 2)),
}


def protocol_tag(b: Budget) -> str:
    """A short name of the budget, so that records of another protocol are never mixed with these.

    >>> protocol_tag(BUDGETS["reduced"])
    'nall-e15-cos'
    """
    return f"n{b.n_train or 'all'}-e{b.epochs}" + ("-cos" if b.cosine else "")


def optimizer_for(model: nn.Module, weighting: TaskWeighting, lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adam([*model.parameters(), *weighting.parameters()], lr=lr)
