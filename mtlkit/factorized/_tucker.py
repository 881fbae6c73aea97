"""``Tucker``: ``W = G ×_1 U_1 ×_2 ... ×_N U_N`` with the task factor ``U_N`` (DMTRL Eq. 3-4)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

from mtlkit.decomp import _singular_values, tucker_decompose
from mtlkit.factorization import (
    TaskBasis,
    _mode_product,
    check_tucker_ranks,
    tucker_compose,
    tucker_parameter_count,
    unfold,
)
from mtlkit.factorized._base import RANK_LETTERS, Factorization, check_shape
from mtlkit.factorized._rules import Ranks

__all__ = ["Tucker"]


class Tucker(Factorization):
    r"""``W[d_1..d_N] = Σ_{k_1..k_N} G[k_1..k_N] Π_n U_n[d_n, k_n]``; ``U_N`` (``T × K_N``) is per task.

    Factors: ``core`` ``G`` (``K_1 × ... × K_N``) and ``U0 … U{N-1}`` (``D_n × K_n``). Ranks: one
    per axis, ``1 ≤ K_n ≤ D_n``. Decomposition: truncated HOSVD (a scalar ε split ``ε/√N`` per
    mode, so the total Frobenius bound holds).

    >>> import torch
    >>> from mtlkit.factorized import Ranks
    >>> w = Tucker.random((8, 4, 3), Ranks(4, 2, 2))
    >>> w.ranks, w.factor_names
    ((4, 2, 2), ('core', 'U0', 'U1', 'U2'))
    """

    core: nn.Parameter

    def __init__(self, shape: Sequence[int], core: Tensor, *matrices: Tensor) -> None:
        super().__init__(shape, {"core": core, **{f"U{n}": m for n, m in enumerate(matrices)}})

    def matrices(self) -> list[Tensor]:
        return self.factors()[1:]

    @property
    def ranks(self) -> tuple[int, ...]:
        return tuple(int(k) for k in self.core.shape)

    def compose(self) -> Tensor:
        return tucker_compose(self.core, self.matrices())

    def network(self, modes: str) -> tuple[list[str], list[Tensor]]:
        bonds = RANK_LETTERS[: len(modes)]
        return [bonds, *(m + k for m, k in zip(modes, bonds, strict=True))], self.factors()

    def task_factor(self) -> Tensor:
        return self.task_parameter().T

    def task_parameter(self) -> nn.Parameter:
        parameter: nn.Parameter = getattr(self, f"U{len(self.shape) - 1}")
        return parameter

    def task_basis(self) -> TaskBasis:
        matrices = self.matrices()
        basis: Tensor = self.core
        # Multiply the modes that grow the tensor least first (same result, smaller intermediates).
        for mode in sorted(range(len(self.shape) - 1), key=lambda m: matrices[m].shape[0] / matrices[m].shape[1]):
            basis = _mode_product(basis, matrices[mode], mode)
        return TaskBasis(basis.contiguous(), matrices[-1])

    @classmethod
    def resolve_ranks(cls, shape: tuple[int, ...], rule: Ranks, what: str) -> tuple[int, ...]:
        shape = check_shape(shape, what)
        if rule.cap is not None:
            return tuple(min(rule.cap, d) for d in shape)
        return check_tucker_ranks(shape, rule.values, what)

    @classmethod
    def useful_ranks(cls, shape: tuple[int, ...], what: str) -> tuple[int, ...]:
        # The mode-n flattening is D_n × Π_{m≠n} D_m: its rank, not D_n, bounds what K_n can use.
        shape = check_shape(shape, what)
        total = math.prod(shape)
        return tuple(min(d, total // d) for d in shape)

    @classmethod
    def count(cls, shape: Sequence[int], ranks: Sequence[int]) -> int:
        return tucker_parameter_count(shape, ranks)

    @classmethod
    def decompose_fixed(cls, weights: Tensor, ranks: tuple[int, ...]) -> Tucker:
        return cls(weights.shape, *tucker_decompose(weights, ranks=ranks))

    @classmethod
    def decompose_relative(cls, weights: Tensor, eps: float) -> Tucker:
        return cls(weights.shape, *tucker_decompose(weights, eps=eps))

    @classmethod
    def spectral_ranks(cls, weights: Tensor, eps: float, what: str) -> tuple[int, ...]:
        weights = weights.detach().double()
        ranks = []
        for mode in range(weights.dim()):
            values = _singular_values(unfold(weights, mode))
            ranks.append(max(1, int((values > eps * values[0]).sum())))
        return tuple(ranks)
