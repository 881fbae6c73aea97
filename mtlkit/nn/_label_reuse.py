"""Label-reuse heads: one task's prediction becomes part of another task's input."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from mtlkit.nn._activation import ActivationSpec
from mtlkit.nn._heads import MLPHead


class LabelReuseHead(nn.Module):
    r"""A head that sees its own features *and* another task's prediction.

    .. math:: y_t = g_t\big([\,\mathrm{flatten}(h_t) \,\|\, \phi(y_s)\,]\big)

    where :math:`y_s` is the source task's output, :math:`\phi` is a softmax (``"softmax"``) or
    the identity (``"logits"``), and :math:`g_t` is an :class:`MLPHead`. This is the "Reuse Coarse"
    / "Reuse Fine" architecture of the CIFAR-100 coarse/fine seed.

    With ``detach=True`` no gradient flows from task ``t``'s loss into the source task's
    network through this path; with ``detach=False`` task ``t`` also trains the source — the
    seed attributes the drop in coarse accuracy of "Reuse Coarse" to exactly this back-flow.

    :class:`~mtlkit.MultiTaskModel` recognises the head by its ``source_task`` attribute and
    computes the source task first.

    Args:
        in_features: flattened size of this task's own features.
        source_task: name of the task whose prediction is reused.
        source_features: size of that prediction (e.g. its number of classes).
        hidden: hidden widths of :math:`g_t`.
        out_features: this task's output size.
        detach: stop the gradient into the source prediction.
        source_transform: ``"softmax"`` or ``"logits"``.

    Example:
        >>> import torch
        >>> head = LabelReuseHead(64, "coarse", 20, hidden=[32], out_features=100)
        >>> head(torch.zeros(2, 64), torch.zeros(2, 20)).shape
        torch.Size([2, 100])
    """

    def __init__(
        self,
        in_features: int,
        source_task: str,
        source_features: int,
        hidden: Sequence[int],
        out_features: int,
        detach: bool = False,
        source_transform: Literal["softmax", "logits"] = "softmax",
        activation: ActivationSpec = "relu",
    ) -> None:
        super().__init__()
        if source_transform not in ("softmax", "logits"):
            raise ValueError(f"source_transform must be 'softmax' or 'logits', got {source_transform!r}")
        self.source_task = source_task
        self.source_features = source_features
        self.detach = detach
        self.source_transform = source_transform
        self.head = MLPHead(in_features + source_features, hidden, out_features, activation)
        self.in_features = in_features
        self.out_features = out_features

    def forward(self, features: torch.Tensor, source_prediction: torch.Tensor) -> torch.Tensor:
        if source_prediction.shape[-1] != self.source_features:
            raise ValueError(
                f"reuse head expects a prediction of task '{self.source_task}' with "
                f"{self.source_features} features, got shape {tuple(source_prediction.shape)}"
            )
        reused = source_prediction.detach() if self.detach else source_prediction
        if self.source_transform == "softmax":
            reused = reused.softmax(dim=-1)
        logits: torch.Tensor = self.head(torch.cat([features.flatten(1), reused], dim=1))
        return logits
