"""Files replaced in one rename, so a reader or a crash never sees a half-written one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def replacing(path: Path) -> Iterator[BinaryIO]:
    """A binary file to write ``path``'s new content into; on a clean exit it replaces ``path``.

    The content goes to a private temporary file beside ``path`` (``mkstemp``: no other writer
    shares it), is fsynced, made readable like a normal file (0644, not ``mkstemp``'s 0600) and
    renamed over ``path`` (``os.replace`` is atomic on POSIX). On an exception the temporary file
    is removed and ``path`` is untouched.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
        >>> with replacing(target) as out:
        ...     _ = out.write(b"new")
        >>> target.read_bytes()
        b'new'
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
