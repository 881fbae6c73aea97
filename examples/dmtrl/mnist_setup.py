"""MNIST one-vs-all setting of the DMTRL reproductions: tasks, budgets, evaluation, STL nets.

Shared by ``dmtrl-mnist`` (Sec. 4.1), ``dmtrl-shallow`` (App. A, whose CNN-feature trunk is
trained with this protocol) and ``dmtrl-params`` (App. B, which reuses the STL nets of
``dmtrl-mnist``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from dmtrl_common import budget_epochs, build_seeded, predict, train
from dmtrl_nets import lenet

from mtlkit import hinge_loss
from mtlkit.data import ImageDataset, mnist_one_vs_all, stratified_fraction
from mtlkit.experiments import RunContext
from mtlkit.metrics import one_vs_all_error
from mtlkit.nn import UserDefinedSharing

NAME = "dmtrl-mnist"  # the experiment whose STL nets App. B reuses
# Checkpoints of this protocol (paper width, budget ranks) live apart from those of the half-width
# ε runs before it, whose shapes differ: a resumed run must never pick those up.
RUNS_VERSION = "v2"
TASKS = [f"digit{d}" for d in range(10)]
LOSSES = {task: hinge_loss for task in TASKS}
# App. A / B (1 % training data, mean binary error in %, "mean of error rates for 10-fold CV").
PAPER_1PCT = {"stl": 11.52, "ud": 9.34, "ud_large": 9.39, "laf": 8.25, "tucker": 9.24, "tt": 7.31}


@dataclass(frozen=True)
class Budget:
    width: float
    fractions: tuple[float, ...]
    repeats: int
    n_test: int | None  # class-stratified subset of the 10k test images; None = all
    passes: int | None  # image passes per training run (epochs = passes / n_train) ...
    epochs: int | None  # ... or a fixed number of epochs
    max_epochs: int
    ud_candidates: tuple[int, ...]
    ud_folds: int  # k of the k-fold cross-validation that picks UD-MTL's N (1 = one 80/20 holdout)
    ud_cv_every_fraction: bool
    batch_size: int = 50
    lr: float = 1e-3

    def epochs_for(self, n_train: int) -> int:
        return budget_epochs(self.epochs, self.passes, self.max_epochs, n_train, minimum=2)


FULL_FRACTIONS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0)
BUDGETS = {
    "quick": Budget(0.125, (0.002,), 1, 200, None, 1, 1, (1, 3), 2, False),
    "reduced": Budget(1.0, (0.01, 0.05), 5, None, 60_000, None, 100, (1, 2, 3), 5, True),
    "full": Budget(1.0, FULL_FRACTIONS, 5, None, None, 100, 100, (1, 2, 3), 5, True),
}


def balanced_test_indices(labels: torch.Tensor, seed: int = 0) -> dict[int, torch.Tensor]:
    """Per digit ``d``: every test image of ``d`` and as many others, drawn at random (seeded).

    On these sets a constant answer scores 50 % binary error; on the full one-vs-all sets (≈ 90 %
    negatives) a constant "no" scores ≈ 10 %.

    >>> labels = torch.tensor([0, 0, 1, 1, 1, 2])
    >>> {d: len(i) for d, i in balanced_test_indices(labels).items()}
    {0: 4, 1: 6, 2: 2}
    """
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for digit in range(int(labels.max()) + 1):
        positives = torch.nonzero(labels == digit).flatten()
        negatives = torch.nonzero(labels != digit).flatten()
        take = negatives[torch.randperm(len(negatives), generator=generator)[: len(positives)]]
        out[digit] = torch.cat([positives, take]).sort().values
    return out


def evaluate(model: torch.nn.Module, test: ImageDataset, batch_size: int = 500) -> dict[str, float]:
    """Mean binary error (all test images; on class-balanced sets) and multi-class (ranking) error, in %.

    ``binary_error_pct`` is each one-vs-all task on every test image (≈ 10 % positives);
    ``balanced_binary_error_pct`` on :func:`balanced_test_indices` (each task's positives and as
    many negatives); ``multiclass_error_pct`` ranks the ten outputs (argmax).
    """
    outputs, targets = predict(model, test.batches(batch_size, shuffle=False))
    scores = torch.stack([outputs[t].reshape(-1) for t in TASKS], dim=1)
    truth = torch.stack([targets[t] for t in TASKS], dim=1)
    wrong = (torch.where(scores >= 0, 1.0, -1.0) != truth).double()
    labels = test.meta["label"]
    balanced = [float(wrong[idx, digit].mean()) for digit, idx in balanced_test_indices(labels).items()]
    return {
        "binary_error_pct": 100.0 * float(wrong.mean()),
        "balanced_binary_error_pct": 100.0 * sum(balanced) / len(balanced),
        "multiclass_error_pct": 100.0 * one_vs_all_error(scores, labels),
    }


def test_set(ctx: RunContext, b: Budget) -> ImageDataset:
    """The one-vs-all test images: all 10,000, or the budget's class-stratified subset (seed 0)."""
    test = mnist_one_vs_all("test", root=ctx.data_root)
    if b.n_test is None:
        return test
    return test.subset(stratified_fraction(test.meta["label"].numpy(), b.n_test / len(test), seed=0))


def stl_run_dir(ctx: RunContext, fraction: float, seed: int) -> Path:
    """Checkpoint folder of the STL nets of ``dmtrl-mnist`` for one fraction and repeat."""
    path = ctx.runs_dir / NAME / ctx.mode / RUNS_VERSION / f"f{fraction:g}" / f"seed{seed}" / "stl"
    path.mkdir(parents=True, exist_ok=True)
    return path


def fit_stl(
    ctx: RunContext, b: Budget, data: ImageDataset, seed: int, run_dir: Path, common_init: bool = False
) -> UserDefinedSharing:
    """Ten independent LeNets (STL), trained with the budget's protocol or restored when finished.

    ``common_init`` starts all ten from the same random weights (then trained independently), which
    the paper does not specify but which decides how low-rank the stacked weights are (App. B).
    """
    stl = build_seeded(seed, lambda: UserDefinedSharing(lenet(b.width), 0, TASKS))
    if common_init:
        first = stl.towers[TASKS[0]].state_dict()
        for task in TASKS[1:]:
            stl.towers[task].load_state_dict(first)
    train(ctx, stl, data.batches(b.batch_size, seed=seed), LOSSES, b.epochs_for(len(data)), b.lr, run_dir, seed)
    return stl  # type: ignore[return-value]
