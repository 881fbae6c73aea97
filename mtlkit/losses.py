"""Loss functions the seeds use that PyTorch does not ship under that name."""

from __future__ import annotations

import torch

__all__ = ["hinge_loss"]


def hinge_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r"""Mean binary hinge loss :math:`\frac1N\sum_i \max(0, 1 - y_i f(x_i))` for :math:`y_i \in \{-1, +1\}`.

    ``output`` of shape ``(N, 1)`` is matched to a target of shape ``(N,)``.

    Example:
        >>> import torch
        >>> hinge_loss(torch.tensor([2.0, -0.5]), torch.tensor([1.0, 1.0]))
        tensor(0.7500)
    """
    if output.dim() == target.dim() + 1 and output.shape[-1] == 1:
        output = output.squeeze(-1)
    if output.shape != target.shape:
        raise ValueError(f"hinge loss: output shape {tuple(output.shape)} != target shape {tuple(target.shape)}")
    return torch.clamp(1.0 - target * output, min=0.0).mean()
