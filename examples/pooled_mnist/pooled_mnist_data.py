"""MNIST, notMNIST and Fashion-MNIST as per-dataset splits, and their pooled unions."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mtlkit.data import ImageDataset, Split, balanced_sample, pooled_digits
from mtlkit.label_space import PooledLabelSpace

# The paper's letters: M = MNIST, N = notMNIST, F = FashionMNIST.
SHORT = {"M": "mnist", "N": "notmnist", "F": "fashion_mnist"}


def digit_splits(root: str | None, n_train: int | None, n_test: int | None, data_seed: int = 0) -> dict[str, Split]:
    """Each dataset as its own 10-class task (task name = dataset name), pixels scaled to [0, 1].

    All three come from one :func:`~mtlkit.data.pooled_digits` call so that single-task and
    pooled networks see identical pixels and preprocessing (notMNIST has no agreed mean/std).
    ``n_train`` / ``n_test`` draw class-balanced subsets (``None``: everything).
    """
    splits = {}
    sides = {"train": pooled_digits("train", root=root), "test": pooled_digits("test", root=root)}
    for d, name in enumerate(sides["train"].classes["dataset"]):
        parts = []
        for side, n in (("train", n_train), ("test", n_test)):
            full = sides[side]
            rows = torch.nonzero(full.labels["dataset"] == d).squeeze(1)
            labels = full.meta["label"][rows]
            if n is not None and n < len(rows):
                rows = rows[torch.as_tensor(balanced_sample(labels.numpy(), n, seed=data_seed))]
            # Pooled class names are "<dataset>:<class>"; keep the class part of this dataset's ten.
            names = [c.split(":", 1)[1] for c in full.classes["pooled"][10 * d : 10 * d + 10]]
            parts.append(
                ImageDataset(
                    full.images[rows], {name: full.meta["label"][rows]}, classes={name: names}, name=f"{name}/{side}"
                )
            )
        splits[name] = Split(*parts)
    return splits


def pooled(datasets: Sequence[ImageDataset], space: PooledLabelSpace) -> ImageDataset:
    """The union of single-task datasets, labelled in ``space`` (task ``"pooled"``)."""
    images, labels = [], []
    for ds in datasets:
        (task,) = ds.tasks
        images.append(ds.images)
        labels.append(space.pool(task, ds.labels[task]))
    return ImageDataset(torch.cat(images), {"pooled": torch.cat(labels)}, name="+".join(space.tasks))
