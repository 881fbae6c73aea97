"""Fast in-memory mini-batching for small-image datasets.

A ``DataLoader`` over a map-style dataset fetches items one by one, converts
each to float, and collates them: per-item Python work that dominates the
cost of a 28x28 image. When the whole dataset is one tensor, a batch is a
single fancy-index of the uint8 array followed by one vectorised
float-conversion-and-normalise, which is what :class:`InMemoryBatches` does.
``benchmarks/bench_batches.py`` measures the difference.

All randomness comes from :attr:`InMemoryBatches.generator`, so saving
``generator.get_state()`` before an epoch and restoring it reproduces that
epoch's order bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import torch
from torch import Tensor

from mtlkit.metrics import IGNORE_INDEX

__all__ = ["IGNORE_INDEX", "InMemoryBatches", "ScaleNormalize"]


class ScaleNormalize:
    r"""Batch transform: uint8 pixels to float32, then per-channel normalisation.

    .. math:: x' = \frac{x / 255 - \mu_c}{\sigma_c}

    computed as one multiply and one subtract, ``x * a_c - b_c`` with
    :math:`a_c = 1 / (255 \sigma_c)` and :math:`b_c = \mu_c / \sigma_c`. With
    ``mean=None`` it only scales to ``[0, 1]``. Float input is assumed to be
    already transformed and is returned unchanged.

    Args:
        mean: per-channel means of the ``[0, 1]``-scaled pixels (one value
            broadcasts to all channels), or ``None``.
        std: per-channel standard deviations, required with ``mean``.

    >>> t = ScaleNormalize(mean=(0.5,), std=(0.5,))
    >>> t(torch.tensor([[[[0, 255]]]], dtype=torch.uint8)).tolist()
    [[[[-1.0, 1.0]]]]
    """

    def __init__(self, mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> None:
        if (mean is None) != (std is None):
            raise ValueError("give both mean and std, or neither")
        self.mean = None if mean is None else tuple(float(m) for m in mean)
        self.std = None if std is None else tuple(float(s) for s in std)
        if self.std is not None and any(s <= 0 for s in self.std):
            raise ValueError(f"std must be positive, got {self.std}")

    def __call__(self, x: Tensor) -> Tensor:
        if x.is_floating_point():
            return x
        out = x.to(torch.float32)
        if self.mean is None or self.std is None:
            return out.mul_(1.0 / 255.0)
        mean = torch.tensor(self.mean, dtype=torch.float32, device=out.device)
        std = torch.tensor(self.std, dtype=torch.float32, device=out.device)
        # Channel axis is dim 1 of an (N, C, H, W) batch; one value broadcasts.
        shape = (1, -1) + (1,) * max(out.dim() - 2, 0)
        scale = (1.0 / (255.0 * std)).reshape(shape)
        shift = (mean / std).reshape(shape)
        return out.mul_(scale).sub_(shift)

    def __repr__(self) -> str:
        return f"ScaleNormalize(mean={self.mean}, std={self.std})"


class InMemoryBatches:
    """Mini-batches of an in-memory tensor dataset; each ``iter()`` is one epoch.

    Yields ``(x, {task: y})``: ``x`` is ``transform(images[idx])`` (float32 for
    the default transform) and each ``y`` is ``targets[task][idx]``. Targets
    are a dict so that one iterator serves every task; unlabelled entries
    carry :data:`IGNORE_INDEX` (``-100``).

    Args:
        images: ``(N, ...)`` tensor, uint8 pixels or already-transformed
            floats (then the default transform is the identity).
        targets: task name -> ``(N, ...)`` tensor.
        batch_size: examples per batch.
        shuffle: draw a fresh permutation from :attr:`generator` each epoch.
        drop_last: drop the final batch when it is smaller than ``batch_size``.
        generator: source of all shuffling. If ``None``, a new one seeded with
            ``seed`` is created.
        transform: callable applied to each batch of images; default
            :class:`ScaleNormalize` with ``mean``/``std``.
        seed: seed of the generator created when ``generator`` is ``None``.
        mean: per-channel mean for the default transform.
        std: per-channel std for the default transform.
        device: if given, each batch is moved there *before* the transform, so
            the host-to-device copy carries uint8 (a quarter of float32).

    Attributes:
        generator: the :class:`torch.Generator` behind every shuffle. The
            permutation of an epoch is drawn when ``iter()`` is called, so
            checkpointing ``generator.get_state()`` between epochs and
            restoring it reproduces the following epochs exactly.

    >>> imgs = torch.arange(10, dtype=torch.uint8).reshape(10, 1, 1, 1)
    >>> it = InMemoryBatches(imgs, {"y": torch.arange(10)}, 4, shuffle=False)
    >>> [y["y"].tolist() for _, y in it]
    [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    >>> len(InMemoryBatches(imgs, {"y": torch.arange(10)}, 4, drop_last=True))
    2
    """

    def __init__(
        self,
        images: Tensor,
        targets: Mapping[str, Tensor],
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = False,
        generator: torch.Generator | None = None,
        transform: Callable[[Tensor], Tensor] | None = None,
        *,
        seed: int = 0,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        n = images.shape[0]
        for task, target in targets.items():
            if target.shape[0] != n:
                raise ValueError(f"target {task!r} has {target.shape[0]} rows, images have {n}")
        self.images = images
        self.targets = dict(targets)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        if generator is None:
            generator = torch.Generator()
            generator.manual_seed(seed)
        self.generator = generator
        self.transform = transform if transform is not None else ScaleNormalize(mean, std)
        self.device = None if device is None else torch.device(device)

    def __len__(self) -> int:
        n = self.images.shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def num_examples(self) -> int:
        """Number of examples per epoch before ``drop_last``."""
        return int(self.images.shape[0])

    def __iter__(self) -> Iterator[tuple[Tensor, dict[str, Tensor]]]:
        # Draw the permutation now, not lazily at the first next(): the
        # generator's state then advances exactly once per iter() call.
        order = torch.randperm(self.num_examples, generator=self.generator) if self.shuffle else None
        return self._epoch(order)

    def _epoch(self, order: Tensor | None) -> Iterator[tuple[Tensor, dict[str, Tensor]]]:
        n, size = self.num_examples, self.batch_size
        stop = n - n % size if self.drop_last else n
        for start in range(0, stop, size):
            end = min(start + size, n)
            if order is None:
                # Contiguous slices are views: no gather, no copy until transform.
                x = self.images[start:end]
                ys = {task: t[start:end] for task, t in self.targets.items()}
            else:
                idx = order[start:end]
                x = self.images[idx]
                ys = {task: t[idx] for task, t in self.targets.items()}
            if self.device is not None:
                x = x.to(self.device, non_blocking=True)
                ys = {task: y.to(self.device, non_blocking=True) for task, y in ys.items()}
            yield self.transform(x), ys

    def __repr__(self) -> str:
        return (
            f"InMemoryBatches(n={self.num_examples}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last}, tasks={list(self.targets)})"
        )
