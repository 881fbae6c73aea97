"""notMNIST's font-disjoint split, and MNIST / notMNIST / Fashion-MNIST pooled."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

from mtlkit.data._builders import NOTMNIST_DEFAULT_SPLIT
from mtlkit.data._dataset import ImageDataset, Split
from mtlkit.data._load import load
from mtlkit.data._sampling import group_split

__all__ = ["POOLABLE", "notmnist_split", "pooled_digits"]

POOLABLE = ("mnist", "notmnist", "fashion_mnist")
"""Datasets :func:`pooled_digits` can pool: all 28x28, 10 classes, white on black."""


def notmnist_split(
    seed: int = NOTMNIST_DEFAULT_SPLIT["seed"],
    test_fraction: float = NOTMNIST_DEFAULT_SPLIT["test_fraction"],
    root: str | os.PathLike[str] | None = None,
) -> Split:
    """notMNIST_small split so that every font is on exactly one side.

    notMNIST has no official split, and one font renders the same glyph
    style, sometimes identical images, for several letters (see
    ``notmnist/SOURCE.md``). A random split of images would leak fonts from
    train into test, so a random ``test_fraction`` of the 1,873 fonts (the
    file name, shared by the letter folders) goes to test with all their
    letters. With the defaults this equals ``load("notmnist", "train")`` /
    ``load("notmnist", "test")``.
    """
    full = load("notmnist", "all", root)
    train_idx, test_idx = group_split(full.meta["font"].numpy(), test_fraction, seed)
    train, test = full.subset(train_idx), full.subset(test_idx)
    train.name, test.name = f"notmnist/train@{seed}", f"notmnist/test@{seed}"
    return Split(train, test)


def pooled_digits(
    split: str = "train",
    datasets: Sequence[str] = POOLABLE,
    root: str | os.PathLike[str] | None = None,
    notmnist_seed: int = NOTMNIST_DEFAULT_SPLIT["seed"],
) -> ImageDataset:
    r"""Several 10-class 28x28 datasets concatenated into one label space.

    The :math:`i`-th dataset in ``datasets`` has dataset id :math:`i` and
    label offset :math:`10 i`, so its class :math:`c` becomes pooled class
    :math:`10 i + c` of a :math:`10 \cdot |\text{datasets}|`-way problem
    (20- or 30-way). With the default order: MNIST digits 0-9, notMNIST
    letters A-J 10-19, Fashion-MNIST items 20-29.

    Tasks: ``"pooled"`` (offset label) and ``"dataset"`` (id). ``meta`` has
    ``"label"`` (the class within its dataset) and ``"offset"``. notMNIST
    uses its font-disjoint split (:func:`notmnist_split` with
    ``notmnist_seed``).

    Args:
        split: ``"train"`` or ``"test"``.
        datasets: any non-empty ordered subset of :data:`POOLABLE`, without repeats.
        root: data root.
        notmnist_seed: seed of the notMNIST font split.
    """
    if not datasets or len(set(datasets)) != len(datasets) or set(datasets) - set(POOLABLE):
        raise ValueError(f"datasets must be distinct names from {POOLABLE}, got {datasets!r}")
    parts = []
    for name in datasets:
        if name == "notmnist":
            parts.append(notmnist_split(seed=notmnist_seed, root=root)[split == "test"])
        else:
            parts.append(load(name, split, root))
    sizes = [len(p) for p in parts]
    dataset_id = torch.repeat_interleave(torch.arange(len(parts)), torch.tensor(sizes))
    offset = 10 * dataset_id
    label = torch.cat([p.labels["label"] for p in parts])
    return ImageDataset(
        torch.cat([p.images for p in parts]),
        {"pooled": label + offset, "dataset": dataset_id},
        classes={
            "pooled": [f"{n}:{c}" for n, p in zip(datasets, parts, strict=True) for c in p.classes["label"]],
            "dataset": list(datasets),
        },
        meta={"label": label, "offset": offset},
        info={
            "offsets": {n: 10 * i for i, n in enumerate(datasets)},
            "sizes": dict(zip(datasets, np.asarray(sizes).tolist(), strict=True)),
        },
        name=f"pooled[{'+'.join(datasets)}]/{split}",
    )
