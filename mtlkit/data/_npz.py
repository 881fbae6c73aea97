"""Safe ``.npz`` reading and the JPEG-in-npz layout of the UTKFace file.

Archives are always opened with ``allow_pickle=False``: an ``.npz`` can embed
pickled objects, and unpickling runs arbitrary code, so an object array is a
:class:`FormatError` here rather than a risk.

The UTKFace file stores 23,708 JPEG images concatenated in one byte array,
``jpeg``, with ``offsets`` such that image ``i`` is
``jpeg[offsets[i]:offsets[i + 1]]``. Decoding them takes seconds, so the
decoded ``(N, H, W, 3)`` array is cached as ``.npy`` in the cache directory,
keyed by the archive's sha256 so a different file can never hit a stale cache.
"""

from __future__ import annotations

import io
import itertools
import os
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from mtlkit.data._errors import FormatError
from mtlkit.data._root import cache_dir

__all__ = ["cached_arrays", "decode_jpeg_blob", "read_npz", "load_or_decode_jpegs"]


def read_npz(path: Path, keys: Sequence[str]) -> dict[str, np.ndarray]:
    """Read ``keys`` from an ``.npz`` archive without ever unpickling.

    Raises:
        FormatError: the archive is not a valid zip (e.g. truncated), a key is
            missing, or a member holds pickled objects.
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in keys if k not in archive.files]
            if missing:
                raise FormatError(path, f"missing arrays {missing}; has {archive.files}")
            return {k: archive[k] for k in keys}
    except (zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
        raise FormatError(path, f"not a readable pickle-free npz archive ({exc})") from exc


def _decode_range(blob: np.ndarray, offsets: np.ndarray, out: np.ndarray, start: int, stop: int) -> None:
    # Imported here: Pillow is only needed by the one dataset stored as JPEG.
    from PIL import Image  # noqa: PLC0415 - Pillow, for the one JPEG dataset

    height, width, channels = out.shape[1:]
    mode = "RGB" if channels == 3 else "L"
    for i in range(start, stop):
        data = blob[offsets[i] : offsets[i + 1]].tobytes()
        with Image.open(io.BytesIO(data)) as img:
            if img.size != (width, height):
                raise FormatError("jpeg blob", f"image {i} is {img.size}, not {(width, height)}")
            decoded = np.asarray(img.convert(mode))
        out[i] = decoded.reshape(height, width, channels)


def decode_jpeg_blob(
    blob: np.ndarray, offsets: np.ndarray, shape: tuple[int, int, int], *, workers: int = 2
) -> np.ndarray:
    """Decode concatenated JPEGs into one preallocated uint8 ``(N, H, W, C)`` array.

    Pillow releases the GIL while decoding, so a small thread pool splits the
    work in contiguous chunks; each thread writes its own rows of ``out``.
    """
    n = len(offsets) - 1
    if n < 0 or offsets[0] != 0 or offsets[-1] != len(blob) or np.any(np.diff(offsets) <= 0):
        raise FormatError("jpeg blob", "offsets do not partition the byte array")
    out = np.empty((n, *shape), dtype=np.uint8)
    workers = max(1, min(workers, n))
    bounds = np.linspace(0, n, workers + 1).astype(int)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        jobs = [pool.submit(_decode_range, blob, offsets, out, int(a), int(b)) for a, b in itertools.pairwise(bounds)]
        for job in jobs:
            job.result()
    return out


def load_or_decode_jpegs(path: Path, count: int, shape: tuple[int, int, int], key: str) -> np.ndarray:
    """Decoded images of a JPEG-in-npz file, channel-first, via an ``.npy`` cache.

    ``shape`` is one decoded image's ``(H, W, C)``; the result is
    ``(count, C, H, W)``, the layout that is cached, so a hit needs no transpose.

    ``key`` must identify the source bytes (it includes the archive's
    sha256). On a hit neither the 63 MB ``jpeg`` member is inflated nor any
    image decoded. The cache write is atomic and skipped when the cache
    directory is not writable.
    """
    cached = cache_dir() / f"{key}.npy"
    try:
        images = np.load(cached, allow_pickle=False)
        height, width, channels = shape
        if images.shape == (count, channels, height, width) and images.dtype == np.uint8:
            decoded: np.ndarray = images
            return decoded
    except (OSError, ValueError):
        pass  # no cache yet, or a damaged one: decode afresh
    arrays = read_npz(path, ("jpeg", "offsets"))
    if len(arrays["offsets"]) != count + 1:
        raise FormatError(path, f"{len(arrays['offsets'])} offsets for {count} images")
    decoded = decode_jpeg_blob(arrays["jpeg"], arrays["offsets"], shape, workers=min(4, os.cpu_count() or 1))
    images = np.ascontiguousarray(decoded.transpose(0, 3, 1, 2))
    del decoded
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cached.parent, prefix=".decode-", suffix=".npy")
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, images, allow_pickle=False)
        os.replace(tmp, cached)
    except OSError:
        pass
    return images


def cached_arrays(key: str, make: Callable[[], dict[str, np.ndarray]], keys: Sequence[str]) -> dict[str, np.ndarray]:
    """Arrays from ``<cache_dir>/<key>.npz``, else from ``make()``, then cached there.

    ``key`` must identify everything ``make`` depends on (e.g. include the
    source file's digest). The cache is read with ``allow_pickle=False``; one
    that is unreadable or lacks one of ``keys`` is rebuilt. It is written
    uncompressed and atomically, and not at all when the cache directory is
    not writable.

    >>> import tempfile
    >>> from unittest import mock
    >>> with tempfile.TemporaryDirectory() as d, mock.patch.dict(os.environ, {"MTLKIT_CACHE": d}):
    ...     first = cached_arrays("demo", lambda: {"x": np.arange(3)}, ["x"])
    ...     again = cached_arrays("demo", lambda: {"x": np.zeros(3)}, ["x"])
    >>> again["x"].tolist()
    [0, 1, 2]
    """
    cached = cache_dir() / f"{key}.npz"
    try:
        with np.load(cached, allow_pickle=False) as archive:
            if all(k in archive.files for k in keys):
                return {k: archive[k] for k in keys}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        pass  # no cache yet, or a damaged one: rebuild it
    arrays = make()
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cached.parent, prefix=".cache-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **{k: arrays[k] for k in keys})  # type: ignore[arg-type]  # numpy's stub types **kwds as its allow_pickle flag
            os.replace(tmp, cached)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError:
        pass
    return {k: arrays[k] for k in keys}
