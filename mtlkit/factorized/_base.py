"""``Factorization``: the abstract base of every factorised task-stacked weight (one file per variant)."""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TypeVar, cast

import torch
from torch import Tensor, nn

from mtlkit.factorization import TaskBasis
from mtlkit.factorized._rules import RankRule, Ranks

__all__ = ["Factorization", "RANK_LETTERS"]

# Rank (bond) indices of a factor network are upper-case letters; the layers use lower-case ones
# for the weight's axes, the batch and the task, so the two never collide.
RANK_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

_F = TypeVar("_F", bound="Factorization")


def check_weights(weights: object, what: str) -> Tensor:
    """``weights`` as a floating tensor with ≥ 2 axes and only finite entries, else TypeError/ValueError."""
    if not isinstance(weights, Tensor):
        raise TypeError(f"{what}: weights must be a torch.Tensor, got {type(weights).__name__}")
    if not weights.is_floating_point():
        raise TypeError(f"{what}: weights must be floating point, got dtype {weights.dtype}")
    if weights.dim() < 2 or weights.numel() == 0:
        raise ValueError(f"{what}: weights of shape {tuple(weights.shape)} need ≥ 2 non-empty axes (…, T)")
    if not bool(torch.isfinite(weights).all()):
        bad = int((~torch.isfinite(weights)).sum())
        raise ValueError(f"{what}: weights of shape {tuple(weights.shape)} hold {bad} NaN/inf entries")
    return weights.detach()


def check_shape(shape: Sequence[int], what: str) -> tuple[int, ...]:
    """A weight shape with ≥ 2 positive integer axes, task axis last."""
    values = tuple(shape)
    if len(values) < 2 or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in values):
        raise ValueError(f"{what}: weight shape {values} must have ≥ 2 positive int axes (…, T), task axis last")
    return values


def check_fan_in(shape: tuple[int, ...], fan_in: int | None, what: str) -> int:
    """``fan_in`` of a random init, by default ``Π D_n`` over all but the last two axes; a positive int.

    >>> check_fan_in((5, 5, 3, 8, 2), None, "conv1")
    75
    """
    if fan_in is None:
        return math.prod(shape[:-2])
    if isinstance(fan_in, bool) or not isinstance(fan_in, numbers.Integral) or fan_in < 1:
        raise ValueError(f"{what}: fan_in must be a positive int, got {fan_in!r}")
    return int(fan_in)


