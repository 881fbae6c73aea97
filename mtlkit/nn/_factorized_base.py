"""Shared machinery of the DMTRL factorised layers: the factorisation, per-task biases, caches."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
from torch import Tensor, nn

from mtlkit.factorization import TaskBasis, compose_task_major
from mtlkit.factorized import LAF, TT, Factorization, RankRule, Ranks, RelativeError, Tucker

_Value = TypeVar("_Value")
FactorizationType = type[Factorization]
# The 0.1 string names, kept only so that old call sites keep working (with a DeprecationWarning);
# factorisations added since have no string name.
_LEGACY_NAMES: dict[str, FactorizationType] = {"laf": LAF, "tucker": Tucker, "tt": TT}


def resolve_factorization(
    factorization: object, rule: object, *, eps: object, ranks: object, what: str
) -> tuple[FactorizationType, RankRule]:
    """The factorisation class and rank rule of a layer; maps the deprecated string/eps/ranks API.

    ``rule`` may be a :class:`~mtlkit.factorized.RankRule`, an ``int`` or a sequence of ints
    (shorthand for :class:`~mtlkit.factorized.Ranks`), or ``None`` (ε = 0.1, the paper's value).
    """
    if isinstance(factorization, str):
        if factorization not in _LEGACY_NAMES:
            raise ValueError(f"{what}: unknown factorization {factorization!r}; pass LAF, Tucker, TT or CP")
        warnings.warn(
            f"{what}: factorization names are deprecated; pass the class mtlkit.factorized."
            f"{_LEGACY_NAMES[factorization].__name__}",
            DeprecationWarning,
            stacklevel=3,
        )
        factorization = _LEGACY_NAMES[factorization]
    if not (isinstance(factorization, type) and issubclass(factorization, Factorization)):
        raise TypeError(
            f"{what}: factorization must be a Factorization class (LAF, Tucker, TT, CP), got {factorization!r}"
        )
    if eps is not None or ranks is not None:
        if rule is not None:
            raise ValueError(f"{what}: pass the rank rule as rule= only, not with eps={eps!r} / ranks={ranks!r}")
        if eps is not None and ranks is not None:
            raise ValueError(f"{what}: pass exactly one of eps= or ranks= (deprecated; use rule=)")
        warnings.warn(
            f"{what}: eps= and ranks= are deprecated; pass rule=RelativeError(eps) or rule=Ranks(...)",
            DeprecationWarning,
            stacklevel=3,
        )
        rule = RelativeError(eps) if eps is not None else ranks  # type: ignore[arg-type]
    return factorization, as_rule(rule, what)


def as_rule(rule: object, what: str) -> RankRule:
    """``rule`` as a :class:`~mtlkit.factorized.RankRule` (``int``/ints → ``Ranks``, ``None`` → ε = 0.1)."""
    if rule is None:
        return RelativeError(0.1)
    if isinstance(rule, RankRule):
        return rule
    if isinstance(rule, bool) or not isinstance(rule, (int, Sequence)):
        raise TypeError(f"{what}: rule must be a RankRule, an int or a sequence of ints, got {rule!r}")
    try:
        return Ranks(rule)
    except (TypeError, ValueError) as error:
        raise type(error)(f"{what}: {error}") from None


def check_count(value: object, name: str, what: str) -> int:
    """A positive int argument, else TypeError/ValueError naming it and its value."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what}: {name} must be a positive int, got {value!r}")
    if value < 1:
        raise ValueError(f"{what}: {name} must be a positive int, got {value!r}")
    return value


