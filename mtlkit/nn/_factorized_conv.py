"""``FactorizedConv2d``: ``T`` 2-d convolutions softly shared through a factorised kernel tensor."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.utils import _pair

from mtlkit.factorization import ChannelProjection, FactorizationMethod, tucker_channel_projection
from mtlkit.nn._factorized_base import _PASS_COST, FactorizedLayer, Ranks


class FactorizedConv2d(FactorizedLayer):
    """``T`` convolutions whose stacked kernel ``W`` is composed by LAF, Tucker or TT.

    Weight axis order is ``(kh, kw, in, out, T)`` (the paper's TF layout, "H × W × C × M × T");
    ``task_weights()[..., t].permute(3, 2, 0, 1)`` is an ``nn.Conv2d`` weight. Biases ``(out, T)``
    are per task.

    Input is either shared, ``(B, C, H, W)``, or per task, ``(T, B, C, H, W)``; output is
    ``(T, B, out, H', W')``. Tucker layers whose channel ranks make it cheaper run as three
    convolutions and never build their kernels (:meth:`channel_projection`). Otherwise per-task
    inputs are stacked on channels and run as one ``conv2d`` with ``groups=T``, and a shared input
    runs as one ``conv2d`` with the ``T·out`` concatenated filters (on CPU as ``T`` convolutions,
    which oneDNN runs faster) or through the ``K·out`` basis filters, mixed per task afterwards
    (see ``shared_input_path``).

    Args:
        in_channels, out_channels, kernel_size, num_tasks: layer sizes and number of tasks ``T``.
        method: ``"laf"``, ``"tucker"`` or ``"tt"``.
        stride, padding, dilation: as for :class:`torch.nn.Conv2d` (``groups`` is not supported).
        ranks: LAF ``K``; Tucker 5 ranks; TT 4 inner ranks; an ``int`` means that rank on every
            mode (capped). ``None`` ε-truncates the random dense init.
        eps: relative error used when ``ranks`` is ``None``.
        bias: learn per-task biases.

    >>> _ = torch.manual_seed(0)
    >>> conv = FactorizedConv2d(1, 4, 3, num_tasks=2, method="laf", ranks=2, padding=1)
    >>> conv(torch.randn(5, 1, 8, 8)).shape
    torch.Size([2, 5, 4, 8, 8])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        num_tasks: int,
        method: FactorizationMethod = "laf",
        *,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        ranks: Ranks | None = None,
        eps: float = 0.1,
        bias: bool = True,
    ) -> None:
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size: tuple[int, int] = _pair(kernel_size)
        self.stride, self.dilation = _pair(stride), _pair(dilation)
        self.padding = padding if isinstance(padding, str) else _pair(padding)
        fan_in = in_channels * self.kernel_size[0] * self.kernel_size[1]
        shape = (*self.kernel_size, in_channels, out_channels, num_tasks)
        super().__init__(shape, fan_in, method, ranks, eps, bias)

    @classmethod
    def from_dense(
        cls,
        layers: Sequence[nn.Conv2d],
        method: FactorizationMethod = "laf",
        *,
        eps: float = 0.1,
        ranks: Ranks | None = None,
    ) -> FactorizedConv2d:
        """Initialise from ``T`` trained single-task ``nn.Conv2d`` layers (paper's STL init).

        Kernels ``(out, in, kh, kw)`` are permuted to ``(kh, kw, in, out)``, stacked on a last task
        axis and decomposed with relative error ``≤ eps`` (or fixed ``ranks``); biases are copied.

        >>> _ = torch.manual_seed(0)
        >>> dense = [nn.Conv2d(2, 3, 3) for _ in range(4)]
        >>> conv = FactorizedConv2d.from_dense(dense, "tucker", eps=0.0)
        >>> x = torch.randn(1, 2, 5, 5)
        >>> torch.allclose(conv(x)[1], dense[1](x), atol=1e-5)
        True
        """
        if len(layers) == 0:
            raise ValueError("FactorizedConv2d.from_dense: need at least one nn.Conv2d")
        first = layers[0]
        signature = (first.weight.shape, first.stride, first.padding, first.dilation, first.groups)
        for index, layer in enumerate(layers):
            if (
                not isinstance(layer, nn.Conv2d)
                or (layer.weight.shape, layer.stride, layer.padding, layer.dilation, layer.groups) != signature
                or layer.groups != 1
                or layer.padding_mode != "zeros"
            ):
                raise ValueError(
                    f"FactorizedConv2d.from_dense: layer {index} is {layer!r}; all layers must be "
                    f"identical zero-padded nn.Conv2d with groups=1, like {first!r}"
                )
        has_bias = all(layer.bias is not None for layer in layers)
        module = cls(
            first.in_channels,
            first.out_channels,
            first.kernel_size,  # type: ignore[arg-type]
            len(layers),
            method,
            stride=first.stride,  # type: ignore[arg-type]
            padding=first.padding,  # type: ignore[arg-type]
            dilation=first.dilation,  # type: ignore[arg-type]
            ranks=1,
            bias=has_bias,
        )
        stacked = torch.stack([layer.weight.detach().permute(2, 3, 1, 0) for layer in layers], dim=-1)
        biases = torch.stack([layer.bias.detach() for layer in layers], dim=-1) if has_bias else None
        module._load_task_weights(stacked, biases, eps, ranks)
        return module

    def _check_input(self, inputs: Tensor) -> bool:
        """Return ``True`` for a shared input, ``False`` for per-task inputs; raise otherwise."""
        if inputs.dim() == 4 and inputs.shape[1] == self.in_channels:
            return True
        if inputs.dim() == 5 and inputs.shape[0] == self.num_tasks and inputs.shape[2] == self.in_channels:
            return False
        raise ValueError(
            f"{type(self).__name__}(in={self.in_channels}, out={self.out_channels}, "
            f"T={self.num_tasks}): expected input (B, {self.in_channels}, H, W) or "
            f"(T={self.num_tasks}, B, {self.in_channels}, H, W), got {tuple(inputs.shape)}"
        )

    def _conv(self, inputs: Tensor, weight: Tensor, bias: Tensor | None, groups: int) -> Tensor:
        return F.conv2d(inputs, weight, bias, self.stride, self.padding, self.dilation, groups)

    def _filters(self, weights: Tensor) -> Tensor:
        """``(G, kh, kw, in, out)`` → ``(G·out, in, kh, kw)``: groups of ``conv2d`` filters."""
        return weights.permute(0, 4, 3, 1, 2).reshape(-1, weights.shape[3], *self.kernel_size)

    def _task_filters(self, weights: Tensor) -> tuple[Tensor, ...]:
        """``(T, kh, kw, in, out)`` → one ``(out, in, kh, kw)`` filter bank per task."""
        return self._filters(weights).unflatten(0, (self.num_tasks, -1)).unbind(0)

    def forward(self, inputs: Tensor) -> Tensor:
        """``(B, C, H, W)`` or ``(T, B, C, H, W)`` → ``(T, B, out, H', W')`` (kernels: class docstring)."""
        shared = self._check_input(inputs)
        if self._project_channels():
            return self._forward_projected(inputs, shared)
        if shared and self._mix_shared_input():
            return self._forward_basis(inputs)
        if shared and inputs.device.type == "cpu":
            # oneDNN runs T convolutions of `out` filters faster than one of T·out filters (0.6-0.9×
            # the time at the DMTRL LeNet's shapes), so on CPU a shared batch loops over tasks.
            return torch.stack(self.forward_tasks(inputs))
        return self._forward_composed(inputs, shared)

    def channel_projection(self) -> ChannelProjection:
        """Tucker only: ``1×1`` in, per-task ``kh × kw``, ``1×1`` out.

        See :func:`~mtlkit.factorization.tucker_channel_projection`.
        """
        return self._cached("channels", lambda: tucker_channel_projection(list(self.factors)))

    def _project_channels(self) -> bool:
        """Tucker: run as three convolutions when that takes fewer multiply-adds (memory pass included)."""
        if self.method != "tucker":
            return False
        k_in, k_out = self.factors[0].shape[2], self.factors[0].shape[3]
        window = self.kernel_size[0] * self.kernel_size[1]
        projected = self.in_channels * k_in + k_in * k_out * window + k_out * self.out_channels
        return projected + _PASS_COST * (k_in + k_out) < self.in_channels * self.out_channels * window

    def _forward_projected(self, inputs: Tensor, shared: bool) -> Tensor:
        """``1×1`` conv to ``K_in`` channels, the per-task core kernels, ``1×1`` out — all tasks at once."""
        u_in, kernels, u_out = self.channel_projection()
        tasks, k_out = self.num_tasks, u_out.shape[1]
        spatial = self._filters(kernels)
        into = u_in.T[:, :, None, None]
        if shared:
            reduced = self._conv(F.conv2d(inputs, into), spatial, None, groups=1)
        else:
            batch = inputs.shape[1]
            stacked = inputs.transpose(0, 1).reshape(batch, -1, *inputs.shape[3:])
            projected = F.conv2d(stacked, into.repeat(tasks, 1, 1, 1), groups=tasks)
            reduced = self._conv(projected, spatial, None, groups=tasks)
        batch = reduced.shape[0]
        outputs = torch.matmul(u_out, reduced.reshape(batch, tasks, k_out, -1))
        outputs = outputs.reshape(batch, tasks, self.out_channels, *reduced.shape[2:])
        if self.bias is not None:
            outputs = outputs + self.bias.T[:, :, None, None]
        return outputs.transpose(0, 1)

    def _forward_basis(self, inputs: Tensor) -> Tensor:
        """Convolve a shared batch with the K basis kernels only (K/T of the composed convolution's
        work), then mix the K responses per task."""
        basis, task_matrix = self.task_basis()
        responses = self._conv(inputs, self._filters(basis.movedim(-1, 0)), None, groups=1)
        batch = inputs.shape[0]
        mixed = torch.matmul(task_matrix, responses.reshape(batch, basis.shape[-1], -1))
        outputs = mixed.reshape(batch, self.num_tasks, self.out_channels, *responses.shape[2:])
        if self.bias is not None:
            outputs = outputs + self.bias.T[:, :, None, None]
        return outputs.transpose(0, 1)

    def _forward_composed(self, inputs: Tensor, shared: bool) -> Tensor:
        """One convolution for all tasks: ``T·out`` filters on a shared batch, ``groups=T`` otherwise."""
        bias = None if self.bias is None else self.bias.T.reshape(-1)
        filters = self._filters(self.task_major_weights())
        batch = inputs.shape[0] if shared else inputs.shape[1]
        if not shared:
            inputs = inputs.transpose(0, 1).reshape(batch, -1, *inputs.shape[3:])
        outputs = self._conv(inputs, filters, bias, groups=1 if shared else self.num_tasks)
        return outputs.reshape(batch, self.num_tasks, self.out_channels, *outputs.shape[2:]).transpose(0, 1)

    def forward_tasks(self, inputs: Tensor | Sequence[Tensor]) -> list[Tensor]:
        shared, task_inputs, task_biases = self._per_task_inputs_and_biases(inputs)
        if self._project_channels():
            u_in, kernels, u_out = self.channel_projection()
            into, out_of = u_in.T[:, :, None, None], u_out[:, :, None, None]
            task_inputs = (
                [F.conv2d(task_inputs[0], into)] * self.num_tasks  # project a shared batch once
                if shared
                else [F.conv2d(x, into) for x in task_inputs]
            )
            spatial = self._task_filters(kernels)
            return [
                F.conv2d(self._conv(x, k, None, groups=1), out_of, b)
                for x, k, b in zip(task_inputs, spatial, task_biases, strict=True)
            ]
        return self._composed_loop(task_inputs, task_biases)

    def forward_per_task(self, inputs: Tensor) -> Tensor:
        """Reference implementation: compose once, then a plain loop of ``F.conv2d`` over tasks."""
        _, task_inputs, task_biases = self._per_task_inputs_and_biases(inputs)
        return torch.stack(self._composed_loop(task_inputs, task_biases))

    def _composed_loop(self, task_inputs: Sequence[Tensor], task_biases: Sequence[Tensor | None]) -> list[Tensor]:
        filters = self._task_filters(self.task_major_weights())
        return [self._conv(x, w, b, groups=1) for x, w, b in zip(task_inputs, filters, task_biases, strict=True)]

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, " + super().extra_repr()
        )
