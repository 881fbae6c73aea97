"""``CP``: canonical polyadic (CANDECOMP/PARAFAC), ``W[d_1..d_N] = Σ_r Π_n U_n[d_n, r]``.

Not one of DMTRL's three methods: it is the factorisation added to prove that a new method needs
only its own file. The task factor is ``U_N`` (``T × R``); every other ``U_n`` is shared.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mtlkit.decomp import relative_error
from mtlkit.factorization import TaskBasis, unfold
from mtlkit.factorized._base import Factorization, check_shape
from mtlkit.factorized._rules import Ranks

__all__ = ["CP"]

_ALS_SWEEPS = 200
_ALS_TOLERANCE = 1e-10
# Below this relative error the Gram identity's residual is cancellation noise (‖W‖² − 2⟨·⟩ + ‖Ŵ‖²
# in float64 resolves ≈ 1e-16 ‖W‖², so errors under ≈ 1e-8 read as noise or 0), so it is composed.
_ALS_DIRECT_BELOW = 1e-4


def _khatri_rao(matrices: Sequence[Tensor]) -> Tensor:
    """Column-wise Kronecker product, rows in C order of the matrices (matches :func:`unfold`)."""
    result = matrices[0]
    for matrix in matrices[1:]:
        result = (result[:, None, :] * matrix[None, :, :]).reshape(-1, result.shape[1])
    return result


def _als(weights: Tensor, rank: int) -> list[Tensor]:
    """CP by alternating least squares in float64 (deterministic: SVD start, seeded completion).

    Each sweep costs the ``N`` products ``W_(n) · (⊙_{m≠n} U_m)`` of the unfoldings (made once) and
    no composed tensor: after the last mode's update, with ``G`` that mode's Gram Hadamard product
    and ``M`` its product, ``‖W − Ŵ‖² = ‖W‖² − 2⟨U_N, M⟩ + ⟨G, U_Nᵀ U_N⟩``; near an exact fit
    (relative error below ``_ALS_DIRECT_BELOW``) that identity cancels, so the error is measured on
    the composed tensor there.
    """
    dense = weights.double()
    unfolded = [unfold(dense, mode) for mode in range(dense.dim())]
    squared_norm = float(dense.square().sum())
    generator = torch.Generator().manual_seed(0)
    factors = []
    for flattened in unfolded:
        u, _, _ = torch.linalg.svd(flattened, full_matrices=False)
        start = u[:, :rank]
        if start.shape[1] < rank:
            extra = torch.randn(flattened.shape[0], rank - start.shape[1], generator=generator, dtype=torch.float64)
            start = torch.cat([start, extra], dim=1)
        factors.append(start)
    previous = math.inf
    for _ in range(_ALS_SWEEPS):
        for mode in range(dense.dim()):
            others = [factors[m] for m in range(dense.dim()) if m != mode]
            gram = torch.ones(rank, rank, dtype=torch.float64)
            for other in others:
                gram = gram * (other.T @ other)
            product = unfolded[mode] @ _khatri_rao(others)
            factors[mode] = torch.linalg.lstsq(gram, product.T).solution.T  # gram is symmetric
        last = factors[-1]
        residual = squared_norm - 2 * float((last * product).sum()) + float((gram * (last.T @ last)).sum())
        error = math.sqrt(max(residual, 0.0) / squared_norm) if squared_norm > 0 else 0.0
        if squared_norm > 0 and error < _ALS_DIRECT_BELOW:
            error = relative_error(dense, _compose(factors))
        if abs(previous - error) < _ALS_TOLERANCE:
            break
        previous = error
    return _balanced(factors, weights.dtype)


def _exact(weights: Tensor) -> list[Tensor]:
    """An exact CP of rank ``Π D_n / max D_n``: one component per fibre along the longest mode.

    Component ``r`` is the fibre ``W[j_1, ..., :, ..., j_N]`` (the longest mode left free) times
    one-hot vectors at the indices ``j`` of the other modes, in C order.
    """
    longest = max(range(weights.dim()), key=lambda m: weights.shape[m])
    others = [m for m in range(weights.dim()) if m != longest]
    fibres = unfold(weights, longest)  # (D_longest, Π others) in C order of the other modes
    factors: list[Tensor] = [torch.empty(0)] * weights.dim()
    factors[longest] = fibres.clone()
    rank = fibres.shape[1]
    index = torch.arange(rank)
    for position, mode in enumerate(others):
        stride = math.prod(weights.shape[m] for m in others[position + 1 :])
        which = (index // stride) % weights.shape[mode]
        factors[mode] = torch.nn.functional.one_hot(which, weights.shape[mode]).T.to(weights.dtype)
    return _balanced(factors, weights.dtype)


def _balanced(factors: Sequence[Tensor], dtype: torch.dtype) -> list[Tensor]:
    """Spread each component's norm evenly over the modes, so no factor starts at an odd scale."""
    norms = torch.stack([f.norm(dim=0) for f in factors]).clamp_min(1e-300)
    scale = norms.prod(dim=0) ** (1 / len(factors))
    return [(f / n * scale).to(dtype).contiguous() for f, n in zip(factors, norms, strict=True)]


def _compose(factors: Sequence[Tensor]) -> Tensor:
    shape = [f.shape[0] for f in factors]
    return (_khatri_rao(factors[:-1]) @ factors[-1].T).reshape(shape)


