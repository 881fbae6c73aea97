"""Fashion-MNIST as two tasks: the 10-way item and a coarser product group."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import torch

from mtlkit.data._builders import FASHION_MNIST_CLASSES
from mtlkit.data._dataset import ImageDataset
from mtlkit.data._load import load

__all__ = ["FASHION_MNIST_GROUPS", "fashion_mnist_tasks"]

FASHION_MNIST_GROUPS: dict[str, tuple[str, ...]] = {
    "clothing": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Shirt"),
    "footwear": ("Sandal", "Sneaker", "Ankle boot"),
    "bags": ("Bag",),
}
"""Default grouping. The coursework this reproduces does not state its grouping;
this one follows the product type (clothes, shoes, bags)."""


def _group_lookup(groups: Mapping[str, Sequence[str | int]]) -> torch.Tensor:
    """Tensor ``g`` with ``g[item] = group index``; groups must partition the 10 items."""
    lookup = torch.full((len(FASHION_MNIST_CLASSES),), -1, dtype=torch.long)
    for g, members in enumerate(groups.values()):
        for member in members:
            item = member if isinstance(member, int) else FASHION_MNIST_CLASSES.index(member)
            if lookup[item] != -1:
                raise ValueError(f"item {FASHION_MNIST_CLASSES[item]!r} is in two groups")
            lookup[item] = g
    missing = [FASHION_MNIST_CLASSES[i] for i in torch.nonzero(lookup < 0).flatten().tolist()]
    if missing:
        raise ValueError(f"items {missing} belong to no group")
    return lookup


def fashion_mnist_tasks(
    split: str = "train",
    groups: Mapping[str, Sequence[str | int]] = FASHION_MNIST_GROUPS,
    root: str | os.PathLike[str] | None = None,
    small: bool = False,
) -> ImageDataset:
    """Fashion-MNIST with tasks ``"item"`` (10 classes) and ``"group"``.

    Args:
        split: ``"train"`` or ``"test"``.
        groups: group name -> member items (class names or indices 0-9); must
            partition the 10 items. Group ``k`` is the ``k``-th key.
        root: data root (ignored with ``small=True``).
        small: use the 2,000/1,000-image subset shipped with mtlkit.

    >>> ds = fashion_mnist_tasks("test", small=True)
    >>> ds.classes["group"], ds.labels["group"].bincount().tolist()
    (['clothing', 'footwear', 'bags'], [600, 300, 100])
    """
    lookup = _group_lookup(groups)
    base = load("fashion_mnist_small" if small else "fashion_mnist", split, root)
    item = base.labels["label"]
    return base.replace(
        labels={"item": item, "group": lookup[item]},
        classes={"item": FASHION_MNIST_CLASSES, "group": list(groups)},
        name=f"{base.name}:item+group",
    )
