"""Cost of each loss weighting: one Trainer epoch on the Multi-MNIST LeNet, relative to plain summing.

Every method trains the same two-task LeNet (shared trunk, two heads) from the same initial weights
on the same pre-built batches, through ``Trainer(weighting=...)``; the ratio is the method's epoch
time over :class:`~mtlkit.balancing.EqualWeighting`'s, timed alternately in one run. Targets (issue
#18): UW, DWA, RLW, FAMO, DB-MTL ≤ 1.1×; GradNorm ≤ 2×.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch.nn import functional as F

from benchmarks._timing import compare
from mtlkit import MultiTaskModel, Trainer
from mtlkit.balancing import (
    DBMTL,
    FAMO,
    DynamicWeightAverage,
    EqualWeighting,
    GradNorm,
    RandomLossWeighting,
    TaskWeighting,
    UncertaintyWeighting,
)
from mtlkit.nn import lenet_head, lenet_trunk

TASKS = ("left", "right")
METHODS: dict[str, tuple[Callable[[], TaskWeighting], str]] = {
    "UW": (lambda: UncertaintyWeighting(TASKS), "<= 1.1"),
    "DWA": (lambda: DynamicWeightAverage(TASKS), "<= 1.1"),
    "RLW": (lambda: RandomLossWeighting(TASKS), "<= 1.1"),
    "GradNorm": (lambda: GradNorm(TASKS), "<= 2"),
    "FAMO": (lambda: FAMO(TASKS), "<= 1.1"),
    "DB-MTL": (lambda: DBMTL(TASKS), "<= 1.1"),
}


def run(quick: bool = False) -> list[dict[str, object]]:
    n_batches, batch_size = (4, 64) if quick else (30, 256)
    g = torch.Generator().manual_seed(0)
    batches = [
        (torch.rand(batch_size, 1, 28, 28, generator=g),
         {t: torch.randint(0, 10, (batch_size,), generator=g) for t in TASKS})
        for _ in range(n_batches)
    ]  # fmt: skip
    torch.manual_seed(0)
    base_model = MultiTaskModel(lenet_trunk(), {t: lenet_head() for t in TASKS})

    def epoch(make: Callable[[], TaskWeighting]) -> Callable[[], None]:
        def go() -> None:
            model = copy.deepcopy(base_model)
            weighting = make()
            opt = torch.optim.Adam([*model.parameters(), *weighting.parameters()], 1e-3)
            trainer = Trainer(model, opt, {t: F.cross_entropy for t in TASKS}, weighting=weighting, progress=False)
            trainer.fit(batches, epochs=1)

        return go

    plain = epoch(lambda: EqualWeighting(TASKS))
    entries = []
    for name, (make, target) in METHODS.items():
        result = compare(plain, epoch(make), repeats=2 if quick else 5)
        entries.append(
            {
                "name": f"{name} vs plain summing (Multi-MNIST LeNet, Trainer epoch of {n_batches}×{batch_size})",
                "target": target,
                **result,
            }
        )
    return entries


if __name__ == "__main__":
    for entry in run():
        print(entry)
