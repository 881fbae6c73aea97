"""Multi-MNIST, Multi-Fashion and Multi-(Fashion+MNIST): two items overlaid, one task per item."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import torch
from torch.nn import functional as F

from mtlkit.data._dataset import ImageDataset
from mtlkit.data._errors import DataError
from mtlkit.data._load import load
from mtlkit.data._npz import cached_arrays
from mtlkit.data._registry import REGISTRY
from mtlkit.data._root import cache_dir

__all__ = ["MULTI_MNIST_VARIANTS", "multi_mnist"]

MULTI_MNIST_VARIANTS: dict[str, tuple[str, str]] = {
    "mnist": ("mnist", "mnist"),
    "fashion": ("fashion_mnist", "fashion_mnist"),
    "fashion_mnist": ("mnist", "fashion_mnist"),
}
"""Variant → (dataset of the top-left item, dataset of the bottom-right item)."""

CANVAS = 36
SIZE = 28


#: sha256 of the built images with the default ``seed=0, max_shift=4``, checked after every build
#: or cache read: a change of the construction, of the sources or of the resizing shows up here.
EXPECTED_SHA256: dict[tuple[str, str], str] = {
    ("mnist", "train"): "ccb18626bbddc7e7b5c75f11d35e7965a77615557dfae77a7a15dfa7c889f3af",
    ("mnist", "test"): "ce90f68c677d5fa5ce907cf8fc4957a384a45d5dbfa633d3c882521055496762",
    ("fashion", "train"): "67448eed544580610f2b1d13c8db9b79077e481f279a57391702ee83413533bf",
    ("fashion", "test"): "a522dbe30bea7fc95123ad0fd489cd7bb35735af4bcfb69a8c7594d584805b65",
    ("fashion_mnist", "train"): "933f5f6e5daa559e5eace89c8256e8ede7838422a20237cda5ffbcc669d509e9",
    ("fashion_mnist", "test"): "64da5ed4541c59f3ae8ea92dfc164ad8f1a83a8e01a4f24957da5a18055ebb66",
}


def _source_digest(name: str, split: str) -> str:
    accepted = "".join(",".join(f.digests[1]) for f in REGISTRY[name].splits[split])
    return hashlib.sha256(accepted.encode()).hexdigest()[:16]


def _compose(left: torch.Tensor, right: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, 1, 28, 28)`` overlays: ``left`` top-left, ``right`` bottom-right, pixel-wise max."""
    n = left.shape[0]
    canvas = torch.zeros(n, 1, CANVAS, CANVAS, dtype=torch.uint8)
    far = CANVAS - SIZE
    for i in range(n):  # per-image offsets; 70k small copies take well under a second
        ly, lx, ry, rx = (int(v) for v in shifts[i])
        canvas[i, :, ly : ly + SIZE, lx : lx + SIZE] = left[i]
        placed = canvas[i, :, far - ry : far - ry + SIZE, far - rx : far - rx + SIZE]
        torch.maximum(placed, right[i], out=placed)
    resized = F.interpolate(canvas.float(), size=(SIZE, SIZE), mode="bilinear", antialias=True, align_corners=False)
    return resized.round().clamp(0, 255).to(torch.uint8)


def multi_mnist(
    split: str = "train",
    variant: str = "mnist",
    *,
    seed: int = 0,
    max_shift: int = 4,
    root: str | os.PathLike[str] | None = None,
) -> ImageDataset:
    r"""Two items on one image, tasks ``"left"`` and ``"right"`` (Sener & Koltun, NeurIPS 2018, Sec. 6.1).

    Every image :math:`i` of the split is the top-left item; the bottom-right one is image
    :math:`\pi(i)` of the same split for a random permutation :math:`\pi`. The two 28×28 items
    are placed on a 36×36 canvas — the left one at offset :math:`(a, b)` from the top-left
    corner, the right one at :math:`(c, d)` from the bottom-right corner, with
    :math:`a, b, c, d` drawn uniformly from :math:`\{0, \dots, \text{max\_shift}\}` — overlapping
    pixels take the maximum, and the canvas is resized to 28×28 (bilinear, antialiased).
    Everything random comes from ``seed``; the result is cached under a key made of the sources'
    sha256, the split and the parameters, and its own sha256 is in ``info["sha256"]`` — checked
    against :data:`EXPECTED_SHA256` for the default parameters.

    Variants (:data:`MULTI_MNIST_VARIANTS`): ``"mnist"`` (Multi-MNIST), ``"fashion"``
    (Multi-Fashion), ``"fashion_mnist"`` (Multi-(Fashion+MNIST): an MNIST digit top-left, a
    Fashion-MNIST item bottom-right), as in Lin et al., "Pareto Multi-Task Learning", NeurIPS 2019.

    Args:
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000).
        variant: which datasets supply the two items.
        seed: seed of the pairing and the shifts.
        max_shift: largest shift in pixels, ``0 ≤ max_shift ≤ 8``.
        root: data root holding MNIST and Fashion-MNIST.

    Example (needs MNIST in the data root)::

        ds = multi_mnist("test", "fashion_mnist")
        ds.labels["left"][:3], ds.classes["right"][:2]  # digits, then Fashion-MNIST item names
    """
    if variant not in MULTI_MNIST_VARIANTS:
        raise ValueError(f"variant must be one of {sorted(MULTI_MNIST_VARIANTS)}, got {variant!r}")
    if not isinstance(max_shift, int) or not 0 <= max_shift <= CANVAS - SIZE:
        raise ValueError(f"max_shift must be an int in [0, {CANVAS - SIZE}], got {max_shift!r}")
    if not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}")
    left_name, right_name = MULTI_MNIST_VARIANTS[variant]
    left_ds = load(left_name, split, root)
    right_ds = left_ds if right_name == left_name else load(right_name, split, root)
    if len(left_ds) != len(right_ds):
        raise ValueError(f"{left_name} and {right_name} {split} splits differ in size")
    key = (
        f"multi-{variant}-{split}-seed{seed}-shift{max_shift}-"
        f"{_source_digest(left_name, split)}-{_source_digest(right_name, split)}"
    )

    def make() -> dict[str, np.ndarray]:
        generator = torch.Generator().manual_seed(seed)
        n = len(left_ds)
        partner = torch.randperm(n, generator=generator)
        shifts = torch.randint(0, max_shift + 1, (n, 4), generator=generator)
        images = _compose(left_ds.images, right_ds.images[partner], shifts)
        return {"images": images.numpy(), "partner": partner.numpy(), "shifts": shifts.numpy()}

    arrays = cached_arrays(key, make, ["images", "partner", "shifts"])
    images = torch.from_numpy(arrays["images"])
    partner = torch.from_numpy(arrays["partner"])
    digest = hashlib.sha256(arrays["images"].tobytes()).hexdigest()
    expected = EXPECTED_SHA256.get((variant, split)) if (seed, max_shift) == (0, 4) else None
    if expected is not None and digest != expected:
        raise DataError(
            f"multi_mnist({split!r}, {variant!r}) built images with sha256 {digest}, expected {expected}; "
            f"delete {cache_dir() / (key + '.npz')} if the cache is damaged, else the construction changed"
        )
    return ImageDataset(
        images,
        {"left": left_ds.labels["label"].clone(), "right": right_ds.labels["label"][partner].clone()},
        classes={"left": left_ds.classes["label"], "right": right_ds.classes["label"]},
        meta={"partner": partner, "shifts": torch.from_numpy(arrays["shifts"])},
        info={"variant": variant, "seed": seed, "max_shift": max_shift, "sha256": digest, "cache_key": key},
        name=f"multi_{variant}/{split}",
    )
