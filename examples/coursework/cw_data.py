"""Class-balanced subsets of MNIST and Fashion-MNIST for the budgets of each mode."""

from __future__ import annotations

import numpy as np

from mtlkit.data import ImageDataset, Split, balanced_sample, fashion_mnist_tasks, load


def subset(dataset: ImageDataset, n: int | None, seed: int = 0) -> ImageDataset:
    """A class-balanced random ``n`` rows of ``dataset`` (all rows if ``n`` is None or too large)."""
    if n is None or n >= len(dataset):
        return dataset
    labels = next(iter(dataset.labels.values())).numpy()
    return dataset.subset(balanced_sample(labels, n, seed=seed))


def mnist(data_root: str | None, n_train: int | None, n_test: int | None, seed: int = 0) -> Split:
    """MNIST digits as the task ``"digit"``, optionally subsampled."""
    train, test = (load("mnist", split, data_root) for split in ("train", "test"))
    train, test = (ds.replace(labels={"digit": ds.labels["label"]}) for ds in (train, test))
    return Split(subset(train, n_train, seed), subset(test, n_test, seed))


def pixels(dataset: ImageDataset) -> np.ndarray:
    """Images as ``(N, 784)`` float64 in ``[0, 1]`` (the vectorised form PCA and the perceptron use)."""
    return dataset.images.reshape(len(dataset), -1).numpy().astype(np.float64) / 255.0


def fashion(data_root: str | None, small: bool) -> Split:
    """Fashion-MNIST with tasks ``item`` and ``group`` (``small``: the 2k/1k subset shipped with mtlkit)."""
    return Split(*(fashion_mnist_tasks(split, root=data_root, small=small) for split in ("train", "test")))