class FactorizedLayer(nn.Module):
    """Base of layers whose task-stacked weight ``W`` (task axis last) is a :class:`~mtlkit.factorized.Factorization`.

    Subclasses fix the weight axis order and the kernels; this base holds the factorisation as the
    submodule ``weight`` (its factors are named parameters, e.g. ``weight.L``), the per-task
    biases ``bias`` of shape ``(out, T)`` (never shared, as in the paper), and the composed forms
    the kernels need: the :class:`~mtlkit.factorization.TaskBasis` and the task-major weight
    ``(T, ...)``.

    In eval mode without autograd these tensors are cached; the cache key is every factor's
    storage pointer and ``_version`` counter, so any in-place update (optimizer step,
    ``load_state_dict``, ``.to()``) and ``train()`` invalidate it.
    """

    weight: Factorization

    def __init__(self, weight: Factorization, fan_in: int, bias: Tensor | bool) -> None:
        super().__init__()
        self.weight = weight
        self.fan_in = int(fan_in)
        self.weight_shape: tuple[int, ...] = tuple(weight.shape)
        out_features, num_tasks = self.weight_shape[-2], self.weight_shape[-1]
        if isinstance(bias, Tensor):
            self.bias: nn.Parameter | None = nn.Parameter(bias.detach().clone())
        elif bias:
            bound = fan_in**-0.5
            self.bias = nn.Parameter(torch.empty(out_features, num_tasks).uniform_(-bound, bound))
        else:
            self.register_parameter("bias", None)
        self._cache_key: tuple[tuple[int, int], ...] | None = None
        self._cache: dict[str, object] = {}

    @staticmethod
    def _initial_weight(
        factorization: FactorizationType, shape: tuple[int, ...], fan_in: int, rule: RankRule, what: str
    ) -> Factorization:
        return factorization.random(shape, rule, fan_in=fan_in, what=what)

    # ------------------------------------------------------------------------------ weights

    @property
    def num_tasks(self) -> int:
        return self.weight_shape[-1]

    @property
    def factorization(self) -> FactorizationType:
        """The factorisation class (``LAF``, ``Tucker``, ``TT``, ``CP``)."""
        return type(self.weight)

    @property
    def ranks(self) -> tuple[int, ...]:
        """Current ranks of the factorisation (see :attr:`mtlkit.factorized.Factorization.ranks`)."""
        return self.weight.ranks

    def task_factor(self) -> Tensor:
        """The ``K × T`` "S-like" task-specific factor (paper Sec. 4.3, used by sharing strength)."""
        return self.weight.task_factor()

    def _cached(self, name: str, compute: Callable[[], _Value]) -> _Value:
        """``compute()``, memoised per factor state while in eval mode without autograd."""
        factors = list(self.weight.parameters())
        needs_graph = torch.is_grad_enabled() and any(p.requires_grad for p in factors)
        if self.training or needs_graph:
            # A cached, detached weight would silently cut gradients: only cache pure inference.
            return compute()
        key = tuple((p.data_ptr(), p._version) for p in factors)
        if key != self._cache_key:
            self._cache_key, self._cache = key, {}
        if name not in self._cache:
            self._cache[name] = compute()
        return self._cache[name]  # type: ignore[return-value]

    def task_basis(self) -> TaskBasis:
        """``W = basis ×_N task_matrix``: the ``K`` shared basis weights and the ``T × K`` mixing."""
        return self._cached("basis", self.weight.task_basis)

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
        """The ``T`` task outputs as a list (takes a shared batch, ``(T, B, ...)`` or ``T`` batches)."""
        raise NotImplementedError

    def train(self, mode: bool = True) -> FactorizedLayer:
        self._cache_key, self._cache = None, {}
        return super().train(mode)

    def parameter_count(self) -> int:
        """Learnable parameters of this layer: factors plus per-task biases."""
        return sum(p.numel() for p in self.parameters())

    def extra_repr(self) -> str:
        return f"factorization={self.factorization.__name__}, ranks={self.ranks}, bias={self.bias is not None}"


def stacked_biases(biases: Sequence[Tensor | None], weights: Tensor) -> Tensor | bool:
    """``(out, T)`` biases of dense layers in the weights' dtype/device, or ``False`` when any lacks one."""
    if any(b is None for b in biases):
        return False
    return torch.stack([b.detach() for b in biases], dim=-1).to(weights)  # type: ignore[union-attr]
