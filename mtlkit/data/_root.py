"""Where dataset files live, how they are verified, and how they are fetched.

Three concerns that all act on files under the data root:

* **Root resolution.** ``root`` argument, else ``$MTLKIT_DATA``, else
  ``~/.cache/mtlkit``.
* **Verification.** Every file is hashed (sha256) on first use and compared
  with the digests the registry accepts. Hashing 140 MB takes about a second,
  so the verdict is remembered in a small JSON file keyed by path, size and
  modification time; a file that changes on disk is hashed again.
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
import json
import os
import tempfile
import threading
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from mtlkit.data._errors import ChecksumError, DataError

__all__ = [
    "cache_dir",
    "download_file",
    "file_digest",
    "resolve_root",
    "sha256_of",
    "verify_file",
]

DATA_ENV = "MTLKIT_DATA"
CACHE_ENV = "MTLKIT_CACHE"
_CHUNK = 1 << 20
_VERDICTS_FILE = "verified-sha256.json"

# Verdicts already known in this process: path -> (size, mtime_ns, sha256).
_verdicts: dict[str, tuple[int, int, str]] = {}
_verdicts_loaded = False
# Paths hashed in this process whose verdict is not yet on disk.
_unsaved: set[str] = set()
_lock = threading.Lock()


def resolve_root(root: str | os.PathLike[str] | None = None) -> Path:
    """Return the data root: ``root``, else ``$MTLKIT_DATA``, else ``~/.cache/mtlkit``.

    The directory is not required to exist; readers report the missing files.
    """
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "mtlkit"


def cache_dir() -> Path:
    """Directory for derived files (checksum verdicts, decoded image arrays).

    ``$MTLKIT_CACHE`` if set, else ``~/.cache/mtlkit/derived``. It is kept apart
    from the data root because data roots may be shared and read-only.
    """
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "mtlkit" / "derived"


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks so memory stays flat."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _load_verdicts() -> None:
    global _verdicts_loaded
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


def file_digest(path: Path) -> str:
    """sha256 of ``path``, from the verdict cache when size and mtime still match.

    A freshly computed digest is remembered in memory; it is written to the
    on-disk cache by :func:`verify_file` once it is known to be a good one.
    """
    path = Path(path)
    stat = path.stat()
    key = str(path.resolve())
    with _lock:
        _load_verdicts()
        known = _verdicts.get(key)
    if known is not None and known[:2] == (stat.st_size, stat.st_mtime_ns):
        return known[2]
    digest = sha256_of(path)
    with _lock:
        _verdicts[key] = (stat.st_size, stat.st_mtime_ns, digest)
        _unsaved.add(key)
    return digest


def verify_file(path: Path, accepted: Sequence[str]) -> str:
    """Check that ``path`` hashes to one of ``accepted``; return its digest.

    What is cached is the digest, not the verdict, so a bad file keeps being
    reported on every load until it is replaced.

    Raises:
        ChecksumError: the digest is not accepted (corrupt, truncated or a
            different version of the file).
    """
    path = Path(path)
    digest = file_digest(path)
    if digest in accepted:
        key = str(path.resolve())
        with _lock:
            if key in _unsaved:
                _unsaved.discard(key)
                _save_verdicts()
    else:
        raise ChecksumError(path, tuple(accepted), digest, path.stat().st_size)
    return digest


def download_file(
    url: str,
    dest: Path,
    accepted: Sequence[str],
    *,
    timeout: float = 60.0,
) -> Path:
    """Fetch ``url`` into ``dest`` if its sha256 is in ``accepted``.

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
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            while chunk := resp.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
        actual = digest.hexdigest()
        if actual not in accepted:
            raise ChecksumError(Path(url), tuple(accepted), actual, size)
        os.replace(tmp, dest)
    except ChecksumError:
        tmp.unlink(missing_ok=True)
        raise
    except OSError as exc:  # URLError and socket errors are OSErrors
        tmp.unlink(missing_ok=True)
        raise DataError(f"could not download {url} to {dest}: {exc}") from exc
    return dest
