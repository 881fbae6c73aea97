"""Per-batch metrics as ``(sum, count)`` pairs, so epoch values aggregate exactly.

A metric function takes ``(output, target)`` of one task and returns the *sum* of the
per-example scores and the number of examples scored. Examples whose target is the ignore
value ``-100`` (unlabeled data) are not scored.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

IGNORE_INDEX = -100
"""Target value of unlabeled entries (PyTorch's ``ignore_index`` default); never scored."""

MetricFn = Callable[[torch.Tensor, torch.Tensor], tuple[float, int]]

__all__ = ["IGNORE_INDEX", "MetricFn", "accuracy", "error_rate", "one_vs_all_error", "sign_accuracy"]


def accuracy(output: torch.Tensor, target: torch.Tensor) -> tuple[float, int]:
    """Correct predictions and count: argmax of ``(N, C)`` logits, or the sign for ±1 targets.

    Example:
        >>> import torch
        >>> accuracy(torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0]))
        (1.0, 2)
        >>> accuracy(torch.tensor([0.3, -2.0]), torch.tensor([1.0, 1.0]))
        (1.0, 2)
    """
    if target.is_floating_point():
        return sign_accuracy(output, target)
    keep = target != IGNORE_INDEX
    predicted = output.argmax(dim=-1)
    return float((predicted[keep] == target[keep]).sum()), int(keep.sum())


def sign_accuracy(output: torch.Tensor, target: torch.Tensor) -> tuple[float, int]:
    """Binary accuracy for ±1 targets: ``sign(output) == target`` (0 counts as +1)."""
    output = output.reshape(target.shape)
    predicted = torch.where(output >= 0, 1.0, -1.0)
    return float((predicted == target).sum()), target.numel()


def error_rate(output: torch.Tensor, target: torch.Tensor) -> tuple[float, int]:
    """``1 − accuracy`` as a ``(sum, count)`` pair.

    Example:
        >>> import torch
        >>> error_rate(torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0]))
        (1.0, 2)
    """
    correct, count = accuracy(output, target)
    return count - correct, count


def one_vs_all_error(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Multi-class error of ``C`` one-vs-all scorers: class = argmax of the ``(N, C)`` scores.

    The second metric of DMTRL's MNIST experiment: rank the ten binary tasks' outputs.

    Example:
        >>> import torch
        >>> one_vs_all_error(torch.tensor([[0.9, -1.0], [0.2, 0.5]]), torch.tensor([0, 0]))
        0.5
    """
    if scores.dim() != 2 or labels.shape != scores.shape[:1]:
        raise ValueError(f"need (N, C) scores and (N,) labels, got {tuple(scores.shape)} and {tuple(labels.shape)}")
    return float((scores.argmax(dim=1) != labels).double().mean())
