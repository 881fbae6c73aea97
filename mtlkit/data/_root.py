"""Where dataset files live, how they are verified, and how they are fetched.

Three concerns that all act on files under the data root:

* **Root resolution.** ``root`` argument, else ``$MTLKIT_DATA``, else
  ``~/.cache/mtlkit``.
* **Verification.** Every file is hashed (sha256) on first use and compared
  with the digests the registry accepts. Hashing 140 MB takes about a second,
  so the verdict is remembered in a small JSON file keyed by path, size and
  modification time; a file that changes on disk is hashed again. Upstream
  archives whose publishers give only an md5 (CIFAR-100, Omniglot) are checked
  against that md5 the same way.
* **Download.** Streams a URL into a temporary file next to the destination,
  hashing while it writes, and moves it into place with :func:`os.replace`
  only when the digest matches, so an interrupted or corrupt download never
  leaves a file that looks valid.

Data roots may be read-only (shared datasets), so nothing here ever writes
into the data root except :func:`download_file`, which the user asks for.
Caches go to :func:`cache_dir` and caching silently turns itself off when
that directory is not writable: a cache is an optimisation, never a
requirement.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import tempfile
import threading
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mtlkit.data._errors import ChecksumError, DataError

__all__ = [
    "cache_dir",
    "download_file",
    "file_digest",
    "md5_of",
    "resolve_root",
    "sha256_of",
    "verify_file",
]

DATA_ENV = "MTLKIT_DATA"
CACHE_ENV = "MTLKIT_CACHE"
_CHUNK = 1 << 20
_VERDICTS_FILE = "verified-sha256.json"
ALGORITHMS = ("sha256", "md5")

# Verdicts already known in this process: key -> (size, mtime_ns, digest). The key is
# the path for sha256 (the cache's original format) and "md5:<path>" for md5.
_verdicts: dict[str, tuple[int, int, str]] = {}
_verdicts_loaded = False
# Paths hashed in this process whose verdict is not yet on disk.
_unsaved: set[str] = set()
_lock = threading.Lock()


def resolve_root(root: str | os.PathLike[str] | None = None) -> Path:
    """Return the data root: ``root``, else ``$MTLKIT_DATA``, else ``~/.cache/mtlkit``.

    The directory is not required to exist; readers report the missing files. One that exists
    but is a file is refused here, naming it, instead of as a missing file beneath it.
    """
    if root is not None:
        path, source = Path(root).expanduser(), "root"
    elif env := os.environ.get(DATA_ENV):
        path, source = Path(env).expanduser(), f"${DATA_ENV}"
    else:
        return Path.home() / ".cache" / "mtlkit"
    if path.exists() and not path.is_dir():
        raise ValueError(f"data {source} {str(path)!r} is a file, not a folder")
    return path


def cache_dir() -> Path:
    """Directory for derived files (checksum verdicts, decoded image arrays).

    ``$MTLKIT_CACHE`` if set, else ``~/.cache/mtlkit/derived``. It is kept apart
    from the data root because data roots may be shared and read-only.
    """
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "mtlkit" / "derived"


def _new_hash(algorithm: str) -> Any:
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unsupported digest {algorithm!r}; use one of {ALGORITHMS}")
    # md5 only detects corruption here (it is what upstream publishes), so it is
    # declared as not for security; FIPS-mode Pythons refuse md5 otherwise.
    return hashlib.new(algorithm, usedforsecurity=False)


def _hash_file(path: Path, algorithm: str) -> str:
    digest = _new_hash(algorithm)
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    hexdigest: str = digest.hexdigest()
    return hexdigest


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks so memory stays flat.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     (Path(d) / "f").write_bytes(b"abc")
    ...     sha256_of(Path(d) / "f")[:16]
    3
    'ba7816bf8f01cfea'
    """
    return _hash_file(path, "sha256")


def md5_of(path: Path) -> str:
    """Hex md5 of a file, for the upstream archives that publish only an md5.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     (Path(d) / "f").write_bytes(b"abc")
    ...     md5_of(Path(d) / "f")
    3
    '900150983cd24fb0d6963f7d28e17f72'
    """
    return _hash_file(path, "md5")


