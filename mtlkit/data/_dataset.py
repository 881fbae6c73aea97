"""The in-memory dataset every reader and multi-task view returns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from mtlkit.data._batches import InMemoryBatches, ScaleNormalize

__all__ = ["ImageDataset", "Split"]


class ImageDataset(Dataset[tuple[Tensor, dict[str, Tensor]]]):
    """Images and per-task targets held in memory as tensors.

    Pixels stay uint8 (a quarter of the memory of float32); conversion to
    float and normalisation happen per batch in :meth:`batches`, or per item
    in ``__getitem__`` for compatibility with ``torch.utils.data.DataLoader``.

    Args:
        images: uint8 ``(N, C, H, W)``.
        labels: task name -> ``(N,)`` targets: int64 class indices for
            classification tasks (``-100`` where unlabelled), float32 for
            regression or ±1 tasks.
        classes: task name -> class names (index ``k`` names class ``k``), for
            the tasks that have them.
        meta: per-example side information that is not a training target
            (e.g. ``"font"``, ``"fold"``, ``"alphabet"``); tensors of length N,
            indexed along with the images by :meth:`subset`.
        info: dataset-level facts (source, polarity, lookup tables).
        mean: per-channel pixel mean of the ``[0, 1]``-scaled data used for
            normalisation, or ``None`` to only scale.
        std: per-channel pixel std, paired with ``mean``.
        name: short identifier, e.g. ``"mnist/train"``.

    >>> ds = ImageDataset(torch.zeros(4, 1, 2, 2, dtype=torch.uint8),
    ...                   {"label": torch.tensor([0, 1, 0, 1])})
    >>> x, y = ds[1]
    >>> tuple(x.shape), int(y["label"])
    ((1, 2, 2), 1)
    >>> len(ds.subset([0, 2])), ds.subset([0, 2]).labels["label"].tolist()
    (2, [0, 0])
    """

    def __init__(
        self,
        images: Tensor,
        labels: Mapping[str, Tensor],
        *,
        classes: Mapping[str, Sequence[str]] | None = None,
        meta: Mapping[str, Tensor] | None = None,
        info: Mapping[str, Any] | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        name: str = "",
    ) -> None:
        if images.dim() != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
        n = images.shape[0]
        for field, table in (("labels", labels), ("meta", meta or {})):
            for key, value in table.items():
                if value.shape[0] != n:
                    raise ValueError(f"{field}[{key!r}] has {value.shape[0]} rows, images {n}")
        self.images = images
        self.labels = dict(labels)
        self.classes = {k: list(v) for k, v in (classes or {}).items()}
        self.meta = dict(meta or {})
        self.info = dict(info or {})
        self.mean = None if mean is None else tuple(mean)
        self.std = None if std is None else tuple(std)
        self.name = name
        self._transform = ScaleNormalize(self.mean, self.std)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[Tensor, dict[str, Tensor]]:
        index = int(index)
        if index < 0:
            index += len(self)
        # A length-1 slice keeps the (1, C, H, W) batch layout the transform expects.
        x = self._transform(self.images[index : index + 1])[0]
        return x, {task: y[index] for task, y in self.labels.items()}

    @property
    def tasks(self) -> list[str]:
        """Names of the target tasks, in insertion order."""
        return list(self.labels)

    def num_classes(self, task: str) -> int:
        """Number of classes of ``task`` (from its class names, else its label range)."""
        if task in self.classes:
            return len(self.classes[task])
        return int(self.labels[task].max()) + 1

    def subset(self, indices: Sequence[int] | np.ndarray | Tensor) -> ImageDataset:
        """New dataset with the rows ``indices`` (copies; metadata shared)."""
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        return self.replace(
            images=self.images[idx],
            labels={k: v[idx] for k, v in self.labels.items()},
            meta={k: v[idx] for k, v in self.meta.items()},
        )

    def replace(self, **changes: Any) -> ImageDataset:
        """Copy of this dataset with some constructor arguments changed.

        The views use it to swap the label dict while keeping everything else.
        """
        fields: dict[str, Any] = {
            "images": self.images,
            "labels": self.labels,
            "classes": self.classes,
            "meta": self.meta,
            "info": self.info,
            "mean": self.mean,
            "std": self.std,
            "name": self.name,
        }
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"unknown fields {sorted(unknown)}")
        fields.update(changes)
        images = fields.pop("images")
        labels = fields.pop("labels")
        return ImageDataset(images, labels, **fields)

    def batches(
        self,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        *,
        generator: torch.Generator | None = None,
        normalize: bool = True,
        tasks: Sequence[str] | None = None,
        device: torch.device | str | None = None,
    ) -> InMemoryBatches:
        """An :class:`InMemoryBatches` over this dataset.

        Args:
            batch_size: examples per batch.
            shuffle: reshuffle each epoch.
            seed: seed of a fresh generator (ignored if ``generator`` is given).
            drop_last: drop a final short batch.
            generator: shuffle source to use instead of a fresh seeded one.
            normalize: apply the dataset's ``mean``/``std``; if ``False`` (or the
                dataset has none) pixels are only scaled to ``[0, 1]``.
            tasks: subset of the label tasks to yield (default all).
            device: where batches go, moved as uint8 before conversion.
        """
        chosen = self.labels if tasks is None else {t: self.labels[t] for t in tasks}
        return InMemoryBatches(
            self.images,
            chosen,
            batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            generator=generator,
            seed=seed,
            mean=self.mean if normalize else None,
            std=self.std if normalize else None,
            device=device,
        )

    def __repr__(self) -> str:
        shape = "x".join(str(s) for s in self.images.shape[1:])
        return f"ImageDataset({self.name!r}, n={len(self)}, image={shape}, tasks={self.tasks})"


class Split(NamedTuple):
    """A train/test pair of datasets, as returned by the multi-task views."""

    train: ImageDataset
    test: ImageDataset
