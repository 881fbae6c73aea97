"""Reader for the CIFAR-100 "binary version" record layout.

Each record is 3,074 bytes: ``<coarse label><fine label><1024 R><1024 G><1024 B>``,
every plane row-major 32x32, no header. So the whole file is one
``(N, 3074)`` byte matrix, and the images are a reshape of its last 3,072
columns, already in channel-first order; no per-record parsing is needed.
The files may be raw or xz/gzip compressed.
"""

from __future__ import annotations

import gzip
import lzma
import zlib
from pathlib import Path

import numpy as np

from mtlkit.data._errors import FormatError

__all__ = ["RECORD_BYTES", "decompress_records", "read_cifar100_records"]

RECORD_BYTES = 2 + 3 * 32 * 32
_XZ_MAGIC = b"\xfd7zXZ\x00"
_GZIP_MAGIC = b"\x1f\x8b"


def _decompress(raw: bytes, label: str) -> bytes:
    try:
        if raw.startswith(_XZ_MAGIC):
            # One call: the stream is decoded straight into one buffer, which
            # np.frombuffer then wraps without another copy.
            return lzma.decompress(raw, format=lzma.FORMAT_XZ)
        if raw.startswith(_GZIP_MAGIC):
            return gzip.decompress(raw)
    except (lzma.LZMAError, EOFError, OSError, zlib.error) as exc:
        raise FormatError(label, f"compressed stream is truncated or corrupt ({exc})") from exc
    return raw


def decompress_records(path: Path) -> bytes:
    """The raw record bytes of a (possibly xz- or gzip-compressed) record file."""
    return _decompress(Path(path).read_bytes(), str(path))


def read_cifar100_records(
    source: Path | bytes, *, expected_records: int | None = None, name: str | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read CIFAR-100 binary records.

    Args:
        source: path or bytes of a (possibly xz- or gzip-compressed) record file.
        expected_records: if given, the exact record count the file must hold.
        name: label for error messages when ``source`` is bytes.

    Returns:
        ``(images, fine, coarse)``: uint8 ``(N, 3, 32, 32)`` and two uint8 ``(N,)``,
        all owning their memory.

    Raises:
        FormatError: the byte count is not a whole number of records, or the
            record count differs from ``expected_records``.
    """
    label = name or (str(source) if isinstance(source, (str, Path)) else "<bytes>")
    raw = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
    data = _decompress(raw, label)
    n, rest = divmod(len(data), RECORD_BYTES)
    if rest:
        raise FormatError(
            label, f"{len(data)} bytes is not a whole number of {RECORD_BYTES}-byte records"
        )
    if expected_records is not None and n != expected_records:
        raise FormatError(label, f"expected {expected_records} records, found {n}")
    records = np.frombuffer(data, dtype=np.uint8).reshape(n, RECORD_BYTES)
    # The pixel columns reshape to (N, 3, 32, 32) as a strided view of the
    # read-only buffer; copy once into owned, contiguous, writable arrays.
    images = np.ascontiguousarray(records[:, 2:].reshape(n, 3, 32, 32)).copy()
    return images, records[:, 1].copy(), records[:, 0].copy()