class CP(Factorization):
    r"""``W[d_1..d_N] = Σ_{r<R} U_1[d_1, r] ⋯ U_N[d_N, r]`` with the task factor ``U_N`` (``T × R``).

    Factors ``U0 … U{N-1}`` (``D_n × R``); rank ``(R,)``, ``1 ≤ R ≤ Π D_n / max D_n`` (every
    tensor has a CP decomposition of that rank). Decomposition: ALS from an SVD start;
    :class:`~mtlkit.factorized.RelativeError` searches ``R`` (doubling, then bisection) for the
    smallest rank ALS brings within ε (at the bound the fibre-wise exact CP is used, so the bound
    always holds). The authors' spectral reading of ε has no CP counterpart.

    >>> import torch
    >>> from mtlkit.factorized import Ranks
    >>> a, b, c = torch.randn(6, 1), torch.randn(5, 1), torch.randn(4, 1)
    >>> w = CP.from_tensor((a[:, None, None] * b[None, :, None] * c[None, None, :]).squeeze(-1), Ranks(1))
    >>> w.ranks, w.factor_names
    ((1,), ('U0', 'U1', 'U2'))
    """

    def __init__(self, shape: Sequence[int], *matrices: Tensor) -> None:
        super().__init__(shape, {f"U{n}": m for n, m in enumerate(matrices)})

    @property
    def ranks(self) -> tuple[int, ...]:
        return (int(self.task_parameter().shape[1]),)

    def compose(self) -> Tensor:
        return _compose(self.factors())

    def network(self, modes: str) -> tuple[list[str], list[Tensor]]:
        return [mode + "R" for mode in modes], self.factors()

    def task_factor(self) -> Tensor:
        return self.factors()[-1].T

    def task_parameter(self) -> nn.Parameter:
        parameter: nn.Parameter = getattr(self, f"U{len(self.shape) - 1}")
        return parameter

    def task_basis(self) -> TaskBasis:
        matrices = self.factors()
        basis = _khatri_rao(matrices[:-1]).reshape(*self.shape[:-1], -1)
        return TaskBasis(basis.contiguous(), matrices[-1])

    @classmethod
    def random_at_ranks(
        cls,
        shape: tuple[int, ...],
        ranks: tuple[int, ...],
        fan_in: int,
        generator: torch.Generator | None,
        dtype: torch.dtype | None,
    ) -> CP:
        """Where the rule fixes the rank from the shape (:class:`~mtlkit.factorized.Ranks`, the
        budgets), :meth:`Factorization.random` draws Gaussian factors scaled so ``‖Ŵ‖_F`` is the dense
        ``U(±1/√fan_in)`` draw's expected norm ``√(Π D_n / (3 fan_in))``, instead of ALS on that draw
        (which has no CP structure to converge to, so ALS runs every sweep: over a minute for a
        512 × 2048 × 10 weight). Error rules need the draw itself and decompose it.

        >>> w = CP.random((512, 2048, 10), Ranks(4), generator=torch.Generator().manual_seed(0))
        >>> w.ranks, round(float(w.compose().detach().double().norm()) / (512 * 2048 * 10 / (3 * 512)) ** 0.5, 3)
        ((4,), 1.0)
        """
        (rank,) = ranks
        factors = [torch.randn(d, rank, generator=generator, dtype=torch.float64) for d in shape]
        gram = torch.ones(rank, rank, dtype=torch.float64)
        for factor in factors:
            gram = gram * (factor.T @ factor)
        composed = math.sqrt(max(float(gram.sum()), 0.0))  # ‖Ŵ‖_F without composing Ŵ
        if composed > 0:
            factors[-1] = factors[-1] * (math.sqrt(math.prod(shape) / (3 * fan_in)) / composed)
        return cls(shape, *_balanced(factors, dtype or torch.get_default_dtype()))

    @staticmethod
    def max_rank(shape: Sequence[int]) -> int:
        """``Π D_n / max D_n``: a rank at which every tensor of ``shape`` is exact."""
        return math.prod(shape) // max(shape)

    @classmethod
    def resolve_ranks(cls, shape: tuple[int, ...], rule: Ranks, what: str) -> tuple[int, ...]:
        shape = check_shape(shape, what)
        if rule.cap is None:
            raise ValueError(f"{what}: CP takes one rank R, got {rule.values} for weight shape {shape}")
        return (min(rule.cap, cls.max_rank(shape)),)

    @classmethod
    def count(cls, shape: Sequence[int], ranks: Sequence[int]) -> int:
        (rank,) = ranks
        return rank * sum(shape)

    @classmethod
    def decompose_fixed(cls, weights: Tensor, ranks: tuple[int, ...]) -> CP:
        (rank,) = ranks
        if rank >= cls.max_rank(weights.shape):
            return cls(weights.shape, *_exact(weights))
        return cls(weights.shape, *_als(weights, rank))

    @classmethod
    def decompose_relative(cls, weights: Tensor, eps: float) -> CP:
        bound = cls.max_rank(weights.shape)

        def fit(rank: int) -> tuple[list[Tensor], bool]:
            factors = _exact(weights) if rank >= bound else _als(weights, rank)
            return factors, relative_error(weights, _compose(factors)) <= eps + 1e-9

        low, rank = 0, 1  # invariant: ALS misses ε at `low` (0 = nothing tried)
        factors, ok = fit(rank)
        while not ok and rank < bound:
            low, rank = rank, min(2 * rank, bound)
            factors, ok = fit(rank)
        while rank - low > 1:  # bisect the last doubling for the smallest rank that fits
            middle = (low + rank) // 2
            candidate, fits = fit(middle)
            if fits:
                rank, factors = middle, candidate
            else:
                low = middle
        return cls(weights.shape, *factors)

    @classmethod
    def spectral_ranks(cls, weights: Tensor, eps: float, what: str) -> tuple[int, ...]:
        raise ValueError(
            f"{what}: SpectralError({eps}) for weight shape {tuple(weights.shape)}: the DMTRL authors' "
            "per-flattening rule has no CP reading (use RelativeError, Ranks or ParameterBudget)"
        )
