"""``TT``: tensor train, ``W[d_1..d_N] = G_1[:, d_1, :] ⋯ G_N[:, d_N, :]`` (DMTRL Eq. 6-8)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mtlkit.decomp import tt_decompose
from mtlkit.factorization import (
    TaskBasis,
    _check_tt_cores,
    _tt_chain,
    check_tt_ranks,
    tt_compose,
    tt_feasible_ranks,
    tt_parameter_count,
)
from mtlkit.factorized._base import RANK_LETTERS, Factorization, check_shape
from mtlkit.factorized._rules import Ranks

__all__ = ["TT"]


class TT(Factorization):
    r"""Cores ``G_n`` of shape ``(K_{n-1}, D_n, K_n)``, ``K_0 = K_N = 1``; the last core is per task.

    Ranks: the ``N-1`` inner ranks, ``K_n ≤ min(Π_{m≤n} D_m, Π_{m>n} D_m)`` and chain consistent
    (``K_n ≤ K_{n-1} D_n``, ``K_n ≤ D_{n+1} K_{n+1}``). Decomposition: TT-SVD (Oseledets 2011) with
    ``ε/√(N-1)`` per unfolding. An ``int`` cap gives the largest chain-consistent ranks ``≤`` it.

    >>> from mtlkit.factorized import Ranks
    >>> w = TT.random((8, 4, 3), Ranks(2))
    >>> w.ranks, [tuple(c.shape) for c in w.factors()]
    ((2, 2), [(1, 8, 2), (2, 4, 2), (2, 3, 1)])
    """

    def __init__(self, shape: Sequence[int], *cores: Tensor) -> None:
        super().__init__(shape, {f"G{n}": core for n, core in enumerate(cores)})

    @property
    def ranks(self) -> tuple[int, ...]:
        return tuple(int(core.shape[2]) for core in self.factors()[:-1])

    def compose(self) -> Tensor:
        return tt_compose(self.factors())

    def network(self, modes: str) -> tuple[list[str], list[Tensor]]:
        cores = self.factors()
        bonds = RANK_LETTERS[: len(cores) - 1]
        subscripts = [
            (bonds[n - 1] if n else "") + modes[n] + (bonds[n] if n < len(bonds) else "") for n in range(len(cores))
        ]
        # The boundary ranks are 1: drop those axes instead of carrying size-1 indices through the plan.
        tensors = [cores[0][0], *cores[1:-1], cores[-1][..., 0]] if len(cores) > 1 else [cores[0][0, :, 0]]
        return subscripts, tensors

    def task_factor(self) -> Tensor:
        return self.factors()[-1][:, :, 0]

    def task_parameter(self) -> nn.Parameter:
        parameter: nn.Parameter = getattr(self, f"G{len(self.shape) - 1}")
        return parameter

    def task_basis(self) -> TaskBasis:
        cores = self.factors()
        _check_tt_cores(cores)
        basis = _tt_chain(cores[:-1])
        return TaskBasis(basis.reshape(*(c.shape[1] for c in cores[:-1]), -1), cores[-1][:, :, 0].T)

    @classmethod
    def resolve_ranks(cls, shape: tuple[int, ...], rule: Ranks, what: str) -> tuple[int, ...]:
        shape = check_shape(shape, what)
        if rule.cap is not None:  # one value is a cap, as an int rank always was
            return tt_feasible_ranks(shape, rule.cap)
        return check_tt_ranks(shape, rule.values, what)

    @classmethod
    def count(cls, shape: Sequence[int], ranks: Sequence[int]) -> int:
        return tt_parameter_count(shape, ranks)

    @classmethod
    def decompose_fixed(cls, weights: Tensor, ranks: tuple[int, ...]) -> TT:
        return cls(weights.shape, *tt_decompose(weights, ranks=ranks))

    @classmethod
    def decompose_relative(cls, weights: Tensor, eps: float) -> TT:
        return cls(weights.shape, *tt_decompose(weights, eps=eps))

    @classmethod
    def spectral_ranks(cls, weights: Tensor, eps: float, what: str) -> tuple[int, ...]:
        weights = weights.detach().double()
        ranks, rank = [], 1
        remainder = weights
        for size in weights.shape[:-1]:
            _, values, right = torch.linalg.svd(remainder.reshape(rank * size, -1), full_matrices=False)
            rank = max(1, int((values > eps * values[0]).sum()))
            ranks.append(rank)
            remainder = values[:rank, None] * right[:rank]
        # A left-to-right sweep can keep more rank than the cores to its right can use (e.g. when
        # the task core has rank 1): trim right-to-left to the largest chain-consistent ranks.
        bound = 1
        for index in range(len(ranks) - 1, -1, -1):
            bound = min(ranks[index], weights.shape[index + 1] * bound)
            ranks[index] = bound
        return tuple(ranks)
