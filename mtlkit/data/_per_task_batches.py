"""Mini-batches for tasks that each have their own dataset (e.g. one Omniglot alphabet per task)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import torch
from torch import Tensor

from mtlkit.data._batches import ScaleNormalize
from mtlkit.data._dataset import ImageDataset

__all__ = ["PerTaskBatches"]


class PerTaskBatches:
    r"""Steps of ``({task: x_t}, {task: y_t})`` over per-task datasets; each ``iter()`` is one epoch.

    An epoch has :math:`S = \min(\lceil \max_t n_t / b \rceil, \min_t n_t)` steps. Every task's
    examples are shuffled and cut into :math:`S` near-equal chunks, so each step holds **every**
    task (at most ``batch_size`` examples of each) and an epoch visits every example once. Small
    tasks thus get small batches instead of being cycled, and no task is ever missing from a step
    (the Trainer and :class:`~mtlkit.nn.DMTRLNet` see the full task set every time).

    Args:
        datasets: ``{task: dataset}``; each dataset's label ``task`` is that task's target.
        batch_size: largest per-task batch.
        shuffle: reshuffle each epoch (from :attr:`generator`, which the Trainer checkpoints).
        seed: seed of the generator.
        normalize: apply each dataset's ``mean``/``std`` (else only scale to ``[0, 1]``).

    >>> ds = {t: ImageDataset(torch.zeros(n, 1, 2, 2, dtype=torch.uint8), {t: torch.arange(n)})
    ...       for t, n in (("a", 5), ("b", 2))}
    >>> [{t: len(y[t]) for t in y} for _, y in PerTaskBatches(ds, batch_size=3)]
    [{'a': 3, 'b': 1}, {'a': 2, 'b': 1}]
    """

    def __init__(
        self,
        datasets: Mapping[str, ImageDataset],
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        normalize: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        empty = [task for task, ds in datasets.items() if len(ds) == 0]
        if not datasets or empty:
            raise ValueError(f"PerTaskBatches: need a non-empty dataset per task; empty: {empty}")
        for task, ds in datasets.items():
            if task not in ds.labels:
                raise ValueError(f"PerTaskBatches: dataset of task {task!r} has labels {ds.tasks}, not {task!r}")
        self.datasets = dict(datasets)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.generator = torch.Generator()
        self.generator.manual_seed(seed)
        self._transforms = {
            task: ScaleNormalize(ds.mean, ds.std) if normalize else ScaleNormalize()
            for task, ds in self.datasets.items()
        }

    def __len__(self) -> int:
        sizes = [len(ds) for ds in self.datasets.values()]
        return max(1, min(-(-max(sizes) // self.batch_size), *sizes))

    def __iter__(self) -> Iterator[tuple[dict[str, Tensor], dict[str, Tensor]]]:
        steps = len(self)
        # Draw every permutation now so the generator advances exactly once per epoch.
        chunks = {
            task: torch.tensor_split(
                torch.randperm(len(ds), generator=self.generator) if self.shuffle else torch.arange(len(ds)),
                steps,
            )
            for task, ds in self.datasets.items()
        }
        return self._epoch(chunks, steps)

    def _epoch(
        self, chunks: Mapping[str, tuple[Tensor, ...]], steps: int
    ) -> Iterator[tuple[dict[str, Tensor], dict[str, Tensor]]]:
        for step in range(steps):
            xs, ys = {}, {}
            for task, ds in self.datasets.items():
                idx = chunks[task][step]
                xs[task] = self._transforms[task](ds.images[idx])
                ys[task] = ds.labels[task][idx]
            yield xs, ys
