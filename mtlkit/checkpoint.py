"""Checkpoints that are never half-written and never unpickle arbitrary objects."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from mtlkit._atomic import replacing

__all__ = ["load_checkpoint", "save_checkpoint"]


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``state`` with :func:`torch.save` to a temporary file, fsync it, then rename.

    ``os.replace`` is atomic on POSIX, so a crash leaves either the previous checkpoint or the
    new one, never a truncated file.

    Example:
        >>> import tempfile, pathlib, torch
        >>> path = save_checkpoint({"epoch": 3, "w": torch.ones(2)}, pathlib.Path(tempfile.mkdtemp()) / "last.pt")
        >>> load_checkpoint(path)["epoch"]
        3
    """
    path = Path(path)
    with replacing(path) as out:
        torch.save(state, out)
    return path


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (``weights_only=True``: no pickles).

    A missing file raises :class:`FileNotFoundError` naming the path; an unreadable one a
    :class:`RuntimeError` that names the path and the reason.

    Example:
        >>> load_checkpoint("/nonexistent/last.pt")
        Traceback (most recent call last):
        ...
        FileNotFoundError: no checkpoint at /nonexistent/last.pt
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
        return state
    except Exception as exc:
        raise RuntimeError(f"checkpoint {path} could not be read ({exc}); is it corrupt?") from exc
