"""Argument checks shared by the public constructors and forwards: a bad value is a ValueError or
TypeError that names the argument and the value, raised before torch reports it from inside.

Example:
    >>> positive_int("in_features", 3)
    3
    >>> positive_int("in_features", -1)
    Traceback (most recent call last):
    ...
    ValueError: in_features must be a positive integer, got -1
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch

__all__ = ["TaskMismatchError", "features_input", "positive_int"]


class TaskMismatchError(KeyError, ValueError):
    """Tasks asked for, or inputs given, that the model does not have.

    A ``ValueError`` (a bad argument) that is also the ``KeyError`` it was before, so existing
    ``except KeyError`` handlers keep working.
    """

    def __str__(self) -> str:
        return str(self.args[0])  # KeyError would show the message's repr


def positive_int(name: str, value: object) -> int:
    """``value`` as an ``int`` if it is an integer ≥ 1 (bools excluded); else an error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def features_input(name: str, x: object, sample_shape: Sequence[int], parameter: torch.Tensor | None) -> torch.Tensor:
    """Check that ``x`` is a floating batch whose examples have ``sample_shape`` elements and ``parameter``'s dtype.

    ``sample_shape`` of one number means "flattened to that many features"; otherwise the trailing
    dimensions must equal it. Under autocast the dtype is the autocast's business, not checked;
    without parameters (``None``) neither dtype nor device is.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a tensor, got {type(x).__name__}")
    expected = tuple(int(s) for s in sample_shape)
    if len(expected) == 1:
        if x.dim() < 2 or math.prod(x.shape[1:]) != expected[0]:
            raise ValueError(
                f"{name} must be a batch of examples with {expected[0]} features, got shape {tuple(x.shape)}"
            )
    elif tuple(x.shape[1:]) != expected:
        raise ValueError(f"{name} must have shape (N, {', '.join(map(str, expected))}), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if parameter is None:
        return x
    if x.dtype != parameter.dtype and not torch.is_autocast_enabled(x.device.type):
        raise TypeError(f"{name} has dtype {x.dtype} but the parameters are {parameter.dtype}; convert one of them")
    if x.device != parameter.device:
        raise ValueError(f"{name} is on {x.device} but the parameters are on {parameter.device}")
    return x
