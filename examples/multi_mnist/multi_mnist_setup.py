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


#: Method name → weighting factory (plain summing first: every cost is relative to it). The names
#: are the runs' folder names (a finished run is not trained again): a new method goes at the end.
METHODS: dict[str, Callable[[], TaskWeighting]] = {
    "EW": lambda: EqualWeighting(TASKS),
    "UW": lambda: UncertaintyWeighting(TASKS),
    "DWA": lambda: DynamicWeightAverage(TASKS, temperature=2.0),
    "RLW": lambda: RandomLossWeighting(TASKS, seed=0),
    "GradNorm": lambda: GradNorm(TASKS, alpha=1.5),
    "FAMO": lambda: FAMO(TASKS),
    "DB-MTL": lambda: DBMTL(TASKS),
    # gradient aggregators (issue #19)
    "MGDA-UB": lambda: MGDA(TASKS, representation=True),
    "PCGrad": lambda: PCGrad(TASKS, seed=0),
    "CAGrad": lambda: CAGrad(TASKS, c=0.4),
    "Nash-MTL": lambda: NashMTL(TASKS),
    "IMTL-G": lambda: IMTLG(TASKS),
    "Aligned-MTL": lambda: AlignedMTL(TASKS),
    "UPGrad": lambda: UPGrad(TASKS),
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


BUDGETS = {
    "quick": Budget(("mnist",), n_train=1000, n_test=500, epochs=2, seeds=(0,)),
    "reduced": Budget(("mnist", "fashion", "fashion_mnist"), n_train=20_000, n_test=None, epochs=10, seeds=(0, 1, 2)),
    "full": Budget(("mnist", "fashion", "fashion_mnist"), n_train=None, n_test=None, epochs=100, seeds=(0, 1, 2)),
}


def optimizer_for(model: nn.Module, weighting: TaskWeighting, lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adam([*model.parameters(), *weighting.parameters()], lr=lr)
