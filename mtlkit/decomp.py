"""ε-truncated decompositions that initialise DMTRL factors (LAF-SVD, truncated HOSVD, TT-SVD).

DMTRL (Yang & Hospedales 2017, Sec. 4 "Implementation details") trains ``T`` single-task networks,
stacks each layer's weights into a task-last tensor ``W`` of shape ``(D_1, ..., D_{N-1}, T)`` and
decomposes it with a *maximum relative reconstruction error* ``ε`` (10 % in the paper), which picks
every rank automatically. The inverse maps are :mod:`mtlkit.factorization`; the factor lists
returned here are exactly what :func:`mtlkit.factorization.compose` consumes.

Error definition (tested against the definition, TensorLy has no such rule)::

    relative_error(W, Ŵ) = ‖W − Ŵ‖_F / ‖W‖_F ≤ ε

* **LAF**: SVD of the last-axis flattening (a ``Π D_n × T`` matrix); the kept rank is the smallest
  ``K`` with ``√(Σ_{i>K} σ_i²) ≤ ε ‖W‖``. The singular values are split evenly (``√σ``) between the
  shared ``L`` and the task factor ``S`` so both start at comparable scales for SGD.
* **Tucker**: truncated HOSVD (De Lathauwer et al. 2000): ``U_n`` = leading left singular vectors
  of the mode-``n`` flattening of ``W`` with a per-mode tolerance ``ε_n``, core ``G = W ×_n U_nᵀ``.
  Since ``‖W − Ŵ‖² ≤ Σ_n (mode-n tail)²``, a scalar ``ε`` is split as ``ε_n = ε/√N`` and the total
  bound ``ε`` holds; a sequence gives one ``ε_n`` per mode (total bound ``√Σ ε_n²``).
* **TT**: TT-SVD (Oseledets 2011, Thm 2.2): ranks are chosen per unfolding
  ``W_<n> = reshape(W, (Π_{m≤n} D_m, -1))`` with tolerance ``ε_n`` (scalar ``ε`` → ``ε/√(N-1)``),
  then the usual left-to-right sweep runs with those ranks; ``‖W − Ŵ‖² ≤ Σ_n (unfolding-n tail)²``.

Because every rank is read off singular values of the *original* tensor, ranks never grow when ``ε``
grows. All SVDs are economy SVDs (``full_matrices=False``) computed in float64, so memory stays
``O(|W|)`` even for the wide unfoldings of a conv kernel; factors come back in ``W``'s dtype.

**Axis order.** mtlkit stacks weights in the paper's TensorFlow order, task axis last: Linear
``(in, out, T)``, Conv2d ``(kh, kw, in, out, T)``. The order matters for TT (a chain) and for
which mode gets which Tucker rank, and matches the authors' released code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from mtlkit.factorization import (
    FACTORIZATION_METHODS,
    FactorizationMethod,
    _deprecated,
    check_laf_rank,
    check_tt_ranks,
    check_tucker_ranks,
    compose,
    tt_feasible_ranks,
    unfold,
)

__all__ = [
    "relative_error",
    "truncation_rank",
    "laf_decompose",
    "tucker_decompose",
    "tt_decompose",
    "decompose",
    "random_dense_weights",
    "random_factors",
    "spectral_eps_ranks",
]

Ranks = int | Sequence[int]


def relative_error(reference: Tensor, approximation: Tensor) -> float:
    """``‖reference − approximation‖_F / ‖reference‖_F`` (0 for an all-zero reference).

    >>> relative_error(torch.ones(4), torch.zeros(4))
    1.0
    """
    # A number, not part of any graph: callers pass live parameters.
    reference, approximation = reference.detach(), approximation.detach()
    norm = torch.linalg.vector_norm(reference.double())
    if norm == 0:
        return float(torch.linalg.vector_norm(approximation.double()))
    return float(torch.linalg.vector_norm((reference - approximation).double()) / norm)


def truncation_rank(singular_values: Tensor, eps: float, total_norm: float | None = None) -> int:
    """Smallest ``K ≥ 1`` with ``√(Σ_{i≥K} σ_i²) ≤ ε · total_norm`` (σ sorted descending).

    ``total_norm`` defaults to ``‖σ‖₂`` (the matrix's Frobenius norm): a relative tolerance.

    >>> truncation_rank(torch.tensor([3.0, 4.0, 0.1]), 0.1)
    2
    """
    if not eps >= 0:
        raise ValueError(f"eps must be ≥ 0, got {eps}")
    squares = singular_values.double() ** 2
    norm = math.sqrt(float(squares.sum())) if total_norm is None else total_norm
    # tails[k] = energy left out when keeping the first k singular values.
    tails = torch.flip(torch.cumsum(torch.flip(squares, [0]), 0), [0]).sqrt()
    tails = torch.cat([tails, tails.new_zeros(1)])
    allowed = (eps * norm) * (1 + 1e-12)  # guard the ε = exact-tail case against round-off
    for rank in range(1, len(tails)):
        if tails[rank] <= allowed:
            return rank
    return max(len(singular_values), 1)


def _per_mode_eps(eps: float | Sequence[float], count: int, what: str) -> list[float]:
    if isinstance(eps, (int, float)):
        return [float(eps) / math.sqrt(count)] * count
    eps = [float(e) for e in eps]
    if len(eps) != count:
        raise ValueError(f"{what}: need one eps per mode ({count}), got {len(eps)}: {eps}")
    return eps


def _exactly_one(eps: object, ranks: object, what: str) -> None:
    if (eps is None) == (ranks is None):
        raise ValueError(f"{what}: pass exactly one of eps= (error-driven ranks) or ranks= (fixed)")


def _gram_of_smaller_side(matrix: Tensor) -> Tensor:
    return matrix @ matrix.T if matrix.shape[0] <= matrix.shape[1] else matrix.T @ matrix


def _singular_values(matrix: Tensor) -> Tensor:
    """Descending singular values via the Gram matrix of the smaller side (float64)."""
    eigenvalues = torch.linalg.eigvalsh(_gram_of_smaller_side(matrix.double()))
    singular_values: Tensor = eigenvalues.flip(0).clamp_min(0).sqrt()
    return singular_values


def _left_singular(matrix: Tensor) -> tuple[Tensor, Tensor]:
    """Left singular vectors ``U`` (``m × min(m, n)``) and descending singular values, in float64.

    LAPACK's SVD of a wide ``m × n`` unfolding (e.g. ``1024 × 5120``) takes seconds and returns an
    ``m × n`` ``Vh`` nobody needs; the ``m × m`` Gram matrix's eigenvectors are the same ``U`` at a
    fraction of the time and memory. Thin-and-tall matrices take the (cheap) economy SVD.
    """
    matrix = matrix.double()
    if matrix.shape[0] <= matrix.shape[1]:
        eigenvalues, vectors = torch.linalg.eigh(matrix @ matrix.T)
        return vectors.flip(1), eigenvalues.flip(0).clamp_min(0).sqrt()
    u, s, _ = torch.linalg.svd(matrix, full_matrices=False)
    return u, s


def _complete_orthonormal(basis: Tensor, columns: int) -> Tensor:
    """Extend an orthonormal ``D × r`` basis to ``columns`` orthonormal columns (``≤ D``)."""
    if basis.shape[1] >= columns:
        return basis[:, :columns]
    # Fixed seed: the completion only spans directions the data does not use; determinism keeps
    # from_dense reproducible.
    generator = torch.Generator().manual_seed(0)
    extra = torch.randn(basis.shape[0], columns - basis.shape[1], generator=generator, dtype=basis.dtype)
    q, _ = torch.linalg.qr(torch.cat([basis, extra], dim=1))
    return torch.cat([basis, q[:, basis.shape[1] : columns]], dim=1)


def _as_parameter_data(factor: Tensor, weights: Tensor) -> Tensor:
    """``factor`` in the weights' dtype and contiguous: the SVDs hand back transposed views, and a
    strided factor becomes a strided parameter that costs a copy of itself and of its gradient in
    every training step."""
    return factor.to(weights.dtype).contiguous()


def laf_decompose(weights: Tensor, *, eps: float | None = None, rank: int | None = None) -> list[Tensor]:
    """``[L, S]`` with ``W[..., t] ≈ Σ_k L[..., k] S[k, t]`` by SVD of the last-axis flattening.

    Args:
        weights: task-last tensor ``(D_1, ..., D_{N-1}, T)``.
        eps: maximum relative error; the rank is the smallest meeting it.
        rank: fixed rank ``K`` instead of ``eps``.

    >>> L, S = laf_decompose(torch.ones(4, 3, 5), eps=0.1)
    >>> L.shape, S.shape
    (torch.Size([4, 3, 1]), torch.Size([1, 5]))
    """
    _exactly_one(eps, rank, "LAF")
    shape = tuple(weights.shape)
    flat = weights.double().reshape(-1, shape[-1])  # (Π D_n, T): the transposed mode-N flattening
    u, s = _left_singular(flat)
    kept = truncation_rank(s, eps) if eps is not None else check_laf_rank(shape, rank)  # type: ignore[arg-type]
    basis = u[:, :kept]
    task_factor = basis.T @ flat  # = Σ_K V_Kᵀ, the optimal coefficients for this basis
    # Balance the scale: L = U √σ, S = Vᵀ √σ (a zero σ leaves its column of U unscaled).
    root = s[:kept].sqrt()
    scale = torch.where(root > 0, root, torch.ones_like(root))
    shared = (basis * scale).reshape(*shape[:-1], kept)
    task_factor = task_factor / scale[:, None]
    return [_as_parameter_data(shared, weights), _as_parameter_data(task_factor, weights)]


def tucker_decompose(
    weights: Tensor, *, eps: float | Sequence[float] | None = None, ranks: Ranks | None = None
) -> list[Tensor]:
    """``[G, U_1, ..., U_N]`` by truncated HOSVD; the last factor ``U_N`` (``T × K_N``) is per task.

    Args:
        weights: task-last tensor ``(D_1, ..., D_N = T)``.
        eps: total relative error (split ``ε/√N`` per mode) or one tolerance per mode.
        ranks: fixed ranks instead (``int`` → ``min(int, D_n)`` per mode); columns beyond the
            numerical rank are completed orthonormally so every requested rank is honoured.

    >>> G, *U = tucker_decompose(torch.ones(4, 3, 5), eps=0.1)
    >>> G.shape, [u.shape[1] for u in U]
    (torch.Size([1, 1, 1]), [1, 1, 1])
    """
    _exactly_one(eps, ranks, "Tucker")
    shape = tuple(weights.shape)
    if ranks is not None:
        wanted = [min(ranks, d) for d in shape] if isinstance(ranks, int) else list(ranks)
        wanted = list(check_tucker_ranks(shape, wanted))
    else:
        tolerances = _per_mode_eps(eps, len(shape), "Tucker")  # type: ignore[arg-type]
    total_norm = float(torch.linalg.vector_norm(weights.double()))
    factors = []
    for mode in range(len(shape)):
        u, s = _left_singular(unfold(weights, mode))
        kept = wanted[mode] if ranks is not None else truncation_rank(s, tolerances[mode], total_norm)
        factors.append(_complete_orthonormal(u, kept))
    core = weights.double()
    for mode, factor in enumerate(factors):
        core = torch.movedim(torch.tensordot(core, factor, dims=([mode], [0])), -1, mode)
    return [_as_parameter_data(f, weights) for f in (core, *factors)]


def _tt_eps_ranks(weights: Tensor, tolerances: list[float]) -> list[int]:
    """Per-unfolding ε-ranks, capped by ``K_{n-1} D_n`` (the rows TT-SVD will actually see)."""
    shape = tuple(weights.shape)
    total_norm = float(torch.linalg.vector_norm(weights.double()))
    ranks, previous = [], 1
    for n in range(len(shape) - 1):
        unfolding = weights.double().reshape(math.prod(shape[: n + 1]), -1)
        rank = truncation_rank(_singular_values(unfolding), tolerances[n], total_norm)
        ranks.append(previous := min(rank, previous * shape[n]))
    return ranks


def _trim_tt_ranks(cores: list[Tensor]) -> list[Tensor]:
    """Right-to-left sweep that exactly removes ranks ``K_{n-1} > D_n K_n`` (unreachable ones).

    Such a rank survives the left-to-right TT-SVD when an early unfolding needs many singular
    vectors but a later truncation kept few; the composed tensor is unchanged, only smaller.
    """
    cores = list(cores)
    for n in range(len(cores) - 1, 0, -1):
        rank_in, size, rank_out = cores[n].shape
        if rank_in <= size * rank_out:
            continue
        q, r = torch.linalg.qr(cores[n].reshape(rank_in, size * rank_out).T)  # Gᵀ = QR
        cores[n] = q.T.reshape(-1, size, rank_out)
        cores[n - 1] = torch.tensordot(cores[n - 1], r.T, dims=1)
    return cores


def tt_decompose(
    weights: Tensor, *, eps: float | Sequence[float] | None = None, ranks: Ranks | None = None
) -> list[Tensor]:
    """TT cores ``[G_1..G_N]`` (``G_n``: ``K_{n-1} × D_n × K_n``) by TT-SVD; ``G_N`` is per task.

    Args:
        weights: task-last tensor ``(D_1, ..., D_N = T)``.
        eps: total relative error (``ε/√(N-1)`` per unfolding) or one tolerance per unfolding.
        ranks: fixed inner ranks instead (``int`` → largest chain-consistent ranks ``≤ int``).

    >>> cores = tt_decompose(torch.ones(4, 3, 5), eps=0.1)
    >>> [tuple(c.shape) for c in cores]
    [(1, 4, 1), (1, 3, 1), (1, 5, 1)]
    """
    _exactly_one(eps, ranks, "TT")
    shape = tuple(weights.shape)
    if len(shape) < 2:
        raise ValueError(f"TT: weight shape {shape} needs ≥ 2 axes (…, T)")
    chosen: Sequence[int]
    if ranks is None:
        chosen = _tt_eps_ranks(weights, _per_mode_eps(eps, len(shape) - 1, "TT"))  # type: ignore[arg-type]
    elif isinstance(ranks, int):
        chosen = tt_feasible_ranks(shape, ranks)
    else:
        chosen = check_tt_ranks(shape, ranks)
    full = (1, *chosen, 1)
    cores = []
    remainder = weights.double()
    for n in range(len(shape) - 1):
        matrix = remainder.reshape(full[n] * shape[n], -1)
        basis = _left_singular(matrix)[0][:, : full[n + 1]]
        cores.append(basis.reshape(full[n], shape[n], -1))
        remainder = basis.T @ matrix  # = Σ Vᵀ of the kept part, carried to the next core
    cores.append(remainder.reshape(full[-2], shape[-1], 1))
    return [_as_parameter_data(core, weights) for core in _trim_tt_ranks(cores)]


def decompose(
    method: FactorizationMethod,
    weights: Tensor,
    *,
    eps: float | Sequence[float] | None = None,
    ranks: Ranks | None = None,
) -> list[Tensor]:
    """Factor list for ``method`` in the layout of :func:`mtlkit.factorization.compose`.

    >>> from mtlkit.factorization import compose
    >>> W = torch.randn(6, 5, 4, generator=torch.Generator().manual_seed(0))
    >>> relative_error(W, compose("tt", decompose("tt", W, eps=0.1))) <= 0.1
    True
    """
    _deprecated("decompose(method, ...)", "Factorization.from_tensor(W, rule)")
    if method == "laf":
        if ranks is not None and not isinstance(ranks, int):
            raise ValueError(f"LAF takes a single integer rank K, got {ranks!r}")
        return laf_decompose(weights, eps=eps, rank=ranks)  # type: ignore[arg-type]
    if method == "tucker":
        return tucker_decompose(weights, eps=eps, ranks=ranks)
    if method == "tt":
        return tt_decompose(weights, eps=eps, ranks=ranks)
    raise ValueError(f"unknown factorisation method {method!r}; expected one of {FACTORIZATION_METHODS}")


def random_dense_weights(
    shape: Sequence[int],
    fan_in: int,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Task-last dense weights ``~ U(−1/√fan_in, 1/√fan_in)``, PyTorch's default Linear/Conv init.

    >>> random_dense_weights((3, 2, 4), fan_in=9).abs().max().item() <= 1 / 3
    True
    """
    bound = 1.0 / math.sqrt(fan_in)
    return (torch.rand(*shape, generator=generator, dtype=dtype) * 2 - 1) * bound


def random_factors(
    method: FactorizationMethod,
    shape: Sequence[int],
    fan_in: int,
    *,
    ranks: Ranks | None = None,
    eps: float | Sequence[float] | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> list[Tensor]:
    """Random init as the paper recommends: random dense weights → decompose → factors.

    Truncation removes energy, so the task-specific factor is rescaled to give the recomposed tensor
    the Frobenius norm of the dense draw: the composed weights then have the intended scale.

    >>> from mtlkit.factorization import compose
    >>> W = compose("laf", random_factors("laf", (64, 32, 4), fan_in=64, ranks=2))
    >>> round(W.pow(2).mean().sqrt().item() * (3 * 64) ** 0.5, 1)  # std of U(±1/8) is 1/(8√3)
    1.0
    """
    _deprecated("random_factors(method, ...)", "Factorization.random(shape, rule)")
    dense = random_dense_weights(shape, fan_in, generator=generator, dtype=torch.float64)
    factors = decompose(method, dense, eps=eps, ranks=ranks)
    composed_norm = torch.linalg.vector_norm(compose(method, factors))
    if composed_norm > 0:
        task_index = 1 if method == "laf" else -1
        factors[task_index] = factors[task_index] * (torch.linalg.vector_norm(dense) / composed_norm)
    return [f.to(dtype) for f in factors]


def spectral_eps_ranks(method: FactorizationMethod, weights: Tensor, eps: float) -> int | tuple[int, ...]:
    """Ranks by the *spectral* reading of ε used in the authors' released code.

    The DMTRL code (``tensor_toolbox_yyang.py``) picks every rank with
    ``scipy.linalg.interpolative.svd(A, eps)``, whose ``eps`` is a precision relative to the
    largest singular value of the matrix at hand, applied with the full ε at every step: LAF on the
    last-axis flattening, Tucker on each mode-``n`` flattening of ``W``, TT on each matrix of the
    left-to-right TT-SVD sweep. This function applies the exact-SVD version of that rule,
    ``K = #{i : σ_i > ε σ_1}`` (at least 1), and returns ranks to pass as ``ranks=`` to
    :func:`decompose` / ``from_dense``. They are far smaller than the Frobenius-error ranks of
    ``eps=`` (which bound ``‖W − Ŵ‖_F / ‖W‖_F`` for the whole tensor), so the composed init is
    further from the STL weights.

    >>> W = torch.zeros(4, 3, 2)
    >>> W[0, 0, 0], W[1, 1, 1], W[2, 2, 0] = 1.0, 0.05, 0.5
    >>> spectral_eps_ranks("laf", W, 0.1), spectral_eps_ranks("tucker", W, 0.1), spectral_eps_ranks("tt", W, 0.1)
    (1, (2, 2, 1), (2, 1))
    """
    _deprecated("spectral_eps_ranks(method, ...)", "SpectralError(eps)")
    if not eps >= 0:
        raise ValueError(f"eps must be ≥ 0, got {eps}")
    from mtlkit.factorized import LAF, TT, Tucker  # noqa: PLC0415 - mtlkit.factorized imports this module

    kinds: dict[str, type[LAF] | type[Tucker] | type[TT]] = {"laf": LAF, "tucker": Tucker, "tt": TT}
    if method not in kinds:
        raise ValueError(f"unknown factorisation method {method!r}; expected one of {FACTORIZATION_METHODS}")
    ranks: tuple[int, ...] = kinds[method].spectral_ranks(weights, eps, "spectral_eps_ranks")
    return ranks[0] if method == "laf" else ranks
