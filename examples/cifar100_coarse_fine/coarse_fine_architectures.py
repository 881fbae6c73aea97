"""The six fine/coarse architectures of the CIFAR-100 seed, built from mtlkit parts.

Every task has a "tower": convolutions -> one fully-connected ReLU layer (``fc``) -> its output
layer. The architectures differ in whether the convolutions are shared and in which task's
output layer also reads the other task's prediction (a :class:`~mtlkit.nn.LabelReuseHead`,
the seed's "concatenate ... labels"):

=============================  ============  ==========================================
architecture                   convolutions  output layers
=============================  ============  ==========================================
Independent                    per task      fine: linear; coarse: linear
Shared Conv                    shared        fine: linear; coarse: linear
Reuse Coarse                   per task      fine: linear on [fc, softmax(coarse)]
Reuse Fine                     per task      coarse: linear on [fc, softmax(fine)]
Shared Conv & Reuse Coarse     shared        fine: linear on [fc, softmax(coarse)]
Shared Conv & Reuse Fine       shared        coarse: linear on [fc, softmax(fine)]
=============================  ============  ==========================================

The shared-convolution variants have one set of convolutions instead of two, so they get wider
convolutions (``shared_conv``) to keep all six within a few percent of the same parameter count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from mtlkit import MultiTaskModel
from mtlkit.nn import Conv, ConvNet, Dense, Flatten, LabelReuseHead, LinearHead, MaxPool, MLPHead

ARCHITECTURES = (
    "Independent",
    "Shared Conv",
    "Reuse Coarse",
    "Reuse Fine",
    "Shared Conv & Reuse Coarse",
    "Shared Conv & Reuse Fine",
)
CLASSES = {"fine": 100, "coarse": 20}


@dataclass(frozen=True)
class Widths:
    """Channels of the three conv blocks (per-task and shared variants) and the fc width."""

    conv: tuple[int, ...]
    shared_conv: tuple[int, ...]
    fc: int


class TowerReuseHead(nn.Module):
    """``fc`` layers on this task's features, then a label-reuse output layer.

    With shared convolutions the task-specific part of a tower is its fc layer, so the
    reused prediction is concatenated after it, as in the seed's "Reuse Fine" diagram
    (``fc_layers_1 -> concat -> fc_layers_2``).
    """

    def __init__(self, tower: nn.Module, reuse: LabelReuseHead) -> None:
        super().__init__()
        self.tower = tower
        self.reuse = reuse
        self.source_task = reuse.source_task  # MultiTaskModel computes the source first

    def forward(self, features: torch.Tensor, source_prediction: torch.Tensor) -> torch.Tensor:
        return self.reuse(self.tower(features.flatten(1)), source_prediction)


def conv_specs(channels: Sequence[int]) -> list:
    """3x3 conv (pad 1) + ReLU + 2x2 max-pool per block, then flatten."""
    specs: list = []
    for c in channels:
        specs += [Conv(c, 3, padding=1), MaxPool(2)]
    return [*specs, Flatten()]


def build(name: str, widths: Widths, input_shape: Sequence[int] = (3, 32, 32), detach: bool = False) -> MultiTaskModel:
    """One of :data:`ARCHITECTURES`; ``detach`` stops the reuse head's gradient into its source."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; choose from {ARCHITECTURES}")
    shared = name.startswith("Shared Conv")
    consumer = {"Coarse": "fine", "Fine": "coarse"}.get(name.rsplit(" ", 1)[-1]) if "Reuse" in name else None
    source = {"fine": "coarse", "coarse": "fine"}.get(consumer or "")
    heads: dict[str, nn.Module] = {}
    if shared:
        trunk: nn.Module | dict[str, nn.Module] = ConvNet(input_shape, conv_specs(widths.shared_conv))
        n_in = trunk.out_features
        for task, n in CLASSES.items():
            if task == consumer:
                tower = nn.Sequential(nn.Linear(n_in, widths.fc), nn.ReLU())
                heads[task] = TowerReuseHead(tower, LabelReuseHead(widths.fc, source, CLASSES[source], [], n, detach))
            else:
                heads[task] = MLPHead(n_in, [widths.fc], n)
    else:
        trunk = {task: ConvNet(input_shape, [*conv_specs(widths.conv), Dense(widths.fc)]) for task in CLASSES}
        for task, n in CLASSES.items():
            if task == consumer:
                heads[task] = LabelReuseHead(widths.fc, source, CLASSES[source], [], n, detach)
            else:
                heads[task] = LinearHead(widths.fc, n)
    return MultiTaskModel(trunk, heads)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
