"""All-convolution trunk (Springenberg et al., 2014): strided convolutions instead of pooling."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from mtlkit.nn._activation import ActivationSpec
from mtlkit.nn._convnet import Conv, ConvNet, GlobalAvgPool, LayerSpec

__all__ = ["all_conv_specs", "all_conv_trunk"]


def all_conv_specs(width: int = 192) -> list[LayerSpec]:
    r"""Layer specs of the All-CNN-C trunk, scaled by ``width`` (the paper's 192).

    ======  =========================================  ================
    layer   spec                                       28x28 input
    ======  =========================================  ================
    1       3x3 conv, :math:`w/2`, pad 1, ReLU           28x28
    2       3x3 conv, :math:`w/2`, pad 1, ReLU           28x28
    3       3x3 conv, :math:`w/2`, **stride 2**, ReLU    14x14
    4       3x3 conv, :math:`w`, pad 1, ReLU             14x14
    5       3x3 conv, :math:`w`, pad 1, ReLU             14x14
    6       3x3 conv, :math:`w`, **stride 2**, ReLU      7x7
    7       3x3 conv, :math:`w`, no pad, ReLU            5x5
    8       1x1 conv, :math:`w`, ReLU                    5x5
    9       global average pool                         :math:`w`
    ======  =========================================  ================

    Springenberg et al.'s classifier is a 1x1 convolution to the classes followed by global
    average pooling. Both are linear, so they commute: the same function is global average
    pooling (layer 9, the end of the trunk) followed by a linear head of ``w`` inputs. Keeping the
    classifier in the head is what lets :func:`mtlkit.transfer.hand_over_pooled` cut a pooled
    output layer into per-task rows.

    Args:
        width: channels of layers 4-8; layers 1-3 have ``width // 2``.

    >>> [getattr(s, "out_channels", None) for s in all_conv_specs(32)]
    [16, 16, 16, 32, 32, 32, 32, 32, None]
    """
    if width < 2:
        raise ValueError(f"width must be at least 2, got {width}")
    half = width // 2
    return [
        Conv(half, 3, padding=1),
        Conv(half, 3, padding=1),
        Conv(half, 3, stride=2, padding=1),
        Conv(width, 3, padding=1),
        Conv(width, 3, padding=1),
        Conv(width, 3, stride=2, padding=1),
        Conv(width, 3),
        Conv(width, 1),
        GlobalAvgPool(),
    ]


def all_conv_trunk(
    input_shape: Sequence[int] = (1, 28, 28),
    width: int = 192,
    activation: ActivationSpec = "relu",
    he_init: bool = True,
) -> ConvNet:
    r"""The all-convolution trunk of :func:`all_conv_specs` as a :class:`~mtlkit.nn.ConvNet`.

    Its output is a ``(B, width)`` feature vector; add ``LinearHead(width, classes)`` for the
    classifier. Parameter count of the trunk for a ``c``-channel input, :math:`h = w/2`:

    .. math:: 9ch + h + 2(9h^2 + h) + 9hw + w + 3(9w^2 + w) + w^2 + w

    — 1,366,080 for the paper's :math:`w = 192` on greyscale input (plus 1,930 for a 10-way
    head), 38,240 for :math:`w = 32`.

    With ``he_init`` every convolution starts from He et al.'s
    :math:`\mathcal{N}(0, 2/\text{fan-in})` with zero bias, which keeps the activation scale
    through the eight ReLU layers; PyTorch's default (uniform, variance :math:`1/(3\,\text{fan-in})`)
    shrinks it layer by layer, and this net without normalisation then sits at chance level for
    the first epochs.

    >>> import torch
    >>> net = all_conv_trunk((1, 28, 28), width=32)
    >>> net(torch.zeros(2, 1, 28, 28)).shape, sum(p.numel() for p in net.parameters())
    (torch.Size([2, 32]), 38240)
    """
    net = ConvNet(input_shape, all_conv_specs(width), activation=activation)
    if he_init:
        for module in net.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
    return net
