"""``FactorizedLinear``: ``T`` fully-connected layers softly shared through a factorised weight."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtlkit.factorized import LAF, ContractionPlan, Factorization, RankRule, plan_contraction
from mtlkit.factorized._base import check_weights
from mtlkit.nn._factorized_base import (
    FactorizationType,
    FactorizedLayer,
    check_count,
    resolve_factorization,
    stacked_biases,
)

Path = Sequence[Sequence[int]]


class FactorizedLinear(FactorizedLayer):
    r"""``T`` linear layers ``y_t = x_t W[..., t] + b[:, t]``, ``W`` a :class:`~mtlkit.factorized.Factorization`.

    Weight axis order is ``(in, out, T)`` (the paper's TF code); ``task_weights()[..., t]`` is the
    transpose of an ``nn.Linear`` weight. Biases ``(out, T)`` are per task.

    Input is either shared by all tasks, ``(B, in)``, or one batch per task, ``(T, B, in)``; the
    output is always ``(T, B, out)``. The forward pass is one einsum of the input with the factor
    network (e.g. LAF on a shared batch: ``y[t,b,o] = Σ_{i,K} x[b,i] L[i,o,K] S[K,t]``), run in the
    order with the fewest multiply-adds among *all* pairwise orders — composing the weights first
    is one of them — as found by opt_einsum (:func:`~mtlkit.factorized.plan_contraction`), with
    every intermediate stored task-, then batch-major (``leading="tb"``: fewer copies on CPU). The
    plan is made once per (shared or per-task, batch size, device, dtype) and cached;
    :attr:`plan` shows the last one used, :meth:`plan_for` any other; ``path=`` overrides the
    planner with a fixed opt_einsum path (operands: input first, then the factors of
    :meth:`~mtlkit.factorized.Factorization.network`).

    Args:
        in_features, out_features, num_tasks: layer sizes and number of tasks ``T``.
        factorization: :class:`~mtlkit.factorized.LAF` (default), ``Tucker``, ``TT`` or ``CP``.
        rule: rank rule of the random init: a :class:`~mtlkit.factorized.RankRule`, or ranks as
            an ``int`` (a cap on every mode) or a tuple; default ``RelativeError(0.1)`` on a
            random dense draw (near full ranks; pass ranks for compression).
        bias: learn per-task biases.
        path: fixed contraction path instead of the planner's.
        eps, ranks: deprecated spellings of ``rule``.

    >>> from mtlkit.factorized import Ranks, Tucker
    >>> _ = torch.manual_seed(0)
    >>> layer = FactorizedLinear(8, 4, num_tasks=3, factorization=Tucker, rule=Ranks(4, 2, 2))
    >>> layer(torch.randn(5, 8)).shape, layer.task_weights().shape
    (torch.Size([3, 5, 4]), torch.Size([8, 4, 3]))
    >>> layer.plan.equation, layer.plan.multiply_adds  # dense: T·B·in·out = 480; ties between orders may differ
    ('bi,ABC,iA,oB,tC->tbo', 420)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        num_tasks: int,
        factorization: FactorizationType | str = LAF,
        rule: RankRule | int | Sequence[int] | None = None,
        *,
        bias: bool = True,
        path: Path | None = None,
        eps: float | None = None,
        ranks: int | Sequence[int] | None = None,
        _weight: Factorization | None = None,
        _bias: Tensor | None = None,
    ) -> None:
        what = f"FactorizedLinear({in_features}, {out_features}, num_tasks={num_tasks})"
        in_features = check_count(in_features, "in_features", what)
        out_features = check_count(out_features, "out_features", what)
        num_tasks = check_count(num_tasks, "num_tasks", what)
        shape = (in_features, out_features, num_tasks)
        if _weight is None:
            kind, chosen = resolve_factorization(factorization, rule, eps=eps, ranks=ranks, what=what)
            _weight = self._initial_weight(kind, shape, in_features, chosen, f"{what} ({kind.__name__})")
        super().__init__(_weight, in_features, bias if _bias is None else _bias)
        self.in_features, self.out_features = in_features, out_features
        self.path = None if path is None else tuple(tuple(step) for step in path)
        self._plans: dict[tuple[object, ...], ContractionPlan] = {}
        self._last_plan: ContractionPlan | None = None

    @classmethod
    def from_dense(
        cls,
        layers: Sequence[nn.Linear],
        factorization: FactorizationType | str = LAF,
        rule: RankRule | int | Sequence[int] | None = None,
        *,
        path: Path | None = None,
        eps: float | None = None,
        ranks: int | Sequence[int] | None = None,
    ) -> FactorizedLinear:
        """Initialise from ``T`` trained single-task ``nn.Linear`` layers (paper's STL init).

        The weights stack to ``(in, out, T)`` and are decomposed directly under ``rule``
        (default ``RelativeError(0.1)``); biases are copied.

        >>> from mtlkit.factorized import TT, RelativeError
        >>> _ = torch.manual_seed(0)
        >>> dense = [nn.Linear(6, 3) for _ in range(4)]
        >>> layer = FactorizedLinear.from_dense(dense, TT, RelativeError(0.0))
        >>> torch.allclose(layer.task_weights()[..., 2], dense[2].weight.T, atol=1e-5)
        True
        """
        if isinstance(layers, nn.Module) or not isinstance(layers, Sequence) or len(layers) == 0:
            raise TypeError(
                f"FactorizedLinear.from_dense: layers must be a non-empty sequence of nn.Linear, got {layers!r}"
            )
        first = layers[0]
        for index, layer in enumerate(layers):
            if not isinstance(layer, nn.Linear):
                raise TypeError(f"FactorizedLinear.from_dense: layers[{index}] is {layer!r}, not an nn.Linear")
            if layer.weight.shape != first.weight.shape:
                raise ValueError(
                    f"FactorizedLinear.from_dense: layers[{index}] is {layer!r}; all layers must be "
                    f"nn.Linear({first.in_features}, {first.out_features})"
                )
        what = f"FactorizedLinear.from_dense({len(layers)} × nn.Linear({first.in_features}, {first.out_features}))"
        kind, chosen = resolve_factorization(factorization, rule, eps=eps, ranks=ranks, what=what)
        stacked = check_weights(torch.stack([layer.weight.detach().T for layer in layers], dim=-1), what)
        weight = kind.from_tensor(stacked, chosen, what=f"{what} ({kind.__name__})").to(stacked)
        biases = stacked_biases([layer.bias for layer in layers], stacked)
        return cls(
            first.in_features, first.out_features, len(layers), kind, path=path, _weight=weight,
            _bias=biases if isinstance(biases, Tensor) else None, bias=biases is not False,
        )  # fmt: skip

    def _check_input(self, inputs: Tensor) -> bool:
        """Return ``True`` for a shared input, ``False`` for per-task inputs; raise otherwise."""
        if inputs.dim() == 2 and inputs.shape[1] == self.in_features:
            return True
        if inputs.dim() == 3 and inputs.shape[0] == self.num_tasks and inputs.shape[2] == self.in_features:
            return False
        raise ValueError(
            f"{type(self).__name__}(in={self.in_features}, out={self.out_features}, "
            f"T={self.num_tasks}): expected input (B, {self.in_features}) or "
            f"(T={self.num_tasks}, B, {self.in_features}), got {tuple(inputs.shape)}"
        )

    # ------------------------------------------------------------------------------ planning

    def _network(self, shared: bool) -> tuple[list[str], list[Tensor], list[str]]:
        subscripts, tensors = self.weight.network("iot")
        names = list(self.weight.factor_names)
        return ["bi" if shared else "tbi", *subscripts], tensors, ["x", *names]

    def plan_for(
        self, batch: int, shared: bool, device: torch.device | str = "cpu", dtype: torch.dtype | None = None
    ) -> ContractionPlan:
        """The (cached) plan for a ``(batch, in)`` shared or ``(T, batch, in)`` per-task input."""
        device = torch.device(device)
        key = (shared, int(batch), device.type, dtype, self.weight.ranks)
        plan = self._plans.get(key)
        if plan is None:
            subscripts, tensors, names = self._network(shared)
            input_shape = (batch, self.in_features) if shared else (self.num_tasks, batch, self.in_features)
            shapes = [input_shape, *(tuple(t.shape) for t in tensors)]
            plan = plan_contraction(subscripts, "tbo", shapes, names, path=self.path, leading="tb")
            self._plans[key] = plan
        return plan

    @property
    def plan(self) -> ContractionPlan | None:
        """The contraction plan of the last forward pass (``None`` before the first)."""
        return self._last_plan

    def forward(self, inputs: Tensor) -> Tensor:
        """``(B, in)`` or ``(T, B, in)`` → ``(T, B, out)``, one planned contraction for all tasks."""
        shared = self._check_input(inputs)
        _, tensors, _ = self._network(shared)
        batch = inputs.shape[0] if shared else inputs.shape[1]
        plan = self.plan_for(batch, shared, inputs.device, inputs.dtype)
        self._last_plan = plan
        outputs = plan([inputs, *tensors])
        # A contiguous (T, out) bias: broadcasting a strided view runs far slower on CPU.
        return outputs if self.bias is None else outputs + self.bias.T.contiguous().unsqueeze(1)

    def forward_tasks(self, inputs: Tensor | Sequence[Tensor]) -> list[Tensor]:
        if isinstance(inputs, Tensor):
            return list(self(inputs).unbind(0))
        sizes = {tuple(x.shape) for x in inputs}
        if len(sizes) == 1 and len(inputs) == self.num_tasks:
            return list(self(torch.stack(list(inputs))).unbind(0))
        # Batches of different sizes cannot share one contraction: compose once, loop over tasks.
        _, task_inputs, task_biases = self._per_task_inputs_and_biases(inputs)
        weights = self.task_major_weights().unbind(0)
        return [F.linear(x, w.T, b) for x, w, b in zip(task_inputs, weights, task_biases, strict=True)]

    def forward_per_task(self, inputs: Tensor) -> Tensor:
        """Test oracle: compose ``W`` by :meth:`~mtlkit.factorized.Factorization.compose`, loop ``F.linear``."""
        _, task_inputs, task_biases = self._per_task_inputs_and_biases(inputs)
        weights = self.weight.compose().unbind(-1)
        return torch.stack([F.linear(x, w.T, b) for x, w, b in zip(task_inputs, weights, task_biases, strict=True)])

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, " + super().extra_repr()
