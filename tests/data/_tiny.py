"""Writers of tiny dataset files in the upstream formats, for reader tests."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding of a uint8 or int32 array (header + big-endian payload)."""
    code = {np.dtype("uint8"): 0x08, np.dtype("int32"): 0x0C}[array.dtype]
    header = struct.pack(">BBBB", 0, 0, code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_gz(path: Path, payload: bytes) -> str:
    """Write ``payload`` gzipped (mtime 0, so bytes are reproducible); return its sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = gzip.compress(payload, mtime=0)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def tiny_mnist(root: Path, n: int = 20, seed: int = 0) -> dict[str, str]:
    """Write a tiny MNIST-layout train split under ``root/mnist``; return sha256 per file."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    return {
        "train-images-idx3-ubyte.gz": write_gz(
            root / "mnist" / "train-images-idx3-ubyte.gz", idx_bytes(images)
        ),
        "train-labels-idx1-ubyte.gz": write_gz(
            root / "mnist" / "train-labels-idx1-ubyte.gz", idx_bytes(labels)
        ),
    }
