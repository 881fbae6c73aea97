"""``LAF``: last-axis flattening, ``W[..., t] = Σ_k L[..., k] S[k, t]`` (DMTRL Eq. 2)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from mtlkit.decomp import _singular_values, laf_decompose
from mtlkit.factorization import TaskBasis, check_laf_rank, laf_compose, laf_max_rank, laf_parameter_count, unfold
from mtlkit.factorized._base import Factorization, check_shape
from mtlkit.factorized._rules import Ranks

__all__ = ["LAF"]


class LAF(Factorization):
    r"""``W[..., t] = Σ_k L[..., k] S[k, t]``: the last-axis flattening ``W_(N)ᵀ = L_(N)ᵀ S`` at rank ``K``.

    Factors: ``L`` (shared, ``(D_1, ..., D_{N-1}, K)``) and ``S`` (task specific, ``(K, T)``).
    Rank: ``(K,)`` with ``1 ≤ K ≤ min(Π_{n<N} D_n, T)``. Decomposition: SVD of the ``Π D_n × T``
    flattening, singular values split as ``√σ`` between ``L`` and ``S``.

    >>> import torch
    >>> from mtlkit.factorized import RelativeError
    >>> w = LAF.from_tensor(torch.ones(4, 3, 5), RelativeError(0.1))
    >>> w.ranks, tuple(w.L.shape), tuple(w.S.shape)
    ((1,), (4, 3, 1), (1, 5))
    """

    L: nn.Parameter
    S: nn.Parameter

    def __init__(self, shape: Sequence[int], L: Tensor, S: Tensor) -> None:
        super().__init__(shape, {"L": L, "S": S})

    @property
    def ranks(self) -> tuple[int, ...]:
        return (int(self.S.shape[0]),)

    def compose(self) -> Tensor:
        return laf_compose(self.L, self.S)

    def network(self, modes: str) -> tuple[list[str], list[Tensor]]:
        return [modes[:-1] + "K", "K" + modes[-1]], [self.L, self.S]

    def task_factor(self) -> Tensor:
        return self.S

    def task_parameter(self) -> nn.Parameter:
        return self.S

    def task_basis(self) -> TaskBasis:
        return TaskBasis(self.L.contiguous(), self.S.T)

    @classmethod
    def resolve_ranks(cls, shape: tuple[int, ...], rule: Ranks, what: str) -> tuple[int, ...]:
        shape = check_shape(shape, what)
        if rule.cap is None:
            raise ValueError(f"{what}: LAF takes one rank K, got {rule.values} for weight shape {shape}")
        return (min(rule.cap, laf_max_rank(shape)),)

    @classmethod
    def count(cls, shape: Sequence[int], ranks: Sequence[int]) -> int:
        (rank,) = ranks
        return laf_parameter_count(shape, rank)

    @classmethod
    def decompose_fixed(cls, weights: Tensor, ranks: tuple[int, ...]) -> LAF:
        (rank,) = ranks
        check_laf_rank(tuple(weights.shape), rank)
        return cls(weights.shape, *laf_decompose(weights, rank=rank))

    @classmethod
    def decompose_relative(cls, weights: Tensor, eps: float) -> LAF:
        return cls(weights.shape, *laf_decompose(weights, eps=eps))

    @classmethod
    def spectral_ranks(cls, weights: Tensor, eps: float, what: str) -> tuple[int, ...]:
        values = _singular_values(unfold(weights.detach().double(), weights.dim() - 1))
        return (max(1, int((values > eps * values[0]).sum())),)