def _load_verdicts() -> None:
    global _verdicts_loaded  # noqa: PLW0603 - a once-per-process flag beside the module's verdict cache
    if _verdicts_loaded:
        return
    _verdicts_loaded = True
    try:
        raw = json.loads((cache_dir() / _VERDICTS_FILE).read_text())
        for key, (size, mtime_ns, digest) in raw.items():
            _verdicts.setdefault(key, (int(size), int(mtime_ns), str(digest)))
    except (OSError, ValueError, TypeError):
        # No cache yet, or an unreadable one: start afresh rather than fail.
        pass


def _save_verdicts() -> None:
    target = cache_dir() / _VERDICTS_FILE
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".verdicts-")
        with os.fdopen(fd, "w") as fh:
            json.dump({k: list(v) for k, v in _verdicts.items()}, fh)
        os.replace(tmp, target)
    except OSError:
        pass  # read-only home: verification still works, only slower next time


def _verdict_key(path: Path, algorithm: str) -> str:
    key = str(path.resolve())
    return key if algorithm == "sha256" else f"{algorithm}:{key}"


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Digest of ``path``, from the verdict cache when size and mtime still match.

    A freshly computed digest is remembered in memory; it is written to the
    on-disk cache by :func:`verify_file` once it is known to be a good one.

    Args:
        path: the file.
        algorithm: ``"sha256"`` or ``"md5"``.
    """
    path = Path(path)
    stat = path.stat()
    key = _verdict_key(path, algorithm)
    with _lock:
        _load_verdicts()
        known = _verdicts.get(key)
    if known is not None and known[:2] == (stat.st_size, stat.st_mtime_ns):
        return known[2]
    digest = sha256_of(path) if algorithm == "sha256" else _hash_file(path, algorithm)
    with _lock:
        _verdicts[key] = (stat.st_size, stat.st_mtime_ns, digest)
        _unsaved.add(key)
    return digest


def verify_file(path: Path, accepted: Sequence[str], algorithm: str = "sha256") -> str:
    """Check that ``path`` hashes to one of ``accepted``; return its digest.

    What is cached is the digest, not the verdict, so a bad file keeps being
    reported on every load until it is replaced.

    Args:
        path: the file.
        accepted: hex digests that are good copies.
        algorithm: ``"sha256"`` or ``"md5"`` (for upstream archives that publish only that).

    Raises:
        ChecksumError: the digest is not accepted (corrupt, truncated or a
            different version of the file).
    """
    path = Path(path)
    digest = file_digest(path, algorithm)
    if digest in accepted:
        key = _verdict_key(path, algorithm)
        with _lock:
            if key in _unsaved:
                _unsaved.discard(key)
                _save_verdicts()
    else:
        raise ChecksumError(path, tuple(accepted), digest, path.stat().st_size, algorithm)
    return digest


def download_file(
    url: str,
    dest: Path,
    accepted: Sequence[str],
    *,
    timeout: float = 60.0,
    algorithm: str = "sha256",
) -> Path:
    """Fetch ``url`` into ``dest`` if its digest (sha256, or ``algorithm``) is in ``accepted``.

    The body is streamed into a temporary file in ``dest``'s directory and
    hashed on the way; only a verified file is renamed to ``dest`` (atomic on
    one filesystem), so readers never see a partial download.

    Raises:
        ChecksumError: the downloaded bytes do not match; nothing is left behind.
        DataError: the URL could not be fetched.
    """
    dest = Path(dest)
    if not url.startswith(("http://", "https://")):
        raise DataError(f"refusing to download {url!r}: only http(s) URLs are supported")
    digest = _new_hash(algorithm)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    size = 0
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            announced = resp.headers.get("Content-Length")
            while chunk := resp.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
        # http.client ends a body cut off by the server quietly; say so rather
        # than report the checksum mismatch it would cause.
        if announced is not None and announced.isdigit() and size < int(announced):
            raise DataError(f"could not download {url}: connection closed after {size} of {announced} bytes")
        actual = digest.hexdigest()
        if actual not in accepted:
            raise ChecksumError(Path(url), tuple(accepted), actual, size, algorithm)
        os.replace(tmp, dest)
    except DataError:
        tmp.unlink(missing_ok=True)
        raise
    except (OSError, http.client.HTTPException) as exc:
        # URLError and socket errors are OSErrors; http.client's protocol errors
        # (e.g. IncompleteRead of a cut-off chunked body) are HTTPExceptions.
        tmp.unlink(missing_ok=True)
        raise DataError(f"could not download {url} to {dest}: {exc}") from exc
    return dest
