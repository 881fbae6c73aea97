"""Fully-connected trunk."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn

from mtlkit._validate import features_input, positive_int
from mtlkit.nn._activation import ActivationSpec, make_activation


class MLP(nn.Module):
    r"""A stack of fully-connected blocks :math:`x_{k+1} = \sigma(W_k x_k + b_k)`.

    The input is flattened first, so images can be fed directly. Each block (``Linear``,
    activation, optional ``Dropout``) is kept as ``blocks[k]`` so that other components — e.g.
    the denoising autoencoders of :mod:`mtlkit.auxiliary`, whose encoder *is* block ``k`` — can reuse
    exactly these parameters.

    Args:
        in_features: size of the flattened input.
        widths: output width of each block.
        activation: activation after every block (name, factory or ``None``).
        dropout: dropout probability after each activation (0 disables it).
        final_activation: whether the last block has the activation too (``False`` makes the
            MLP end in raw logits, e.g. for a single-task network).

    Example:
        >>> import torch
        >>> mlp = MLP(784, [1000, 1000], activation="relu")
        >>> mlp(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 1000])
    """

    def __init__(
        self,
        in_features: int,
        widths: Sequence[int],
        activation: ActivationSpec = "relu",
        dropout: float = 0.0,
        final_activation: bool = True,
    ) -> None:
        super().__init__()
        positive_int("in_features", in_features)
        if isinstance(widths, str | bytes) or not isinstance(widths, Sequence):
            raise TypeError(f"widths must be a sequence of layer sizes, got {widths!r}")
        for k, width in enumerate(widths):
            positive_int(f"widths[{k}]", width)
        if in_features <= 0 or any(w <= 0 for w in widths):
            raise ValueError(f"MLP sizes must be positive, got in={in_features}, widths={widths}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        sizes = [in_features, *widths]
        blocks = []
        for k, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
            last = k == len(widths) - 1
            layers: list[nn.Module] = [nn.Linear(n_in, n_out)]
            if final_activation or not last:
                layers.append(make_activation(activation))
                if dropout > 0:
                    layers.append(nn.Dropout(dropout))
            blocks.append(nn.Sequential(*layers))
        self.blocks = nn.ModuleList(blocks)
        self.in_features = in_features
        self.widths = tuple(widths)
        self.out_features = sizes[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features_input("x", x, (self.in_features,), next(self.parameters(), None))
        x = x.flatten(1)
        for block in self.blocks:
            x = block(x)
        return x
