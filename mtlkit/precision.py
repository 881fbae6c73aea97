"""Training precision: fp32, or bf16 autocast with fp32 master weights.

Under ``"bf16"`` the forward pass and the losses run inside :func:`torch.autocast` with
``dtype=torch.bfloat16``: matrix multiplies and convolutions take bf16 inputs and accumulate in
fp32, while reductions, softmax and the losses stay in fp32 (autocast's op lists). Parameters,
gradients, optimiser state and checkpoints stay fp32, so a bf16 run resumes bit for bit like an
fp32 one. bf16 keeps fp32's exponent range, so no loss scaling is needed (unlike fp16).

A device without native bf16 arithmetic would run it *slower* than fp32 through emulation;
:func:`resolve_precision` then falls back to fp32 with a warning instead.

Example:
    >>> import torch
    >>> precision = resolve_precision("bf16", torch.device("cpu"))
    >>> precision in ("bf16", "fp32")
    True
    >>> with autocast(precision, torch.device("cpu")):
    ...     y = torch.ones(2, 3) @ torch.ones(3, 4)
    >>> y.dtype == (torch.bfloat16 if precision == "bf16" else torch.float32)
    True
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Literal

import torch

__all__ = ["PRECISIONS", "Precision", "autocast", "bf16_supported", "resolve_precision"]

Precision = Literal["fp32", "bf16"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "bf16")


def bf16_supported(device: torch.device) -> bool:
    """Whether ``device`` has native bf16 arithmetic (AVX-512 BF16 / AMX on CPU; Ampere+ on CUDA)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    return False


def resolve_precision(precision: str, device: torch.device) -> Precision:
    """``precision`` if ``device`` runs it natively; fp32 with a :class:`RuntimeWarning` otherwise."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "bf16" and not bf16_supported(device):
        warnings.warn(
            f"precision='bf16' requested but {device} has no native bf16 arithmetic; training in fp32",
            RuntimeWarning,
            stacklevel=3,
        )
        return "fp32"
    return "bf16" if precision == "bf16" else "fp32"


def autocast(precision: Precision, device: torch.device) -> contextlib.AbstractContextManager[None]:
    """The autocast context of ``precision`` on ``device`` (a no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
