"""MNIST views: ten one-vs-all binary tasks, and a semi-supervised split."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from mtlkit.data._batches import IGNORE_INDEX
from mtlkit.data._dataset import ImageDataset
from mtlkit.data._load import load
from mtlkit.data._sampling import balanced_sample, stratified_fraction

__all__ = ["SemiSupervised", "mnist_one_vs_all", "mnist_semi_supervised"]

SEMI_SUPERVISED_POOL = 50_000
"""Semi-supervised draws use only the first 50,000 training images (the
deeplearning.net "train" part); the last 10,000 are its validation set."""


def mnist_one_vs_all(
    split: str = "train",
    fraction: float = 1.0,
    seed: int = 0,
    root: str | os.PathLike[str] | None = None,
) -> ImageDataset:
    r"""MNIST as ten binary tasks ``"digit0"`` ... ``"digit9"`` with ±1 targets.

    Task :math:`t` has target :math:`y_t = +1` if the digit is :math:`t`,
    else :math:`-1` (float32), the setting of deep multi-task representation
    learning with one-vs-all tasks. The 10-way digit is kept in
    ``meta["label"]`` to compute a ranking error (argmax over the ten task
    scores).

    Args:
        split: ``"train"`` or ``"test"``.
        fraction: class-stratified share of the split to keep, in ``(0, 1]``
            (e.g. 0.001 for 0.1%: 6 images per digit); see
            :func:`~mtlkit.data.stratified_fraction`. Subsets are nested across
            fractions for a fixed seed.
        seed: seed of the subsample.
        root: data root.
    """
    base = load("mnist", split, root)
    if fraction < 1.0:
        base = base.subset(stratified_fraction(base.labels["label"].numpy(), fraction, seed))
    label = base.labels["label"]
    targets = {f"digit{d}": torch.where(label == d, 1.0, -1.0).to(torch.float32) for d in range(10)}
    return base.replace(
        labels=targets,
        classes={},
        meta={**base.meta, "label": label},
        name=f"{base.name}:one-vs-all@{fraction:g}",
    )


@dataclass(frozen=True)
class SemiSupervised:
    """The parts of a semi-supervised MNIST split.

    Attributes:
        labeled: ``l`` class-balanced images with task ``"label"``.
        unlabeled: ``u`` images whose ``"label"`` is ``-100``; their true
            digit is in ``meta["true_label"]`` for diagnostics only.
        validation: training images 50,000-59,999, labelled.
        test: the 10,000 official test images.
    """

    labeled: ImageDataset
    unlabeled: ImageDataset
    validation: ImageDataset
    test: ImageDataset

    def combined(self) -> ImageDataset:
        """Labeled then unlabeled rows in one dataset (unlabeled targets are ``-100``)."""
        images = torch.cat([self.labeled.images, self.unlabeled.images])
        label = torch.cat([self.labeled.labels["label"], self.unlabeled.labels["label"]])
        true_label = torch.cat([self.labeled.labels["label"], self.unlabeled.meta["true_label"]])
        return self.labeled.replace(
            images=images,
            labels={"label": label},
            meta={
                "true_label": true_label,
                "source_index": torch.cat([self.labeled.meta["source_index"], self.unlabeled.meta["source_index"]]),
            },
            name="mnist/semi-supervised",
        )


def mnist_semi_supervised(
    n_labeled: int,
    n_unlabeled: int,
    seed: int = 0,
    root: str | os.PathLike[str] | None = None,
) -> SemiSupervised:
    """Disjoint labeled / unlabeled draws from the first 50,000 MNIST training images.

    The labeled part has ``n_labeled // 10`` images per digit (the remainder
    spread over random digits); the unlabeled part is ``n_unlabeled`` images
    drawn uniformly from the rest, so ``n_labeled + n_unlabeled`` may be at
    most 50,000 (e.g. ``l = 100, u = 49_900``). Both draws depend only on
    ``seed``. Every part keeps ``meta["source_index"]``, its row in the
    official training file.
    """
    if n_labeled + n_unlabeled > SEMI_SUPERVISED_POOL or min(n_labeled, n_unlabeled) < 0:
        raise ValueError(f"need 0 <= l, u and l + u <= {SEMI_SUPERVISED_POOL}, got {n_labeled} + {n_unlabeled}")
    train = load("mnist", "train", root)
    train.meta["source_index"] = torch.arange(len(train))
    labels = train.labels["label"][:SEMI_SUPERVISED_POOL].numpy()
    labeled_idx = balanced_sample(labels, n_labeled, seed)
    rest = np.setdiff1d(np.arange(SEMI_SUPERVISED_POOL), labeled_idx)
    # An independent stream for the second draw: changing l changes which
    # rows are left, but never how the labeled rows were picked.
    rng = np.random.default_rng([seed, 1])
    unlabeled_idx = np.sort(rng.choice(rest, size=n_unlabeled, replace=False))
    unlabeled = train.subset(unlabeled_idx)
    true_label = unlabeled.labels["label"]
    unlabeled = unlabeled.replace(
        labels={"label": torch.full_like(true_label, IGNORE_INDEX)},
        meta={**unlabeled.meta, "true_label": true_label},
        name="mnist/unlabeled",
    )
    labeled = train.subset(labeled_idx)
    labeled.name = "mnist/labeled"
    validation = train.subset(np.arange(SEMI_SUPERVISED_POOL, len(train)))
    validation.name = "mnist/validation"
    return SemiSupervised(labeled, unlabeled, validation, load("mnist", "test", root))
