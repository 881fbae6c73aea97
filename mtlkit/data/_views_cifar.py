"""CIFAR-100 with its two label granularities as two tasks."""

from __future__ import annotations

import os

from mtlkit.data._dataset import ImageDataset
from mtlkit.data._load import load

__all__ = ["cifar100_tasks"]


def cifar100_tasks(split: str = "train", root: str | os.PathLike[str] | None = None) -> ImageDataset:
    """CIFAR-100 with tasks ``"fine"`` (100 classes) and ``"coarse"`` (20 superclasses).

    Each fine class belongs to exactly one superclass, so the coarse task is
    a deterministic function of the fine one; it acts as an auxiliary task.
    Records are sorted by fine class: shuffle before taking prefixes.
    Available only where ``cifar100/`` exists under the data root.
    """
    return load("cifar100", split, root)
