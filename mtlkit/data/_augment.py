"""Mini-batches with the standard CIFAR augmentation: random crop after zero padding, random flip."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from mtlkit.data._batches import InMemoryBatches

__all__ = ["CropFlipBatches", "crop_flip"]


def crop_flip(images: Tensor, offsets: Tensor, flips: Tensor, padding: int) -> Tensor:
    r"""Crop each image of ``images`` at ``offsets`` after zero-padding by ``padding``, then mirror where ``flips``.

    For an image :math:`x \in \mathbb{R}^{C\times H\times W}` padded to :math:`\tilde x` of size
    :math:`(H+2p)\times(W+2p)`, the output is :math:`y_{c,i,j} = \tilde x_{c,\,i+\delta_y,\,j+\delta_x}`,
    with :math:`j` replaced by :math:`W-1-j` for a flipped image. All images are cut by one gather.

    Args:
        images: ``(N, C, H, W)``.
        offsets: ``(N, 2)`` integer ``(δy, δx)`` in ``[0, 2·padding]``.
        flips: ``(N,)`` booleans.
        padding: zero border added on every side before cropping.

    Example:
        >>> x = torch.arange(9.0).reshape(1, 1, 3, 3)
        >>> crop_flip(x, torch.tensor([[1, 1]]), torch.tensor([False]), 1).equal(x)  # centre crop
        True
        >>> crop_flip(x, torch.tensor([[0, 1]]), torch.tensor([True]), 1)[0, 0].tolist()
        [[0.0, 0.0, 0.0], [2.0, 1.0, 0.0], [5.0, 4.0, 3.0]]
    """
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    n, _, h, w = images.shape
    if offsets.shape != (n, 2) or flips.shape != (n,):
        raise ValueError(f"offsets must be ({n}, 2) and flips ({n},), got {tuple(offsets.shape)}, {tuple(flips.shape)}")
    if offsets.numel() and (int(offsets.min()) < 0 or int(offsets.max()) > 2 * padding):
        low, high = int(offsets.min()), int(offsets.max())
        raise ValueError(f"offsets must lie in [0, {2 * padding}], got range [{low}, {high}]")
    padded = torch.nn.functional.pad(images, (padding,) * 4)
    cols = torch.arange(w, device=images.device).expand(n, w)
    # A flip reverses the columns that the crop reads, so crop and flip are one gather.
    cols = torch.where(flips[:, None], w - 1 - cols, cols) + offsets[:, 1:2]
    rows = torch.arange(h, device=images.device)[None, :] + offsets[:, 0:1]
    batch = torch.arange(n, device=images.device)[:, None, None]
    return padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


class CropFlipBatches(InMemoryBatches):
    """:class:`InMemoryBatches` whose training images are randomly cropped and mirrored each epoch.

    Each ``iter()`` draws the permutation, then one crop offset and one flip per example, all
    from :attr:`generator`; so an epoch is a function of the generator state at its start, and a
    checkpointed run resumes bitwise (the :class:`~mtlkit.Trainer` saves that state). Cropping
    works on the stored (uint8) pixels, before the normalising transform, so the zero border is
    black, as in the usual CIFAR recipe (pad 4, crop 32, flip with probability 1/2).

    Example:
        >>> imgs = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8)
        >>> it = CropFlipBatches(imgs, {"y": torch.arange(6)}, 4, padding=2, seed=0)
        >>> [tuple(x.shape) for x, _ in it]
        [(4, 3, 8, 8), (2, 3, 8, 8)]
    """

    def __init__(self, *args: object, padding: int = 4, flip: bool = True, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]  # same signature as InMemoryBatches
        if not isinstance(padding, int) or padding < 0:
            raise ValueError(f"padding must be a non-negative int, got {padding!r}")
        if self.images.dim() != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {tuple(self.images.shape)}")
        self.padding = padding
        self.flip = flip

    def __iter__(self) -> Iterator[tuple[Tensor, dict[str, Tensor]]]:
        n = self.num_examples
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        offsets = torch.randint(0, 2 * self.padding + 1, (n, 2), generator=self.generator)
        flips = torch.rand(n, generator=self.generator) < 0.5
        if not self.flip:
            flips = torch.zeros(n, dtype=torch.bool)
        return self._augmented_epoch(order, offsets, flips)

    def _augmented_epoch(
        self, order: Tensor, offsets: Tensor, flips: Tensor
    ) -> Iterator[tuple[Tensor, dict[str, Tensor]]]:
        n, size = self.num_examples, self.batch_size
        stop = n - n % size if self.drop_last else n
        for start in range(0, stop, size):
            idx = order[start : min(start + size, n)]
            x = self.images[idx]
            ys = {task: t[idx] for task, t in self.targets.items()}
            if self.device is not None:
                x = x.to(self.device, non_blocking=True)
                ys = {task: y.to(self.device, non_blocking=True) for task, y in ys.items()}
            x = crop_flip(x, offsets[idx].to(x.device), flips[idx].to(x.device), self.padding)
            yield self.transform(x), ys

    def __repr__(self) -> str:
        return super().__repr__().replace("InMemoryBatches(", f"CropFlipBatches(padding={self.padding}, ", 1)
