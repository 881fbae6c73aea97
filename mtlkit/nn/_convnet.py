"""Convolutional trunk built from a small, declarative layer spec."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from mtlkit._validate import features_input, positive_int
from mtlkit.nn._activation import ActivationSpec, make_activation

_DEFAULT = "default"


@dataclass(frozen=True)
class Conv:
    """A 2-D convolution followed by the activation (``activation="default"``: the net's)."""

    out_channels: int
    kernel_size: int
    stride: int = 1
    padding: int | str = 0
    activation: ActivationSpec = _DEFAULT

    def __post_init__(self) -> None:
        positive_int("out_channels", self.out_channels)
        positive_int("kernel_size", self.kernel_size)
        positive_int("stride", self.stride)


@dataclass(frozen=True)
class MaxPool:
    """Max pooling; ``stride`` defaults to ``kernel_size``."""

    kernel_size: int
    stride: int | None = None

    def __post_init__(self) -> None:
        positive_int("kernel_size", self.kernel_size)
        if self.stride is not None:
            positive_int("stride", self.stride)


@dataclass(frozen=True)
class AvgPool:
    """Average pooling; ``stride`` defaults to ``kernel_size``."""

    kernel_size: int
    stride: int | None = None

    def __post_init__(self) -> None:
        positive_int("kernel_size", self.kernel_size)
        if self.stride is not None:
            positive_int("stride", self.stride)


@dataclass(frozen=True)
class GlobalAvgPool:
    """Average over all spatial positions, giving ``(B, C)``."""


@dataclass(frozen=True)
class Flatten:
    """Flatten ``(B, C, H, W)`` to ``(B, C·H·W)``."""


@dataclass(frozen=True)
class Dense:
    """A fully-connected layer followed by the activation (``"default"``: the net's)."""

    out_features: int
    activation: ActivationSpec = _DEFAULT

    def __post_init__(self) -> None:
        positive_int("out_features", self.out_features)


@dataclass(frozen=True)
class Dropout:
    """Dropout with probability ``p``."""

    p: float


LayerSpec = Conv | MaxPool | AvgPool | GlobalAvgPool | Flatten | Dense | Dropout


class ConvNet(nn.Module):
    """A feed-forward network described by a list of layer specs.

    Every architecture of the seeds is a few lines, e.g. the coursework's Task-4 CNN::

        ConvNet((1, 28, 28), [Conv(32, 4), Conv(64, 4, stride=2), Conv(128, 4, stride=2),
                              Flatten(), Dense(10, activation=None)])

    Input sizes of ``Dense`` layers are inferred from ``input_shape``. The built layers are
    ``self.layers`` (an ``nn.Sequential``), one entry per spec, each entry being the layer
    and its activation, so ``layers[:k]`` is the sub-network up to spec ``k``.

    Args:
        input_shape: ``(C, H, W)`` of one input.
        specs: the layers, in order.
        activation: the default activation of ``Conv`` and ``Dense`` specs.

    Example:
        >>> import torch
        >>> net = ConvNet((1, 28, 28), [Conv(8, 3, padding=1), MaxPool(2), Flatten(), Dense(10)])
        >>> net.output_shape
        (10,)
        >>> net(torch.zeros(4, 1, 28, 28)).shape
        torch.Size([4, 10])
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        specs: Sequence[LayerSpec],
        activation: ActivationSpec = "relu",
    ) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"input_shape must be (C, H, W), got {tuple(input_shape)}")
        if not specs:
            raise ValueError("a ConvNet needs at least one layer spec")
        self.input_shape = tuple(int(s) for s in input_shape)
        self.specs = tuple(specs)
        shape: tuple[int, ...] = self.input_shape
        layers = []
        for index, spec in enumerate(specs):
            try:
                module = self._build(spec, shape, activation, index)
                with torch.no_grad():
                    shape = tuple(module(torch.zeros(1, *shape)).shape[1:])
            except RuntimeError as error:
                # Here torch can only be refusing the spec's sizes (negative, or larger than the
                # input left by the layers before it): say which layer, on which shape.
                raise ValueError(
                    f"specs[{index}] = {spec!r} does not fit its input of shape {shape}: {error}"
                ) from None
            layers.append(module)
        self.layers = nn.Sequential(*layers)
        self.output_shape = shape

    @staticmethod
    def _build(  # noqa: PLR0911 - one return per layer kind of the spec language
        spec: LayerSpec, shape: tuple[int, ...], default: ActivationSpec, index: int
    ) -> nn.Module:
        def act(a: ActivationSpec) -> nn.Module:
            return make_activation(default if a == _DEFAULT else a)

        if isinstance(spec, Conv):
            if len(shape) != 3:
                raise ValueError(f"layer {index} ({spec}) needs a (C, H, W) input, got {shape}")
            conv = nn.Conv2d(shape[0], spec.out_channels, spec.kernel_size, spec.stride, spec.padding)
            return nn.Sequential(conv, act(spec.activation))
        if isinstance(spec, Dense):
            if len(shape) != 1:
                raise ValueError(f"layer {index} ({spec}) needs a flat input, got {shape}; add Flatten() first")
            return nn.Sequential(nn.Linear(shape[0], spec.out_features), act(spec.activation))
        if isinstance(spec, MaxPool):
            return nn.MaxPool2d(spec.kernel_size, spec.stride)
        if isinstance(spec, AvgPool):
            return nn.AvgPool2d(spec.kernel_size, spec.stride)
        if isinstance(spec, GlobalAvgPool):
            return _GlobalAvgPool()
        if isinstance(spec, Flatten):
            return nn.Flatten()
        if isinstance(spec, Dropout):
            return nn.Dropout(spec.p)
        raise TypeError(f"layer {index}: unknown layer spec {spec!r}")

    @property
    def out_features(self) -> int:
        """Size of the flattened output."""
        return int(torch.tensor(self.output_shape).prod())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features_input("x", x, self.input_shape, next(self.parameters(), None))
        out: torch.Tensor = self.layers(x)
        return out


class _GlobalAvgPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))
