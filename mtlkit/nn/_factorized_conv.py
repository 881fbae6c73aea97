"""``FactorizedConv2d``: ``T`` 2-d convolutions softly shared through a factorised kernel tensor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.utils import _pair

from mtlkit.factorization import ChannelProjection
from mtlkit.factorized import LAF, Factorization, RankRule
from mtlkit.factorized._base import check_weights
from mtlkit.nn._factorized_base import (
    FactorizationType,
    FactorizedLayer,
    check_count,
    resolve_factorization,
    stacked_biases,
)

# On CPU, one extra pass over an intermediate value (write, then read back) costs about as much as
# this many multiply-adds (fitted to benchmarks/bench_factorized.py's conv1 and FC1 shapes). Only
# the convolution still uses it; the linear layer's forward is a planned contraction.
_PASS_COST = 16


SharedInputPath = Literal["auto", "basis", "composed"]


class FactorizedConv2d(FactorizedLayer):
    """``T`` convolutions whose stacked kernel ``W`` is a :class:`~mtlkit.factorized.Factorization`.

    Weight axis order is ``(kh, kw, in, out, T)`` (the paper's TF layout, "H × W × C × M × T");
    ``task_weights()[..., t].permute(3, 2, 0, 1)`` is an ``nn.Conv2d`` weight. Biases ``(out, T)``
    are per task.

    Input is either shared, ``(B, C, H, W)``, or per task, ``(T, B, C, H, W)``; output is
    ``(T, B, out, H', W')``. Factorisations with a channel form (Tucker: ``1×1`` → per-task
    ``kh × kw`` → ``1×1``) run as three convolutions when that takes fewer multiply-adds and never
    build their kernels (:meth:`channel_projection`). Otherwise per-task inputs are stacked on
    channels and run as one ``conv2d`` with ``groups=T``, and a shared input runs as one ``conv2d``
    with the ``T·out`` concatenated filters (on CPU as ``T`` convolutions, which oneDNN runs
    faster) or through the ``K·out`` basis filters, mixed per task afterwards (see
    ``shared_input_path``).

    Args:
        in_channels, out_channels, kernel_size, num_tasks: layer sizes and number of tasks ``T``.
        factorization: :class:`~mtlkit.factorized.LAF` (default), ``Tucker``, ``TT`` or ``CP``.
        stride, padding, dilation: as for :class:`torch.nn.Conv2d` (``groups`` is not supported).
        rule: rank rule of the random init (a :class:`~mtlkit.factorized.RankRule`, an ``int``
            cap or a tuple of ranks); default ``RelativeError(0.1)`` on a random dense draw.
        bias: learn per-task biases.
        eps, ranks: deprecated spellings of ``rule``.

    >>> from mtlkit.factorized import Ranks
    >>> _ = torch.manual_seed(0)
    >>> conv = FactorizedConv2d(1, 4, 3, num_tasks=2, factorization=LAF, rule=Ranks(2), padding=1)
    >>> conv(torch.randn(5, 1, 8, 8)).shape
    torch.Size([2, 5, 4, 8, 8])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        num_tasks: int,
        factorization: FactorizationType | str = LAF,
        *,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        rule: RankRule | int | Sequence[int] | None = None,
        bias: bool = True,
        eps: float | None = None,
        ranks: int | Sequence[int] | None = None,
        _weight: Factorization | None = None,
        _bias: Tensor | None = None,
    ) -> None:
        what = f"FactorizedConv2d({in_channels}, {out_channels}, {kernel_size}, num_tasks={num_tasks})"
        in_channels = check_count(in_channels, "in_channels", what)
        out_channels = check_count(out_channels, "out_channels", what)
        num_tasks = check_count(num_tasks, "num_tasks", what)
        self_kernel: tuple[int, int] = _pair(kernel_size)
        for size in self_kernel:
            check_count(size, "kernel_size", what)
        fan_in = in_channels * self_kernel[0] * self_kernel[1]
        shape = (*self_kernel, in_channels, out_channels, num_tasks)
        if _weight is None:
            kind, chosen = resolve_factorization(factorization, rule, eps=eps, ranks=ranks, what=what)
            _weight = self._initial_weight(kind, shape, fan_in, chosen, f"{what} ({kind.__name__})")
        super().__init__(_weight, fan_in, bias if _bias is None else _bias)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = self_kernel
        self.stride, self.dilation = _pair(stride), _pair(dilation)
        self.padding = padding if isinstance(padding, str) else _pair(padding)
        self.shared_input_path: SharedInputPath = "auto"

    @classmethod
    def from_dense(
        cls,
        layers: Sequence[nn.Conv2d],
        factorization: FactorizationType | str = LAF,
        rule: RankRule | int | Sequence[int] | None = None,
        *,
        eps: float | None = None,
        ranks: int | Sequence[int] | None = None,
    ) -> FactorizedConv2d:
        """Initialise from ``T`` trained single-task ``nn.Conv2d`` layers (paper's STL init).

        Kernels ``(out, in, kh, kw)`` are permuted to ``(kh, kw, in, out)``, stacked on a last task
        axis and decomposed directly under ``rule`` (default ``RelativeError(0.1)``); biases are copied.

        >>> from mtlkit.factorized import Tucker, RelativeError
        >>> _ = torch.manual_seed(0)
        >>> dense = [nn.Conv2d(2, 3, 3) for _ in range(4)]
        >>> conv = FactorizedConv2d.from_dense(dense, Tucker, RelativeError(0.0))
        >>> x = torch.randn(1, 2, 5, 5)
        >>> torch.allclose(conv(x)[1], dense[1](x), atol=1e-5)
        True
        """
        if isinstance(layers, nn.Module) or not isinstance(layers, Sequence) or len(layers) == 0:
            raise TypeError(
                f"FactorizedConv2d.from_dense: layers must be a non-empty sequence of nn.Conv2d, got {layers!r}"
            )
        first = layers[0]
        if not isinstance(first, nn.Conv2d):
            raise TypeError(f"FactorizedConv2d.from_dense: layers[0] is {first!r}, not an nn.Conv2d")
        signature = (first.weight.shape, first.stride, first.padding, first.dilation, first.groups)
        for index, layer in enumerate(layers):
            if not isinstance(layer, nn.Conv2d):
                raise TypeError(f"FactorizedConv2d.from_dense: layers[{index}] is {layer!r}, not an nn.Conv2d")
            if (
                (layer.weight.shape, layer.stride, layer.padding, layer.dilation, layer.groups) != signature
                or layer.groups != 1
                or layer.padding_mode != "zeros"
            ):
                raise ValueError(
                    f"FactorizedConv2d.from_dense: layers[{index}] is {layer!r}; all layers must be "
                    f"identical zero-padded nn.Conv2d with groups=1, like {first!r}"
                )
        what = f"FactorizedConv2d.from_dense({len(layers)} × {first!r})"
        kind, chosen = resolve_factorization(factorization, rule, eps=eps, ranks=ranks, what=what)
        stacked = torch.stack([layer.weight.detach().permute(2, 3, 1, 0) for layer in layers], dim=-1)
        stacked = check_weights(stacked, what)
        weight = kind.from_tensor(stacked, chosen, what=f"{what} ({kind.__name__})").to(stacked)
        biases = stacked_biases([layer.bias for layer in layers], stacked)
        return cls(
            first.in_channels, first.out_channels, first.kernel_size, len(layers), kind,  # type: ignore[arg-type]
            stride=first.stride, padding=first.padding, dilation=first.dilation,  # type: ignore[arg-type]
            _weight=weight, _bias=biases if isinstance(biases, Tensor) else None, bias=biases is not False,
        )  # fmt: skip

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
        filters: tuple[Tensor, ...] = self._filters(weights).unflatten(0, (self.num_tasks, -1)).unbind(0)
        return filters

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

    def _mix_shared_input(self) -> bool:
        """Whether a shared batch goes through the ``K`` basis kernels (then mixed) instead of ``T`` composed ones.

        Basis path per output position: ``fan_in·K + K·T`` multiply-adds plus an extra pass over
        ``K + T`` intermediates, against composing's ``fan_in·T``.
        """
        if self.shared_input_path != "auto":
            if self.shared_input_path not in ("basis", "composed"):
                raise ValueError(
                    f"{type(self).__name__}: shared_input_path must be 'auto', 'basis' or 'composed', "
                    f"got {self.shared_input_path!r}"
                )
            return self.shared_input_path == "basis"
        rank, tasks = self.task_factor().shape[0], self.num_tasks
        return self.fan_in * rank + rank * tasks + _PASS_COST * (rank + tasks) < self.fan_in * tasks

    def channel_projection(self) -> ChannelProjection:
        """``1×1`` in, per-task ``kh × kw``, ``1×1`` out (:meth:`~mtlkit.factorized.Factorization.channel_form`)."""
        form = self._cached("channels", self.weight.channel_form)
        if form is None:
            raise ValueError(f"{type(self).__name__}: {self.factorization.__name__} has no channel form")
        return form

    def _project_channels(self) -> bool:
        """Run as three convolutions when that takes fewer multiply-adds (memory pass included)."""
        channel_ranks = self.weight.channel_ranks()
        if channel_ranks is None:
            return False
        k_in, k_out = channel_ranks
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
