"""The LeNet-style trunk and heads of the Multi-MNIST benchmark (Sener & Koltun, NeurIPS 2018)."""

from __future__ import annotations

from torch import nn

__all__ = ["lenet_head", "lenet_trunk"]


def lenet_trunk() -> nn.Sequential:
    """LeNet-style trunk for 1×28×28 inputs: conv 10@5×5, pool, conv 20@5×5, pool, FC 320→50.

    The shared part of Sener & Koltun's Multi-MNIST network (their App. "MultiLeNet"); ReLU after
    every pooling and after the FC layer, so the 50 features are non-negative.

    Example:
        >>> import torch
        >>> tuple(lenet_trunk()(torch.zeros(2, 1, 28, 28)).shape)
        (2, 50)
    """
    return nn.Sequential(
        nn.Conv2d(1, 10, 5), nn.MaxPool2d(2), nn.ReLU(),
        nn.Conv2d(10, 20, 5), nn.MaxPool2d(2), nn.ReLU(),
        nn.Flatten(), nn.Linear(320, 50), nn.ReLU(),
    )  # fmt: skip


def lenet_head(classes: int = 10) -> nn.Sequential:
    """Task head on the trunk's 50 features: FC 50→50, ReLU, FC 50→``classes``.

    Example:
        >>> import torch
        >>> tuple(lenet_head()(torch.zeros(2, 50)).shape)
        (2, 10)
    """
    return nn.Sequential(nn.Linear(50, 50), nn.ReLU(), nn.Linear(50, classes))
