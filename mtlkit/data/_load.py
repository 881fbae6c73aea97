"""``load``: the one entry point from a dataset name to an in-memory dataset."""

from __future__ import annotations

import os

from mtlkit.data._dataset import ImageDataset
from mtlkit.data._registry import REGISTRY
from mtlkit.data._root import resolve_root

__all__ = ["available", "load"]


def load(
    name: str,
    split: str = "train",
    root: str | os.PathLike[str] | None = None,
    download: bool = False,
) -> ImageDataset:
    """Load a dataset split into memory, verifying every file's sha256 first.

    Args:
        name: ``"mnist"``, ``"fashion_mnist"``, ``"notmnist"``, ``"omniglot"``,
            ``"utkface"``, ``"cifar100"`` or ``"fashion_mnist_small"`` (shipped
            inside the package; needs no data root).
        split: ``"train"`` or ``"test"`` for every dataset. Also ``"all"`` for
            notMNIST, Omniglot and UTKFace (which have no official split: their
            train/test are a font-disjoint split, background/evaluation, and
            fold 0 as test), and ``"background"``/``"evaluation"`` for Omniglot.
        root: data root; default ``$MTLKIT_DATA``, else ``~/.cache/mtlkit``.
            Files live under ``<root>/<dataset folder>/`` as in the shared data root.
        download: when the files of a split are missing, fetch them from their
            canonical URL, verified and moved atomically into place: the
            ``.gz`` files of MNIST and Fashion-MNIST, the official
            ``cifar-100-binary.tar.gz`` of CIFAR-100 and the
            ``images_<part>.zip`` of Omniglot (read in place of the converted
            layout of the shared data root, giving the same dataset).

    Raises:
        MissingFileError: a file is absent (the message names the path, its
            sha256 and how to obtain it).
        ChecksumError: a file is corrupt, truncated or a different version.
        FormatError: a file passed its checksum but is malformed (only for
            files accepted under a custom registry entry).
        ValueError: unknown name or split.

    >>> ds = load("fashion_mnist_small", "test")
    >>> len(ds), tuple(ds.images.shape[1:]), ds.classes["label"][9]
    (1000, (1, 28, 28), 'Ankle boot')
    """
    try:
        spec = REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted(REGISTRY)}") from None
    return spec.load(split, root, download)


def available(root: str | os.PathLike[str] | None = None) -> list[str]:
    """Names of the datasets whose every split has a complete file set under the data root.

    Presence only; checksums are verified by :func:`load`.

    >>> "fashion_mnist_small" in available("/nonexistent")
    True
    """
    base = resolve_root(root)
    return sorted(
        name
        for name, spec in REGISTRY.items()
        if all(
            any(all((base / f.path).exists() for f in files) for files in spec.file_sets(split))
            for split in spec.splits
        )
    )
