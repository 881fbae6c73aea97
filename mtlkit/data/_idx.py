"""Reader for the IDX format of MNIST, Fashion-MNIST and notMNIST.

An IDX file is a 4-byte magic number ``0x00 0x00 <dtype code> <ndim>``, then
``ndim`` big-endian uint32 dimension sizes, then the values in row-major
order. The files here are gzip-compressed; raw files are read as well.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from mtlkit.data._errors import FormatError

__all__ = ["read_idx"]

# IDX type code -> big-endian numpy dtype (from the format's definition).
_DTYPES: dict[int, str] = {
    0x08: "u1",
    0x09: "i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}
_GZIP_MAGIC = b"\x1f\x8b"


def _decompress(raw: bytes, source: str) -> bytes:
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise FormatError(source, f"gzip stream is truncated or corrupt ({exc})") from exc


def read_idx(source: Path | bytes, *, name: str | None = None) -> np.ndarray:
    """Read an IDX file (gzip-compressed or raw) into a writable numpy array.

    The whole stream is decompressed in one call and the payload copied once
    into an array that owns its memory (so ``torch.from_numpy`` can share it
    without a read-only warning); 47 MB of MNIST pixels take ~0.2 s.

    Args:
        source: path to the file, or its bytes.
        name: label for error messages when ``source`` is bytes.

    Raises:
        FormatError: bad magic, unknown type code, or a payload whose length
            differs from the product of the header's dimensions (a truncated
            file fails here, never yields a shorter array).

    >>> import struct
    >>> blob = struct.pack(">BBBBI", 0, 0, 0x08, 1, 3) + bytes([7, 8, 9])
    >>> read_idx(blob).tolist()
    [7, 8, 9]
    """
    label = name or (str(source) if isinstance(source, Path) else "<bytes>")
    raw = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
    data = _decompress(raw, label)
    if len(data) < 4:
        raise FormatError(label, f"{len(data)} bytes is too short for an IDX header")
    zero1, zero2, code, ndim = struct.unpack_from(">BBBB", data, 0)
    if zero1 or zero2 or code not in _DTYPES or ndim == 0:
        raise FormatError(label, f"bad IDX magic {data[:4].hex()}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise FormatError(label, f"header needs {header} bytes, file has {len(data)}")
    dims = struct.unpack_from(f">{ndim}I", data, 4)
    dtype = np.dtype(_DTYPES[code])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header
    if actual != expected:
        raise FormatError(
            label,
            f"header {dims} promises {expected} payload bytes, found {actual} "
            f"({'truncated' if actual < expected else 'trailing data'})",
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    # Multi-byte IDX values are big-endian; astype returns native order (and a copy).
    return array.astype(dtype.newbyteorder("="), copy=True)
