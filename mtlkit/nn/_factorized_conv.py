"""``FactorizedConv2d``: ``T`` 2-d convolutions softly shared through a factorised kernel tensor."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.utils import _pair

from mtlkit.factorized import LAF, ConvolutionPlan, Factorization, RankRule, Window
from mtlkit.factorized._base import check_weights
from mtlkit.factorized._conv_plan import WEIGHT_MODES, convolution_plans
from mtlkit.factorized._plan import eager
from mtlkit.factorized._trial import fastest
from mtlkit.nn._factorized_base import (
    FactorizationType,
    FactorizedLayer,
    check_count,
    resolve_factorization,
    stacked_biases,
)


class FactorizedConv2d(FactorizedLayer):
    """``T`` convolutions whose stacked kernel ``W`` is a :class:`~mtlkit.factorized.Factorization`.

    Weight axis order is ``(kh, kw, in, out, T)`` (the paper's TF layout, "H × W × C × M × T");
    ``task_weights()[..., t].permute(3, 2, 0, 1)`` is an ``nn.Conv2d`` weight. Biases ``(out, T)``
    are per task.

    Input is either shared, ``(B, C, H, W)``, or per task, ``(T, B, C, H, W)``; output is
    ``(T, B, out, H', W')`` (a view of a batch-major ``(B, T·out, H', W')`` buffer). The forward
    pass is one contraction of the unfolded input ``X[b, i, p, q, l]`` with the factor network,
    run as: the factors that carry no kernel axis that meet the image first (``1×1``
    convolutions; Tucker-2 and CP-as-separable-convolution forms), the kernel composed from the
    factors that carry the window (and any others chosen), one (grouped) ``conv2d`` of the two —
    or, where the kernel carries the task axis, ``T`` of them, one per task — and an einsum of
    the rest. Each such choice has its cheapest pairwise order (composing the kernels first is
    one choice); by default the one with the fewest multiply-adds runs
    (:func:`~mtlkit.factorized.plan_convolution`; of the two executions of a kernel, which tie,
    the single convolution); with ``timed=True`` the fastest of those within
    2× the fewest multiply-adds and of those that compose first, timed once (a training step's
    forward and backward) —
    convolutions with few channels per group run far below their multiply-add count's speed (see
    ``mtlkit/factorized/_trial.py``). Timing is opt-in, as ``torch.backends.cudnn.benchmark`` is:
    its choice depends on the machine and its load, so two runs (or a run and its resumption) may
    contract in different orders and differ in rounding, and each new input shape costs a trial.
    The plan is made once per (shared or per-task, batch, height, width, device, dtype, whether
    the input needs a gradient) and cached; :attr:`plan` shows the last one used,
    :meth:`plan_for` any other.

    Args:
        in_channels, out_channels, kernel_size, num_tasks: layer sizes and number of tasks ``T``.
        factorization: :class:`~mtlkit.factorized.LAF` (default), ``Tucker``, ``TT`` or ``CP``.
        stride, padding, dilation: as for :class:`torch.nn.Conv2d` (``groups`` is not supported).
        rule: rank rule of the random init (a :class:`~mtlkit.factorized.RankRule`, an ``int``
            cap or a tuple of ranks); default ``RelativeError(0.1)`` on a random dense draw.
        bias: learn per-task biases.
        project: override: the factors (by name) contracted with the image first (``()``: none).
        kernel: override: the factors (by name) composed into the kernel the image is convolved
            with (every factor with a kernel axis, plus any others).
        split_tasks: override: ``True`` runs that convolution as ``T`` convolutions, one per task
            (its kernel must carry the task axis, as a composed kernel does), ``False`` as one;
            ``None`` (default) runs one, or with ``timed=True`` whichever is faster.
        timed: choose the plan by timed trial (fastest on this machine) instead of by
            multiply-adds alone (the default: the same plan on every machine and run).
        eps, ranks: deprecated spellings of ``rule``.

    >>> from mtlkit.factorized import Ranks, Tucker
    >>> _ = torch.manual_seed(0)
    >>> conv = FactorizedConv2d(1, 4, 3, num_tasks=2, factorization=LAF, rule=Ranks(2), padding=1)
    >>> conv(torch.randn(5, 1, 8, 8)).shape
    torch.Size([2, 5, 4, 8, 8])
    >>> conv = FactorizedConv2d(32, 64, 3, 10, Tucker, rule=Ranks(3, 3, 8, 8, 4))
    >>> _ = conv(torch.randn(16, 32, 12, 12))
    >>> conv.plan.project, conv.plan.multiply_adds  # Tucker-2 (1×1 in first); 10 dense convs: 294,912,000
    (('U2',), 11662848)
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
        project: Sequence[str] | None = None,
        kernel: Sequence[str] | None = None,
        split_tasks: bool | None = None,
        timed: bool = False,
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
        self.window = Window.of(self.kernel_size, self.stride, self.dilation, self.padding)
        names = self.weight.factor_names
        for argument, value in (("project", project), ("kernel", kernel)):
            if value is not None and (isinstance(value, str) or any(n not in names for n in value)):
                raise ValueError(f"{what}: {argument} must be a sequence of factor names among {names}, got {value!r}")
        if split_tasks is not None and not isinstance(split_tasks, bool):
            raise ValueError(f"{what}: split_tasks must be None, True or False, got {split_tasks!r}")
        self.project = None if project is None else tuple(project)
        self.kernel = None if kernel is None else tuple(kernel)
        self.split_tasks = split_tasks
        self.timed = timed
        self._plans: dict[tuple[object, ...], ConvolutionPlan] = {}
        self._last_plan: ConvolutionPlan | None = None

    @classmethod
    def from_dense(
        cls,
        layers: Sequence[nn.Conv2d],
        factorization: FactorizationType | str = LAF,
        rule: RankRule | int | Sequence[int] | None = None,
        *,
        project: Sequence[str] | None = None,
        kernel: Sequence[str] | None = None,
        split_tasks: bool | None = None,
        timed: bool = False,
        eps: float | None = None,
        ranks: int | Sequence[int] | None = None,
    ) -> FactorizedConv2d:
        """Initialise from ``T`` trained single-task ``nn.Conv2d`` layers (paper's STL init).

        Kernels ``(out, in, kh, kw)`` are permuted to ``(kh, kw, in, out)``, stacked on a last task
        axis and decomposed directly under ``rule`` (default ``RelativeError(0.1)``); biases are
        copied. ``project``, ``kernel``, ``split_tasks`` and ``timed`` steer the planner as in the
        constructor.

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
            project=project, kernel=kernel, split_tasks=split_tasks, timed=timed, _weight=weight,
            _bias=biases if isinstance(biases, Tensor) else None, bias=biases is not False,
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

    def _conv(self, inputs: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        return F.conv2d(inputs, weight, bias, self.stride, self.padding, self.dilation)

    def _filters(self, weights: Tensor) -> Tensor:
        """``(G, kh, kw, in, out)`` → ``(G·out, in, kh, kw)``: groups of ``conv2d`` filters."""
        return weights.permute(0, 4, 3, 1, 2).reshape(-1, weights.shape[3], *self.kernel_size)

    def _task_filters(self, weights: Tensor) -> tuple[Tensor, ...]:
        """``(T, kh, kw, in, out)`` → one ``(out, in, kh, kw)`` filter bank per task."""
        filters: tuple[Tensor, ...] = self._filters(weights).unflatten(0, (self.num_tasks, -1)).unbind(0)
        return filters

    # ------------------------------------------------------------------------------ planning

    def _network(self) -> tuple[list[str], list[Tensor]]:
        return self.weight.network(WEIGHT_MODES)

    def plan_for(
        self,
        batch: int,
        shared: bool,
        height: int,
        width: int,
        device: torch.device | str = "cpu",
        dtype: torch.dtype | None = None,
        input_grad: bool = False,
    ) -> ConvolutionPlan:
        """The (cached) plan for a ``(batch, C, height, width)`` shared or ``(T, batch, C, …)`` per-task
        input; ``input_grad``: the input needs a gradient (the timed trial's backward computes it)."""
        device = torch.device(device)
        dtype = dtype or torch.get_default_dtype()
        key = (shared, int(batch), int(height), int(width), device.type, dtype, input_grad, self.weight.ranks)
        plan = self._plans.get(key)
        if plan is None:
            subscripts, tensors = self._network()
            image = (batch, self.in_channels, height, width)
            shape = image if shared else (self.num_tasks, *image)
            plans = convolution_plans(
                subscripts,
                [tuple(t.shape) for t in tensors],
                self.weight.factor_names,
                shape,
                self.window,
                project=self.project,
                kernel=self.kernel,
                split_tasks=self.split_tasks,
            )
            plan = self._fastest(plans, shape, device, dtype, input_grad) if self.timed else plans[0]
            self._plans[key] = plan
        return plan

    @eager
    def _fastest(
        self,
        plans: list[ConvolutionPlan],
        image_shape: tuple[int, ...],
        device: torch.device,
        dtype: torch.dtype,
        input_grad: bool,
    ) -> ConvolutionPlan:
        """The fastest of ``plans`` in a training step (forward, backward) on a random image and factor copies."""
        _, tensors = self._network()
        names = self.weight.factor_names
        with torch.inference_mode(False), torch.enable_grad():
            factors = [t.detach().to(device, dtype).requires_grad_() for t in tensors]
            # Its own generator: timing must not move the caller's random stream.
            generator = torch.Generator(device).manual_seed(0)
            image = torch.randn(image_shape, generator=generator, device=device, dtype=dtype)
            image.requires_grad_(input_grad)
            bias = None if self.bias is None else self.bias.detach().T.to(device, dtype).contiguous().requires_grad_()

            def trial(plan: ConvolutionPlan) -> Callable[[], None]:
                def step() -> None:
                    plan(image, factors, names, bias).sum().backward()
                    if device.type != "cpu":  # kernels run asynchronously: time them, not their launches
                        torch.accelerator.synchronize(device)

                return step

            return fastest(plans, trial, always=[p for p in plans if p.composes_first])

    @property
    def plan(self) -> ConvolutionPlan | None:
        """The convolution plan of the last forward pass (``None`` before the first)."""
        return self._last_plan

    def forward(self, inputs: Tensor) -> Tensor:
        """``(B, C, H, W)`` or ``(T, B, C, H, W)`` → ``(T, B, out, H', W')``, one planned contraction."""
        shared = self._check_input(inputs)
        batch = inputs.shape[0] if shared else inputs.shape[1]
        height, width = inputs.shape[-2:]
        plan = self.plan_for(batch, shared, height, width, inputs.device, inputs.dtype, inputs.requires_grad)
        self._last_plan = plan
        _, tensors = self._network()
        # A contiguous (T, out) bias: broadcasting a strided view runs far slower on CPU.
        bias = None if self.bias is None else self.bias.T.contiguous()
        outputs = plan(inputs, tensors, self.weight.factor_names, bias)  # (B, T, out, H'·W')
        out_height, out_width = self.window.output_size(height, width)
        return outputs.reshape(*outputs.shape[:-1], out_height, out_width).transpose(0, 1)

    def forward_tasks(self, inputs: Tensor | Sequence[Tensor]) -> list[Tensor]:
        if isinstance(inputs, Tensor):
            return list(self(inputs).unbind(0))
        sizes = {tuple(x.shape) for x in inputs}
        if len(sizes) == 1 and len(inputs) == self.num_tasks:
            return list(self(torch.stack(list(inputs))).unbind(0))
        # Batches of different sizes cannot share one contraction: compose once, loop over tasks.
        _, task_inputs, task_biases = self._per_task_inputs_and_biases(inputs)
        filters = self._task_filters(self.task_major_weights())
        return [self._conv(x, w, b) for x, w, b in zip(task_inputs, filters, task_biases, strict=True)]

    def forward_per_task(self, inputs: Tensor) -> Tensor:
        """Test oracle: compose ``W`` by :meth:`~mtlkit.factorized.Factorization.compose`, loop ``F.conv2d``."""
        _, task_inputs, task_biases = self._per_task_inputs_and_biases(inputs)
        filters = self._task_filters(self.weight.compose().movedim(-1, 0))
        return torch.stack([self._conv(x, w, b) for x, w, b in zip(task_inputs, filters, task_biases, strict=True)])

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, " + super().extra_repr()
        )
