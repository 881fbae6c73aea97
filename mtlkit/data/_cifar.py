"""Reader for the CIFAR-100 "binary version" record layout.

Each record is 3,074 bytes: ``<coarse label><fine label><1024 R><1024 G><1024 B>``,
every plane row-major 32x32, no header. So the whole file is one
``(N, 3074)`` byte matrix, and the images are a reshape of its last 3,072
columns, already in channel-first order; no per-record parsing is needed.
The files may be raw or xz/gzip compressed.

The official ``cifar-100-binary.tar.gz`` is read in place: the members a
split needs are read into memory in one streaming pass and never extracted,
so no path stored in the archive ever reaches the filesystem (no path
traversal, no links followed). Nothing is unpickled: this is the binary
version, not the python one.
"""

from __future__ import annotations

import gzip
import lzma
import tarfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mtlkit.data._errors import FormatError

__all__ = [
    "ARCHIVE_NAME",
    "RECORD_BYTES",
    "decompress_records",
    "read_cifar100_archive",
    "read_cifar100_records",
    "read_tar_members",
]

RECORD_BYTES = 2 + 3 * 32 * 32
ARCHIVE_NAME = "cifar-100-binary.tar.gz"
_ARCHIVE_FOLDER = "cifar-100-binary"
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
        raise FormatError(label, f"{len(data)} bytes is not a whole number of {RECORD_BYTES}-byte records")
    if expected_records is not None and n != expected_records:
        raise FormatError(label, f"expected {expected_records} records, found {n}")
    records = np.frombuffer(data, dtype=np.uint8).reshape(n, RECORD_BYTES)
    # The pixel columns reshape to (N, 3, 32, 32) as a strided view of the
    # read-only buffer; copy once into owned, contiguous, writable arrays.
    images = np.ascontiguousarray(records[:, 2:].reshape(n, 3, 32, 32)).copy()
    return images, records[:, 1].copy(), records[:, 0].copy()


def read_tar_members(path: Path, names: Sequence[str]) -> dict[str, bytes]:
    """The regular-file members ``names`` of a (possibly compressed) tar archive, in memory.

    One streaming pass, stopping once every member is found; nothing is
    written to disk.

    Raises:
        FormatError: a member is missing or not a regular file, or the archive
            is truncated or corrupt.

    >>> import io, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with tarfile.open(Path(d) / "a.tar.gz", "w:gz") as tar:
    ...         info = tarfile.TarInfo("a/hello.txt")
    ...         info.size = 2
    ...         tar.addfile(info, io.BytesIO(b"hi"))
    ...     read_tar_members(Path(d) / "a.tar.gz", ["a/hello.txt"])
    {'a/hello.txt': b'hi'}
    """
    wanted, found = set(names), {}
    try:
        with tarfile.open(path, mode="r|*") as tar:
            for member in tar:
                if member.name not in wanted or member.name in found:
                    continue
                extracted = tar.extractfile(member) if member.isreg() else None
                if extracted is None:
                    raise FormatError(path, f"member {member.name} is not a regular file")
                found[member.name] = extracted.read()
                if len(found) == len(wanted):
                    break
    except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError) as exc:
        raise FormatError(path, f"archive is truncated or corrupt ({exc})") from exc
    missing = [name for name in names if name not in found]
    if missing:
        raise FormatError(path, f"missing member(s) {', '.join(missing)}")
    return found


def read_cifar100_archive(path: Path, split: str) -> tuple[bytes, tuple[str, ...], tuple[str, ...]]:
    """Record bytes and label names of ``split`` from the official ``cifar-100-binary.tar.gz``.

    Args:
        path: the archive.
        split: ``"train"`` or ``"test"`` (member ``cifar-100-binary/<split>.bin``).

    Returns:
        ``(records, fine_names, coarse_names)``: the raw record bytes in the
        official order (parse them with :func:`read_cifar100_records`) and
        the names of the 100 fine and 20 coarse classes.

    Raises:
        FormatError: a member is missing or the archive is truncated or corrupt.
    """
    members = [
        f"{_ARCHIVE_FOLDER}/{name}" for name in (f"{split}.bin", "fine_label_names.txt", "coarse_label_names.txt")
    ]
    found = read_tar_members(path, members)
    records, fine, coarse = (found[name] for name in members)
    try:
        return records, tuple(fine.decode("utf-8").split()), tuple(coarse.decode("utf-8").split())
    except UnicodeDecodeError as exc:
        raise FormatError(path, f"label names are not UTF-8 text ({exc})") from exc