class Factorization(nn.Module, ABC):
    r"""A task-stacked weight ``W`` of shape ``(D_1, ..., D_{N-1}, T)`` stored as *named* factors.

    Subclasses (:class:`~mtlkit.factorized.LAF`, :class:`~mtlkit.factorized.Tucker`,
    :class:`~mtlkit.factorized.TT`, :class:`~mtlkit.factorized.CP`) say, in one file each, how the
    factors compose (:meth:`compose`, and :meth:`network`: the same composition as an einsum
    network, which the layers hand to the contraction planner), which factor is task specific
    (:meth:`task_factor`), and how a dense ``W`` is decomposed under each rank rule. Everything
    else — construction from a tensor or at random, parameter counts, rule dispatch — is here.

    Factors are ``nn.Parameter`` attributes named in :attr:`factor_names` (``L``/``S`` for LAF,
    ``core``/``U0``… for Tucker, ``G0``… for TT, ``U0``… for CP).
    """

    factor_names: tuple[str, ...]

    def __init__(self, shape: Sequence[int], factors: Mapping[str, Tensor]) -> None:
        super().__init__()
        self.shape: tuple[int, ...] = check_shape(shape, type(self).__name__)
        self.factor_names = tuple(factors)
        for name, value in factors.items():
            self.register_parameter(name, nn.Parameter(value))

    # ------------------------------------------------------------------------------ structure

    def factors(self) -> list[Tensor]:
        """The factors in :attr:`factor_names` order."""
        return [getattr(self, name) for name in self.factor_names]

    @property
    @abstractmethod
    def ranks(self) -> tuple[int, ...]:
        """Current ranks (LAF ``(K,)``, Tucker ``(K_1..K_N)``, TT ``(K_1..K_{N-1})``, CP ``(R,)``)."""

    @abstractmethod
    def compose(self) -> Tensor:
        """The dense ``W`` of shape :attr:`shape` (differentiable in the factors)."""

    def forward(self) -> Tensor:
        """The module's output is its weight: ``W = compose()``."""
        return self.compose()

    @abstractmethod
    def network(self, modes: str) -> tuple[list[str], list[Tensor]]:
        """``W`` as an einsum network: ``W[modes] = einsum(subscripts → modes, tensors)``.

        ``modes`` holds one lower-case letter per axis of ``W``; rank indices are upper-case.
        """

    @abstractmethod
    def task_factor(self) -> Tensor:
        """The ``K × T`` "S-like" task-specific factor (DMTRL Sec. 4.3, used by sharing strength)."""

    @abstractmethod
    def task_basis(self) -> TaskBasis:
        """``W[..., t] = Σ_k basis[..., k] task_matrix[t, k]``: ``K`` shared basis weights, ``T × K`` mixing."""

    @property
    def num_tasks(self) -> int:
        return self.shape[-1]

    @property
    def parameter_count(self) -> int:
        """Number of weight parameters held by the factors."""
        return sum(p.numel() for p in self.parameters())

    def extra_repr(self) -> str:
        return f"shape={self.shape}, ranks={self.ranks}"

    # -------------------------------------------------------------------------- construction

    @classmethod
    def from_tensor(cls: type[_F], weights: Tensor, rule: RankRule, *, what: str | None = None) -> _F:
        """Decompose a dense task-last ``weights`` under ``rule`` (no random init is drawn).

        ``what`` names the layer in error messages.
        """
        what = what or cls.__name__
        if not isinstance(rule, RankRule):
            raise TypeError(f"{what}: rule must be a RankRule (Ranks, RelativeError, ...), got {rule!r}")
        weights = check_weights(weights, what)
        return rule.decompose(cls, weights, what)  # type: ignore[return-value]

    @classmethod
    def random(
        cls: type[_F],
        shape: Sequence[int],
        rule: RankRule,
        *,
        fan_in: int | None = None,
        generator: torch.Generator | None = None,
        dtype: torch.dtype | None = None,
        what: str | None = None,
    ) -> _F:
        """Random init as DMTRL recommends: dense ``U(±1/√fan_in)`` weights, decomposed under ``rule``.

        ``fan_in`` defaults to ``Π D_n`` over all but the last two axes (``in`` for a linear
        ``(in, out, T)`` weight, ``kh·kw·in`` for a conv kernel). Truncation removes energy, so the
        task factor is rescaled to give the composed tensor the dense draw's Frobenius norm.
        """
        what = what or cls.__name__
        shape = check_shape(shape, what)
        if not isinstance(rule, RankRule):
            raise TypeError(f"{what}: rule must be a RankRule (Ranks, RelativeError, ...), got {rule!r}")
        fan_in = check_fan_in(shape, fan_in, what)
        # Fail on impossible ranks before drawing a tensor that may be large.
        ranks = rule.shape_ranks(cls, shape, what)
        if ranks is not None:
            drawn = cls.random_at_ranks(shape, cast("tuple[int, ...]", ranks), fan_in, generator, dtype)
            if drawn is not None:
                return drawn
        bound = 1.0 / math.sqrt(fan_in)
        dense = (torch.rand(*shape, generator=generator, dtype=torch.float64) * 2 - 1) * bound
        made = rule.decompose(cls, dense, what)
        composed = torch.linalg.vector_norm(made.compose().detach())
        if composed > 0:
            with torch.no_grad():
                made.task_parameter().mul_(torch.linalg.vector_norm(dense) / composed)
        # nn.Module.to is typed as returning the base class; it returns the instance itself.
        return cast("_F", made.to(dtype or torch.get_default_dtype()))

    @classmethod
    def random_at_ranks(
        cls: type[_F],
        shape: tuple[int, ...],
        ranks: tuple[int, ...],
        fan_in: int,
        generator: torch.Generator | None,
        dtype: torch.dtype | None,
    ) -> _F | None:
        """A random init drawn directly at ``ranks`` (fixed by the shape), or ``None`` (the default)
        for :meth:`random` to decompose a dense draw; a factorisation whose decomposition of a
        structureless draw is slow overrides it."""
        return None

    @abstractmethod
    def task_parameter(self) -> nn.Parameter:
        """The parameter that holds :meth:`task_factor` (rescaled by :meth:`random`)."""

    # Per-factorisation rank logic: each subclass implements these for its own rank layout.

    @classmethod
    @abstractmethod
    def resolve_ranks(cls, shape: tuple[int, ...], rule: Ranks, what: str) -> tuple[int, ...]:
        """Concrete ranks for ``shape`` from a :class:`Ranks` rule; errors name ``what``, shape and bound."""

    @classmethod
    @abstractmethod
    def count(cls, shape: Sequence[int], ranks: Sequence[int]) -> int:
        """Analytic number of factor parameters for ``shape`` at ``ranks`` (DMTRL App. B)."""

    @classmethod
    @abstractmethod
    def decompose_fixed(cls: type[_F], weights: Tensor, ranks: tuple[int, ...]) -> _F:
        """Decomposition of ``weights`` at valid ``ranks``."""

    @classmethod
    @abstractmethod
    def decompose_relative(cls: type[_F], weights: Tensor, eps: float) -> _F:
        """Decomposition with ``‖W − Ŵ‖_F ≤ eps ‖W‖_F`` and the smallest ranks the method can tell."""

    @classmethod
    @abstractmethod
    def spectral_ranks(cls, weights: Tensor, eps: float, what: str) -> tuple[int, ...]:
        """Ranks by the authors' code's reading of ``eps`` (``σ_i > eps σ_1`` per flattening); errors name ``what``."""

    @classmethod
    def budget_ranks(cls, shape: tuple[int, ...], fraction: float, what: str) -> tuple[int, ...]:
        """Largest uniform rank cap ``c`` whose ranks hold ``≤ fraction · Π shape`` parameters."""
        budget = fraction * math.prod(shape)
        best: tuple[int, ...] | None = None
        low, high = 1, max(shape) * max(shape)
        while low <= high:  # counts grow with the cap, so bisect it
            cap = (low + high) // 2
            ranks = cls.resolve_ranks(shape, Ranks(cap), what)
            if cls.count(shape, ranks) <= budget:
                best, low = ranks, cap + 1
            else:
                high = cap - 1
        if best is None:
            smallest = cls.count(shape, cls.resolve_ranks(shape, Ranks(1), what))
            raise ValueError(
                f"{what}: ParameterBudget({fraction}) allows {budget:.0f} parameters for weight shape {shape}, "
                f"but rank 1 already needs {smallest}"
            )
        return best

    @classmethod
    def useful_ranks(cls, shape: tuple[int, ...], what: str) -> tuple[int, ...]:
        """The largest ranks that can still add to the composed tensor (the exact decomposition's)."""
        return cls.resolve_ranks(shape, Ranks(math.prod(shape)), what)

    @classmethod
    def proportional_ranks(cls, shape: tuple[int, ...], fraction: float, what: str) -> tuple[int, ...]:
        r"""Ranks :math:`K_n = \max(1, \lceil \alpha R_n \rceil)` for the largest :math:`\alpha \le 1` within budget.

        :math:`R_n` are :meth:`useful_ranks`; every mode, the task mode included, gives up the
        same share of its rank, so the task rank falls below ``T`` whenever ``fraction < 1`` needs
        it to (a uniform cap, :meth:`budget_ranks`, never lowers the smallest mode first).
        """
        budget = fraction * math.prod(shape)
        full = cls.useful_ranks(shape, what)
        steps = 1 << 20  # alpha = a / steps, exact: ceil(alpha R_n) then keeps TT's chain bounds

        def ranks_at(a: int) -> tuple[int, ...]:
            values = tuple(max(1, -(-a * r // steps)) for r in full)
            return cls.resolve_ranks(shape, Ranks(*values), what)

        if cls.count(shape, ranks_at(steps)) <= budget:
            return ranks_at(steps)
        if cls.count(shape, ranks_at(0)) > budget:
            smallest = cls.count(shape, ranks_at(0))
            raise ValueError(
                f"{what}: ProportionalBudget({fraction}) allows {budget:.0f} parameters for weight shape {shape}, "
                f"but rank 1 already needs {smallest}"
            )
        low, high = 0, steps  # fits at low, not at high; counts grow with alpha
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if cls.count(shape, ranks_at(middle)) <= budget else (low, middle)
        return ranks_at(low)
