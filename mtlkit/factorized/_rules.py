"""Rank rules: how a factorisation picks its ranks, as values validated once, at construction.

A rule is applied to one stacked weight ``W`` (task axis last) by
:meth:`~mtlkit.factorized.Factorization.from_tensor` or to a shape by
:meth:`~mtlkit.factorized.Factorization.random`:

* :class:`Ranks` — the ranks themselves (an ``int`` caps every mode);
* :class:`RelativeError` — the smallest ranks with ``‖W − Ŵ‖_F ≤ ε‖W‖_F`` (DMTRL Sec. 4, "max
  reconstruction error 10 %", read as a Frobenius bound on the whole tensor);
* :class:`SpectralError` — the authors' released code's reading of the same ε: per flattening,
  keep ``σ_i > ε σ_1``;
* :class:`ParameterBudget` — the largest uniform rank cap whose factors hold at most
  ``fraction · |W|`` parameters;
* :class:`ProportionalBudget` — the same budget met by giving up the same share of every mode's
  rank, the task mode included (a cap leaves a small task mode at full rank ``T``).

Each rule is polymorphic in the factorisation: ``rule.decompose(cls, W, what)`` asks the class for
the matching decomposition, so no code anywhere branches on the kind of rule.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import Tensor

if TYPE_CHECKING:
    from mtlkit.factorized._base import Factorization

__all__ = ["RankRule", "Ranks", "RelativeError", "SpectralError", "ParameterBudget", "ProportionalBudget"]


def _check_fraction(value: object, name: str, owner: str, *, closed_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TypeError(f"{owner}: {name} must be a finite number, got {value!r}")
    low_ok = value >= 0 if closed_zero else value > 0
    high_ok = value < 1 if closed_zero else value <= 1
    if not (low_ok and high_ok):
        interval = "[0, 1)" if closed_zero else "(0, 1]"
        raise ValueError(f"{owner}: {name} must be in {interval}, got {value!r}")
    return float(value)


class RankRule(ABC):
    """How ranks are chosen for one stacked weight; see the module docstring for the variants."""

    @abstractmethod
    def decompose(self, factorization: type[Factorization], weights: Tensor, what: str) -> Factorization:
        """``factorization`` fitted to ``weights`` under this rule (``what`` names the layer in errors)."""

    def shape_ranks(self, factorization: type[Factorization], shape: tuple[int, ...], what: str) -> object | None:
        """Ranks fixed by the shape alone, or ``None`` when the weights decide (error rules)."""
        return None


@dataclass(frozen=True)
class Ranks(RankRule):
    """Fixed ranks: one ``int`` (a cap on every mode) or one value per rank of the factorisation.

    >>> Ranks(4), Ranks(4, 2, 2).values
    (Ranks(values=(4,)), (4, 2, 2))
    >>> Ranks(0)
    Traceback (most recent call last):
    ...
    ValueError: Ranks: every rank must be a positive int, got (0,)
    """

    values: tuple[int, ...]

    def __init__(self, *values: int | Sequence[int]) -> None:
        flat: tuple[object, ...] = (
            tuple(values[0]) if len(values) == 1 and isinstance(values[0], Sequence) else tuple(values)
        )
        if not flat:
            raise ValueError("Ranks: need at least one rank")
        if any(isinstance(k, bool) or not isinstance(k, int) for k in flat):
            raise TypeError(f"Ranks: every rank must be a positive int, got {flat!r}")
        if any(k < 1 for k in flat):  # type: ignore[operator]
            raise ValueError(f"Ranks: every rank must be a positive int, got {flat!r}")
        object.__setattr__(self, "values", flat)

    @property
    def cap(self) -> int | None:
        """The single cap when one ``int`` was given, else ``None``."""
        return self.values[0] if len(self.values) == 1 else None

    def decompose(self, factorization: type[Factorization], weights: Tensor, what: str) -> Factorization:
        ranks = factorization.resolve_ranks(tuple(weights.shape), self, what)
        return factorization.decompose_fixed(weights, ranks)

    def shape_ranks(self, factorization: type[Factorization], shape: tuple[int, ...], what: str) -> object:
        return factorization.resolve_ranks(shape, self, what)


@dataclass(frozen=True)
class RelativeError(RankRule):
    """Smallest ranks with ``‖W − Ŵ‖_F / ‖W‖_F ≤ eps`` (a bound on the whole tensor), ``0 ≤ eps < 1``.

    >>> RelativeError(0.1)
    RelativeError(eps=0.1)
    >>> RelativeError(1.0)
    Traceback (most recent call last):
    ...
    ValueError: RelativeError: eps must be in [0, 1), got 1.0
    """

    eps: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "eps", _check_fraction(self.eps, "eps", "RelativeError", closed_zero=True))

    def decompose(self, factorization: type[Factorization], weights: Tensor, what: str) -> Factorization:
        return factorization.decompose_relative(weights, self.eps)


@dataclass(frozen=True)
class SpectralError(RankRule):
    """The authors' code's ε: per flattening keep ``σ_i > eps · σ_1`` (at least one), ``0 ≤ eps < 1``.

    >>> SpectralError(0.1)
    SpectralError(eps=0.1)
    """

    eps: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "eps", _check_fraction(self.eps, "eps", "SpectralError", closed_zero=True))

    def decompose(self, factorization: type[Factorization], weights: Tensor, what: str) -> Factorization:
        return factorization.decompose_fixed(weights, factorization.spectral_ranks(weights, self.eps, what))


@dataclass(frozen=True)
class ParameterBudget(RankRule):
    """Largest ranks whose factors hold ``≤ fraction · |W|`` parameters, ``0 < fraction ≤ 1``.

    >>> ParameterBudget(0.25)
    ParameterBudget(fraction=0.25)
    """

    fraction: float

    def __post_init__(self) -> None:
        value = _check_fraction(self.fraction, "fraction", "ParameterBudget", closed_zero=False)
        object.__setattr__(self, "fraction", value)

    def decompose(self, factorization: type[Factorization], weights: Tensor, what: str) -> Factorization:
        shape = tuple(weights.shape)
        return factorization.decompose_fixed(weights, factorization.budget_ranks(shape, self.fraction, what))

    def shape_ranks(self, factorization: type[Factorization], shape: tuple[int, ...], what: str) -> object:
        return factorization.budget_ranks(shape, self.fraction, what)


@dataclass(frozen=True)
class ProportionalBudget(RankRule):
    r"""Ranks :math:`\lceil \alpha R_n \rceil` (``R_n``: the useful full ranks) holding ``≤ fraction · |W|``.

    The largest :math:`\alpha \le 1` is taken, so every mode keeps the same share of its rank:
    with ``T = 10`` tasks and ``fraction = 0.4`` the task rank is 6 below, where
    :class:`ParameterBudget`'s uniform cap would keep all 10 (DMTRL App. B: the factorised nets
    hold 0.38–0.50 × the STL parameters, which needs task ranks below ``T``).

    >>> from mtlkit.factorized import Tucker
    >>> Tucker.random((64, 32, 10), ProportionalBudget(0.4)).ranks
    (39, 20, 6)
    >>> Tucker.random((64, 32, 10), ParameterBudget(0.4)).ranks
    (24, 24, 10)
    """

    fraction: float

    def __post_init__(self) -> None:
        value = _check_fraction(self.fraction, "fraction", "ProportionalBudget", closed_zero=False)
        object.__setattr__(self, "fraction", value)

    def decompose(self, factorization: type[Factorization], weights: Tensor, what: str) -> Factorization:
        shape = tuple(weights.shape)
        return factorization.decompose_fixed(weights, factorization.proportional_ranks(shape, self.fraction, what))

    def shape_ranks(self, factorization: type[Factorization], shape: tuple[int, ...], what: str) -> object:
        return factorization.proportional_ranks(shape, self.fraction, what)
