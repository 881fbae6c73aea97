"""Shared machinery of the DMTRL factorised layers: factor storage, composition and its cache."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, TypeVar

import torch
from torch import Tensor, nn

from mtlkit.decomp import decompose, random_factors
from mtlkit.factorization import (
    FACTORIZATION_METHODS,
    FactorizationMethod,
    TaskBasis,
    check_tt_ranks,
    check_tucker_ranks,
    compose_task_major,
    laf_max_rank,
    task_basis,
    tt_feasible_ranks,
)

Ranks = int | Sequence[int]
SharedInputPath = Literal["auto", "basis", "composed"]
_Value = TypeVar("_Value")
# On CPU, one extra pass over an intermediate value (write, then read back) costs about as much as
# this many multiply-adds (fitted to benchmarks/bench_factorized.py's conv1 and FC1 shapes).
_PASS_COST = 16


class FactorizedLayer(nn.Module):
    """Base of layers whose task-stacked weight ``W`` (task axis last) is composed from factors.

    Subclasses fix the weight axis order and the kernel; this base stores the factors as
    parameters (``factors``: LAF ``[L, S]``, Tucker ``[G, U_1..U_N]``, TT ``[G_1..G_N]``), the
    per-task biases ``bias`` of shape ``(out, T)`` (never shared, as in the paper), and turns the
    factors into what the kernels need, once per call: the :class:`~mtlkit.factorization.TaskBasis`
    (``K`` shared basis weights and the ``T × K`` task matrix) and from it the task-major weight
    ``(T, ...)``. Per-task batches always use the task-major weight. A batch shared by all tasks
    can instead go through the ``K`` basis weights and be mixed per task afterwards;
    ``shared_input_path`` chooses: ``"basis"``, ``"composed"``, or ``"auto"`` (default), which
    takes the basis path when its multiply-adds per output position, ``fan_in·K + K·T`` plus an
    extra pass over ``K + T`` intermediates, are fewer than composing's ``fan_in·T`` — so a wide
    layer with ``K < T`` mixes (a shared-input 1024 → 512 layer trains ≈ 2× faster at ``K = 5,
    T = 10``) while a first convolution with a fan-in of 25 does not: its extra memory pass costs
    more than it saves.

    In eval mode without autograd these tensors are cached; the cache key is every factor's
    storage pointer and ``_version`` counter, so any in-place update (optimizer step,
    ``load_state_dict``, ``.to()``) and ``train()`` invalidate it.
    """

    factors: nn.ParameterList

    def __init__(
        self,
        weight_shape: Sequence[int],
        fan_in: int,
        method: FactorizationMethod,
        ranks: Ranks | None,
        eps: float,
        bias: bool,
    ) -> None:
        super().__init__()
        if method not in FACTORIZATION_METHODS:
            raise ValueError(
                f"{type(self).__name__}: unknown method {method!r}; expected one of {FACTORIZATION_METHODS}"
            )
        self.method: FactorizationMethod = method
        self.fan_in = int(fan_in)
        self.shared_input_path: SharedInputPath = "auto"
        self.weight_shape: tuple[int, ...] = tuple(int(d) for d in weight_shape)
        ranks = self._resolve_ranks(ranks)
        initial = random_factors(
            method,
            self.weight_shape,
            fan_in,
            ranks=ranks,
            eps=None if ranks is not None else eps,
            dtype=torch.get_default_dtype(),
        )
        self.factors = nn.ParameterList(nn.Parameter(f) for f in initial)
        out_features, num_tasks = self.weight_shape[-2], self.weight_shape[-1]
        if bias:
            bound = fan_in**-0.5
            self.bias: nn.Parameter | None = nn.Parameter(torch.empty(out_features, num_tasks).uniform_(-bound, bound))
        else:
            self.register_parameter("bias", None)
        self._cache_key: tuple[tuple[int, int], ...] | None = None
        self._cache: dict[str, object] = {}

    # --------------------------------------------------------------------------- construction

    def _resolve_ranks(self, ranks: Ranks | None) -> int | tuple[int, ...] | None:
        """Concrete ranks for ``weight_shape``, failing early with the layer's name and shape.

        An ``int`` is a cap applied to every mode (LAF ``min(K, max)``, Tucker ``min(K, D_n)``,
        TT the largest chain-consistent ranks ``≤ K``); a sequence must be valid as given.
        """
        if ranks is None:
            return None
        what = f"{type(self).__name__}({self.method}, weight shape {self.weight_shape})"
        if isinstance(ranks, bool) or (isinstance(ranks, int) and ranks < 1):
            raise ValueError(f"{what}: rank must be a positive integer, got {ranks!r}")
        if self.method == "laf":
            if not isinstance(ranks, int):
                raise ValueError(f"{what}: LAF takes a single integer rank K, got {ranks!r}")
            return min(ranks, laf_max_rank(self.weight_shape))
        if isinstance(ranks, int):
            if self.method == "tucker":
                return tuple(min(ranks, d) for d in self.weight_shape)
            return tt_feasible_ranks(self.weight_shape, ranks)
        check = check_tucker_ranks if self.method == "tucker" else check_tt_ranks
        return check(self.weight_shape, tuple(ranks), what)

    def _load_task_weights(
        self, weights: Tensor, biases: Tensor | None, eps: float | None, ranks: Ranks | None
    ) -> None:
        """Replace factors by a decomposition of task-stacked dense ``weights`` (``from_dense``)."""
        if tuple(weights.shape) != self.weight_shape:
            raise ValueError(
                f"{type(self).__name__}: stacked weights have shape {tuple(weights.shape)}, "
                f"expected {self.weight_shape}"
            )
        ranks = self._resolve_ranks(ranks)
        new = decompose(self.method, weights.detach(), eps=eps if ranks is None else None, ranks=ranks)
        self.factors = nn.ParameterList(nn.Parameter(f.to(weights.dtype)) for f in new)
        if self.bias is not None:
            # New parameters, not copy_: the bias must follow the weights' dtype and device too.
            bias = self.bias.detach() if biases is None else biases.detach()
            self.bias = nn.Parameter(bias.to(weights).clone())
        self._cache_key, self._cache = None, {}

    # ------------------------------------------------------------------------------ weights

    @property
    def num_tasks(self) -> int:
        return self.weight_shape[-1]

    @property
    def ranks(self) -> int | tuple[int, ...]:
        """Current ranks: LAF ``K``; Tucker ``(K_1..K_N)``; TT inner ``(K_1..K_{N-1})``."""
        if self.method == "laf":
            return int(self.factors[1].shape[0])
        if self.method == "tucker":
            return tuple(int(k) for k in self.factors[0].shape)
        return tuple(int(core.shape[2]) for core in self.factors[:-1])

    def task_factor(self) -> Tensor:
        """The ``K × T`` "S-like" task-specific factor (paper Sec. 4.3, used by sharing strength).

        LAF: ``S``; Tucker: ``U_Nᵀ``; TT: the last core ``G_N[:, :, 0]``.
        """
        if self.method == "laf":
            return self.factors[1]
        if self.method == "tucker":
            return self.factors[-1].T
        return self.factors[-1][:, :, 0]

    def _cached(self, name: str, compute: Callable[[], _Value]) -> _Value:
        """``compute()``, memoised per factor state while in eval mode without autograd."""
        needs_graph = torch.is_grad_enabled() and any(p.requires_grad for p in self.factors)
        if self.training or needs_graph:
            # A cached, detached weight would silently cut gradients: only cache pure inference.
            return compute()
        key = tuple((p.data_ptr(), p._version) for p in self.factors)
        if key != self._cache_key:
            self._cache_key, self._cache = key, {}
        if name not in self._cache:
            self._cache[name] = compute()
        return self._cache[name]  # type: ignore[return-value]

    def task_basis(self) -> TaskBasis:
        """``W = basis ×_N task_matrix``: the ``K`` shared basis weights and the ``T × K`` mixing."""
        return self._cached("basis", lambda: task_basis(self.method, list(self.factors)))

    def task_major_weights(self) -> Tensor:
        """Composed weight with the task axis *first*, ``(T, ...)``, contiguous per task."""
        return self._cached("task_major", lambda: compose_task_major(self.task_basis()))

    def task_weights(self) -> Tensor:
        """Composed task-stacked weight ``W``, task axis last (axis order: see the subclass)."""
        return self._cached("task_last", lambda: self.task_major_weights().movedim(0, -1))

    def _per_task_inputs_and_biases(
        self, inputs: Tensor | Sequence[Tensor]
    ) -> tuple[bool, Sequence[Tensor], Sequence[Tensor | None]]:
        """``(shared, task inputs, task biases)`` for the per-task loops.

        ``inputs`` is a shared batch, a ``(T, B, ...)`` tensor or a list of ``T`` batches.
        ``unbind`` rather than indexing, so backward stacks the per-task gradients once instead of
        scattering each into a zero-filled copy.
        """
        if isinstance(inputs, Tensor):
            shared = self._check_input(inputs)
            task_inputs = [inputs] * self.num_tasks if shared else inputs.unbind(0)
        else:
            if len(inputs) != self.num_tasks:
                raise ValueError(f"{type(self).__name__}: {len(inputs)} task inputs for T={self.num_tasks} tasks")
            for x in inputs:
                if not self._check_input(x):
                    raise ValueError(f"{type(self).__name__}: each task input must be one batch, got {tuple(x.shape)}")
            shared, task_inputs = False, list(inputs)
        task_biases = [None] * self.num_tasks if self.bias is None else self.bias.unbind(1)
        return shared, task_inputs, task_biases

    def _check_input(self, inputs: Tensor) -> bool:
        """``True`` for a shared batch, ``False`` for per-task batches; raise otherwise."""
        raise NotImplementedError

    def forward_tasks(self, inputs: Tensor | Sequence[Tensor]) -> list[Tensor]:
        """The ``T`` task outputs as a list, computed task by task (weights composed once).

        Takes a shared batch, a ``(T, B, ...)`` tensor or a list of ``T`` batches (sizes may
        differ). On CPU this keeps each task's activations small enough to stay in cache, which
        is why :class:`~mtlkit.nn.DMTRLNet` runs its layers this way there.
        """
        raise NotImplementedError

    def _mix_shared_input(self) -> bool:
        """Whether a shared batch takes the basis path (see the class docstring)."""
        if self.shared_input_path != "auto":
            if self.shared_input_path not in ("basis", "composed"):
                raise ValueError(
                    f"{type(self).__name__}: shared_input_path must be 'auto', 'basis' or 'composed', "
                    f"got {self.shared_input_path!r}"
                )
            return self.shared_input_path == "basis"
        rank, tasks = self.task_factor().shape[0], self.num_tasks
        return self.fan_in * rank + rank * tasks + _PASS_COST * (rank + tasks) < self.fan_in * tasks

    def train(self, mode: bool = True) -> FactorizedLayer:
        self._cache_key, self._cache = None, {}
        return super().train(mode)

    def parameter_count(self) -> int:
        """Learnable parameters of this layer: factors plus per-task biases."""
        return sum(p.numel() for p in self.parameters())

    def extra_repr(self) -> str:
        return (
            f"method={self.method!r}, weight_shape={self.weight_shape}, ranks={self.ranks}, "
            f"bias={self.bias is not None}"
        )
