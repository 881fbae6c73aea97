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

    def __init__(self, path: Path, expected: str, how_to_obtain: str, algorithm: str = "sha256") -> None:
        self.path = Path(path)
        self.expected = expected
        self.algorithm = algorithm
        self.how_to_obtain = how_to_obtain
        lines = (
            f"missing dataset file {self.path}",
            f"  expected {algorithm}: {expected}",
            f"  how to obtain it: {how_to_obtain}",
        )
        super().__init__("\n".join(lines))


class ChecksumError(DataError):
    """A file's digest is not one of those the registry accepts for it.

    The digest is sha256, or md5 for upstream archives whose publishers give only that.
    """

    def __init__(
        self,
        path: Path,
        expected: tuple[str, ...],
        actual: str,
        size: int,
        algorithm: str = "sha256",
    ) -> None:
        self.path = Path(path)
        self.expected = expected
        self.actual = actual
        self.size = size
        self.algorithm = algorithm
        wanted = " or ".join(expected)
        pad = " " * (len("expected") - len("actual"))
        super().__init__(
            f"checksum mismatch for {self.path} ({size} bytes)\n"
            f"  expected {algorithm}: {wanted}\n"
            f"  actual {algorithm}:{pad} {actual}\n"
            "  the file is corrupt, truncated or a different version; delete it and obtain it again"
        )


class FormatError(DataError):
    """A file could be read but its content is malformed or shorter than its header says."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = str(path)
        super().__init__(f"malformed dataset file {self.path}: {problem}")
