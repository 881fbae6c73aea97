"""Regenerate ``mtlkit/data/fashion_mnist_small.npz`` from the full Fashion-MNIST files.

The embedded subset lets ``load("fashion_mnist_small")`` and ``mtlkit demo``
run with no data root. It holds 2,000 training and 1,000 test images, exactly
200 / 100 per class, drawn with :func:`mtlkit.data.balanced_sample` and a
fixed seed, so rerunning this script gives identical arrays (the zip bytes
differ only by member timestamps).

Usage::

    MTLKIT_DATA=/path/to/data python scripts/make_fashion_mnist_small.py [--out PATH]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from mtlkit.data import balanced_sample, load

SEED = 2017
SIZES = {"train": 2_000, "test": 1_000}
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "mtlkit" / "data" / "fashion_mnist_small.npz"


def build_arrays(root: str | os.PathLike[str] | None = None) -> dict[str, np.ndarray]:
    """The subset's arrays: ``x_<split>`` (N, 28, 28) uint8, ``y_<split>`` uint8,
    ``index_<split>`` int32 (row in the full split), for train and test."""
    arrays: dict[str, np.ndarray] = {}
    for split, size in SIZES.items():
        full = load("fashion_mnist", split, root)
        labels = full.labels["label"].numpy()
        index = balanced_sample(labels, size, seed=SEED)
        arrays[f"x_{split}"] = full.images[index, 0].numpy()
        arrays[f"y_{split}"] = labels[index].astype(np.uint8)
        arrays[f"index_{split}"] = index.astype(np.int32)
    return arrays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="data root (default $MTLKIT_DATA)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    np.savez_compressed(args.out, **build_arrays(args.root))
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
