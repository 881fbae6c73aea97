"""Task heads: small modules that map shared features to one task's output."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mtlkit._validate import features_input, positive_int
from mtlkit.nn._activation import ActivationSpec
from mtlkit.nn._mlp import MLP


class LinearHead(nn.Module):
    """A single linear map on the flattened features: ``y = W·flatten(h) + b``.

    Example:
        >>> import torch
        >>> LinearHead(64, 10)(torch.zeros(3, 64)).shape
        torch.Size([3, 10])
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        in_features = positive_int("in_features", in_features)
        out_features = positive_int("out_features", out_features)
        self.linear = nn.Linear(in_features, out_features)
        self.in_features = in_features
        self.out_features = out_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        features_input("features", features, (self.in_features,), self.linear.weight)
        logits: torch.Tensor = self.linear(features.flatten(1))
        return logits


class MLPHead(nn.Module):
    """Hidden fully-connected layers, then a linear output layer (raw logits).

    Example:
        >>> import torch
        >>> MLPHead(3136, [128], 3)(torch.zeros(2, 3136)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        out_features: int,
        activation: ActivationSpec = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.body = MLP(in_features, [*hidden, out_features], activation, dropout, final_activation=False)
        self.in_features = in_features
        self.out_features = out_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.body(features)
        return logits
