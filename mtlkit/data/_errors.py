"""Exceptions raised by the dataset readers.

Every message names the file involved and states what was expected next to
what was found, so that a user can fix the data root without reading code.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ChecksumError", "DataError", "FormatError", "MissingFileError"]


class DataError(Exception):
    """Base class of every error about dataset files (missing, corrupt, malformed)."""


class MissingFileError(DataError, FileNotFoundError):
    """A file the dataset needs is not under the data root.

    It is also a :class:`FileNotFoundError`, so generic ``except OSError``
    handlers keep working.
    """

    def __init__(self, path: Path, sha256: str, how_to_obtain: str) -> None:
        self.path = Path(path)
        self.sha256 = sha256
        self.how_to_obtain = how_to_obtain
        super().__init__(
            f"missing dataset file {self.path}\n"
            f"  expected sha256: {sha256}\n"
            f"  how to obtain it: {how_to_obtain}"
        )


class ChecksumError(DataError):
    """A file's sha256 is not one of the digests the registry accepts for it."""

    def __init__(self, path: Path, expected: tuple[str, ...], actual: str, size: int) -> None:
        self.path = Path(path)
        self.expected = expected
        self.actual = actual
        self.size = size
        wanted = " or ".join(expected)
        super().__init__(
            f"checksum mismatch for {self.path} ({size} bytes)\n"
            f"  expected sha256: {wanted}\n"
            f"  actual sha256:   {actual}\n"
            "  the file is corrupt, truncated or a different version; delete it and obtain it again"
        )


class FormatError(DataError):
    """A file could be read but its content is malformed or shorter than its header says."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = str(path)
        super().__init__(f"malformed dataset file {self.path}: {problem}")
