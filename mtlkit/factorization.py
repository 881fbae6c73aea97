"""Pure, differentiable composition of task-stacked weight tensors (DMTRL, Yang & Hospedales 2017).

A layer of ``T`` task networks has weights that stack into one tensor ``W`` of shape
``(D_1, ..., D_{N-1}, T)``: the **task axis is always last**. DMTRL never stores ``W``; it stores
factors and *composes* ``W`` from them at every step ("right-to-left" use of a decomposition):

* **LAF** (last-axis flattening, paper Eq. 2): ``W[..., t] = Σ_k L[..., k] S[k, t]`` with a shared
  ``L`` of shape ``(D_1, ..., D_{N-1}, K)`` and a task-specific ``S`` of shape ``(K, T)``.
* **Tucker** (Eq. 3-4): ``W = G ×_1 U_1 ×_2 U_2 ... ×_N U_N`` with core ``G`` of shape
  ``(K_1, ..., K_N)`` and factors ``U_n`` of shape ``(D_n, K_n)``; the last factor ``U_N``
  (``T × K_N``) is task specific, everything else is shared.
* **Tensor train** (Eq. 6-8): ``W[d_1..d_N] = G_1[:, d_1, :] G_2[:, d_2, :] ... G_N[:, d_N, :]``
  with cores ``G_n`` of shape ``(K_{n-1}, D_n, K_n)`` and boundary ranks ``K_0 = K_N = 1`` (the
  TensorLy convention; the paper writes the two boundary cores as matrices). The last core
  (``K_{N-1} × T × 1``) is task specific.

Everything here is a plain function of tensors, built from ``tensordot``/``matmul`` only, so
autograd differentiates through it and the functions can be property-tested against TensorLy
(``tucker_to_tensor``, ``tt_to_tensor``, ``unfold``). Rank validation and analytic parameter counts
(paper App. B) live here too, because they are facts about the factorisations, not about layers.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Literal, NamedTuple

import torch
from torch import Tensor

__all__ = [
    "FactorizationMethod",
    "FACTORIZATION_METHODS",
    "unfold",
    "laf_compose",
    "tucker_compose",
    "tt_compose",
    "compose",
    "TaskBasis",
    "task_basis",
    "compose_task_major",
    "InputProjection",
    "input_projection",
    "ChannelProjection",
    "tucker_channel_projection",
    "laf_max_rank",
    "tucker_max_ranks",
    "tt_max_ranks",
    "check_laf_rank",
    "check_tucker_ranks",
    "check_tt_ranks",
    "tt_feasible_ranks",
    "laf_parameter_count",
    "tucker_parameter_count",
    "tt_parameter_count",
    "factorized_parameter_count",
]

FactorizationMethod = Literal["laf", "tucker", "tt"]
FACTORIZATION_METHODS: tuple[FactorizationMethod, ...] = ("laf", "tucker", "tt")


def _deprecated(name: str, instead: str) -> None:
    """The string-dispatched functions of 0.1 are thin shims now; the classes of mtlkit.factorized replace them."""
    warnings.warn(f"mtlkit: {name} is deprecated; use {instead} (mtlkit.factorized)", DeprecationWarning, stacklevel=3)


def unfold(tensor: Tensor, mode: int) -> Tensor:
    """Mode-``n`` flattening ``W_(n)``: the ``D_n × Π_{m≠n} D_m`` matrix of mode-``n`` fibres.

    Same element order as ``tensorly.unfold`` (move ``mode`` to the front, then C-order reshape).

    >>> unfold(torch.arange(24.).reshape(2, 3, 4), 1).shape
    torch.Size([3, 8])
    """
    return torch.movedim(tensor, mode, 0).reshape(tensor.shape[mode], -1)


def laf_compose(shared: Tensor, task_factor: Tensor) -> Tensor:
    """LAF composition ``W[..., t] = Σ_k L[..., k] S[k, t]`` (paper Eq. 2).

    Args:
        shared: ``L`` of shape ``(D_1, ..., D_{N-1}, K)``.
        task_factor: ``S`` of shape ``(K, T)``; column ``t`` mixes the ``K`` latent basis tasks.

    Returns:
        ``W`` of shape ``(D_1, ..., D_{N-1}, T)``; its last-axis flattening is ``L_(N)ᵀ S``.

    >>> L, S = torch.ones(4, 3, 2), torch.tensor([[1., 0.], [0., 2.]])
    >>> laf_compose(L, S)[..., 1].sum().item()
    24.0
    """
    _check_laf_factors(shared, task_factor)
    composed: Tensor = torch.tensordot(shared, task_factor, dims=1)
    return composed


def _check_laf_factors(shared: Tensor, task_factor: Tensor) -> None:
    if task_factor.dim() != 2 or shared.shape[-1] != task_factor.shape[0]:
        raise ValueError(
            f"LAF: shared factor L {tuple(shared.shape)} must end with the rank K that starts the "
            f"task factor S {tuple(task_factor.shape)} (expected S of shape (K, T))"
        )


def _mode_product(tensor: Tensor, matrix: Tensor, mode: int) -> Tensor:
    """``tensor ×_mode matrix``: axis ``mode`` (size ``K``) becomes ``matrix @`` it (``D × K``)."""
    product = torch.tensordot(tensor, matrix, dims=([mode], [1]))
    return torch.movedim(product, -1, mode)


def tucker_compose(core: Tensor, factors: Sequence[Tensor]) -> Tensor:
    """Tucker composition ``W = G ×_1 U_1 ... ×_N U_N`` (paper Eq. 3-4).

    ``W[d_1..d_N] = Σ_{k_1..k_N} G[k_1..k_N] U_1[d_1, k_1] ... U_N[d_N, k_N]``.

    Args:
        core: ``G`` of shape ``(K_1, ..., K_N)``.
        factors: ``N`` matrices ``U_n`` of shape ``(D_n, K_n)``; ``U_N`` is ``(T, K_N)``.

    Returns:
        ``W`` of shape ``(D_1, ..., D_N)``.

    >>> G = torch.ones(1, 1, 1)
    >>> U = [torch.ones(2, 1), torch.ones(3, 1), torch.tensor([[1.], [2.]])]
    >>> tucker_compose(G, U)[..., 1].sum().item()
    12.0
    """
    _check_tucker_factors(core, factors)
    # Multiply the modes that grow the tensor least first: every later product then runs on a
    # smaller intermediate (the result is the same in any order).
    order = sorted(range(core.dim()), key=lambda m: factors[m].shape[0] / factors[m].shape[1])
    result = core
    for mode in order:
        result = _mode_product(result, factors[mode], mode)
    return result


def _check_tucker_factors(core: Tensor, factors: Sequence[Tensor]) -> None:
    if len(factors) != core.dim():
        raise ValueError(f"Tucker: core of shape {tuple(core.shape)} needs {core.dim()} factors, got {len(factors)}")
    for mode, factor in enumerate(factors):
        if factor.dim() != 2 or factor.shape[1] != core.shape[mode]:
            raise ValueError(
                f"Tucker: factor {mode} has shape {tuple(factor.shape)}, expected (D_{mode}, "
                f"{core.shape[mode]}) to match core shape {tuple(core.shape)}"
            )


def tt_compose(cores: Sequence[Tensor]) -> Tensor:
    """Tensor-train composition (paper Eq. 6-8).

    ``W[d_1..d_N] = G_1[:, d_1, :] G_2[:, d_2, :] ... G_N[:, d_N, :]`` (a ``1 × 1`` product of
    matrices ``K_{n-1} × K_n``), i.e. a chain of matrix products over the ranks.

    Args:
        cores: ``N`` tensors ``G_n`` of shape ``(K_{n-1}, D_n, K_n)`` with ``K_0 = K_N = 1``.

    Returns:
        ``W`` of shape ``(D_1, ..., D_N)``.

    >>> cores = [torch.ones(1, 2, 3), torch.ones(3, 4, 1)]
    >>> tt_compose(cores)[0, 0].item()
    3.0
    """
    _check_tt_cores(cores)
    if cores[-1].shape[-1] != 1:
        raise ValueError(f"TT: boundary ranks must be 1, got last core {tuple(cores[-1].shape)}")
    return _tt_chain(cores).reshape([core.shape[1] for core in cores])


def _check_tt_cores(cores: Sequence[Tensor]) -> None:
    """Cores are 3-d, the first starts with rank 1 and neighbouring ranks agree."""
    if len(cores) == 0:
        raise ValueError("TT: need at least one core")
    for index, core in enumerate(cores):
        if core.dim() != 3:
            raise ValueError(f"TT: core {index} has shape {tuple(core.shape)}, expected (K_prev, D, K_next)")
        if index > 0 and core.shape[0] != cores[index - 1].shape[2]:
            raise ValueError(
                f"TT: core {index} has shape {tuple(core.shape)} but the previous core ends with "
                f"rank {cores[index - 1].shape[2]}"
            )
    if cores[0].shape[0] != 1:
        raise ValueError(f"TT: boundary ranks must be 1, got first core {tuple(cores[0].shape)}")


def _tt_chain(cores: Sequence[Tensor]) -> Tensor:
    """Product of validated cores as a ``(Π D_n) × K_last`` matrix (C order over the ``D_n``)."""
    result = cores[0].reshape(cores[0].shape[1], cores[0].shape[2])
    for core in cores[1:]:
        result = (result @ core.reshape(core.shape[0], -1)).reshape(-1, core.shape[2])
    return result


def compose(method: FactorizationMethod, factors: Sequence[Tensor]) -> Tensor:
    """Compose ``W`` from a flat factor list in the layout every module of mtlkit stores.

    ``laf``: ``[L, S]``; ``tucker``: ``[G, U_1, ..., U_N]``; ``tt``: ``[G_1, ..., G_N]``.

    >>> compose("laf", [torch.ones(2, 1), torch.ones(1, 3)]).shape
    torch.Size([2, 3])
    """
    _deprecated("compose(method, ...)", "LAF/Tucker/TT/CP(...).compose()")
    if method == "laf":
        shared, task_factor = factors
        return laf_compose(shared, task_factor)
    if method == "tucker":
        return tucker_compose(factors[0], factors[1:])
    if method == "tt":
        return tt_compose(factors)
    raise ValueError(f"unknown factorisation method {method!r}; expected one of {FACTORIZATION_METHODS}")


class TaskBasis(NamedTuple):
    """``W = basis ×_N task_matrix``: every factorisation, seen from its task mode.

    All three methods put the task axis last and make only its factor task specific, so each
    composes as ``W[..., t] = Σ_k basis[..., k] task_matrix[t, k]``: ``K`` shared *basis* weight
    tensors mixed per task. LAF: ``basis = L``, ``task_matrix = Sᵀ``; Tucker: ``basis = G ×_1 U_1
    ... ×_{N-1} U_{N-1}``, ``task_matrix = U_N``; TT: ``basis`` = the chain of the first ``N-1``
    cores, ``task_matrix = G_N[:, :, 0]ᵀ``.

    Layers use this form for speed: a batch shared by all tasks can go through the ``K`` basis
    weights and be mixed afterwards (cheaper than composing ``T`` weights when ``K < T``), and the
    task-major weight ``(T, D_1, ..., D_{N-1})`` is a single matrix product.
    """

    basis: Tensor  # (D_1, ..., D_{N-1}, K), contiguous
    task_matrix: Tensor  # (T, K)


def task_basis(method: FactorizationMethod, factors: Sequence[Tensor]) -> TaskBasis:
    """Split a factor list (layout of :func:`compose`) into shared basis and task matrix.

    >>> L, S = torch.randn(4, 3, 2), torch.randn(2, 5)
    >>> form = task_basis("laf", [L, S])
    >>> torch.allclose(torch.tensordot(form.basis, form.task_matrix, dims=([-1], [1])), laf_compose(L, S))
    True
    """
    _deprecated("task_basis(method, ...)", "Factorization.task_basis()")
    if method == "laf":
        shared, task_factor = factors
        _check_laf_factors(shared, task_factor)
        return TaskBasis(shared.contiguous(), task_factor.T)
    if method == "tucker":
        core, *matrices = factors
        _check_tucker_factors(core, matrices)
        basis = core
        shared_modes = range(core.dim() - 1)
        for mode in sorted(shared_modes, key=lambda m: matrices[m].shape[0] / matrices[m].shape[1]):
            basis = _mode_product(basis, matrices[mode], mode)
        return TaskBasis(basis.contiguous(), matrices[-1])
    if method == "tt":
        _check_tt_cores(factors)
        if len(factors) < 2 or factors[-1].shape[-1] != 1:
            raise ValueError(
                f"TT: a task-stacked weight needs ≥ 2 cores, the last (K, T, 1); got shapes "
                f"{[tuple(core.shape) for core in factors]}"
            )
        basis = _tt_chain(factors[:-1])
        return TaskBasis(basis.reshape(*(c.shape[1] for c in factors[:-1]), -1), factors[-1][:, :, 0].T)
    raise ValueError(f"unknown factorisation method {method!r}; expected one of {FACTORIZATION_METHODS}")


def compose_task_major(form: TaskBasis) -> Tensor:
    """Task-major weight ``(T, D_1, ..., D_{N-1})`` from a :class:`TaskBasis`, in one GEMM.

    Equal to ``torch.movedim(compose(...), -1, 0)``, but contiguous per task, which is the layout
    batched kernels (``bmm``, grouped convolution) consume.

    >>> form = task_basis("laf", [torch.ones(4, 3, 2), torch.ones(2, 5)])
    >>> compose_task_major(form).shape
    torch.Size([5, 4, 3])
    """
    basis, task_matrix = form
    # linear(M, B) = M Bᵀ; its backward hands the basis a gradient already in the basis' own layout
    # (a plain ``M @ B.T`` returns a transposed one, which costs a copy of the basis per step).
    flat = torch.nn.functional.linear(task_matrix, basis.reshape(-1, basis.shape[-1]))
    return flat.reshape(task_matrix.shape[0], *basis.shape[:-1])


class InputProjection(NamedTuple):
    """``W[:, :, t] = projection @ task_maps[t]`` for a linear weight ``(in, out, T)``.

    Tucker and TT factorise the input axis itself (``U_1``, resp. the first core, is an
    ``in × R`` matrix shared by all tasks), so ``y_t = (x_t · projection) · task_maps[t]`` never
    needs the ``in × out`` weights: ``in·R + R·out`` multiply-adds per row instead of ``in·out``.
    """

    projection: Tensor  # (in, R), shared
    task_maps: Tensor  # (T, R, out)


def input_projection(method: FactorizationMethod, factors: Sequence[Tensor]) -> InputProjection | None:
    """The :class:`InputProjection` of a Tucker or TT linear weight; ``None`` for LAF.

    Tucker: ``projection = U_1`` and ``task_maps[t] = (G ×_3 U_3)[:, :, t] U_2ᵀ``; TT:
    ``projection = G_1[0]`` and ``task_maps[t] = Σ_b G_2[:, :, b] G_3[b, t, 0]``.

    >>> cores = [torch.randn(1, 6, 2), torch.randn(2, 4, 3), torch.randn(3, 5, 1)]
    >>> form = input_projection("tt", cores)
    >>> torch.allclose(form.projection @ form.task_maps[1], tt_compose(cores)[:, :, 1], atol=1e-5)
    True
    """
    _deprecated("input_projection(method, ...)", "FactorizedLinear's planned contraction")
    if method == "laf":
        return None
    if len(factors) != (4 if method == "tucker" else 3):
        raise ValueError(f"{method}: input_projection needs the factors of a 3-axis (in, out, T) weight")
    if method == "tucker":
        core, u_in, u_out, u_task = factors
        _check_tucker_factors(core, [u_in, u_out, u_task])
        return InputProjection(u_in, torch.einsum("abk,tk,ob->tao", core, u_task, u_out))
    if method == "tt":
        _check_tt_cores(factors)
        first, middle, last = factors
        return InputProjection(first[0], torch.einsum("aob,bt->tao", middle, last[:, :, 0]))
    raise ValueError(f"unknown factorisation method {method!r}; expected one of {FACTORIZATION_METHODS}")


class ChannelProjection(NamedTuple):
    """A Tucker conv weight ``(kh, kw, in, out, T)`` as three convolutions (Tucker-2 form).

    ``W[h, w, i, o, t] = Σ_ab input_matrix[i, a] · task_kernels[t, h, w, a, b] · output_matrix[o, b]``:
    a shared ``1×1`` convolution ``in → K_in``, a per-task ``kh × kw`` convolution
    ``K_in → K_out``, and a shared ``1×1`` convolution ``K_out → out``. Per output position and
    task that is ``in·K_in + K_in·K_out·kh·kw + K_out·out`` multiply-adds instead of
    ``in·out·kh·kw``.
    """

    input_matrix: Tensor  # U_in (in, K_in)
    task_kernels: Tensor  # (T, kh, kw, K_in, K_out)
    output_matrix: Tensor  # U_out (out, K_out)


def tucker_channel_projection(factors: Sequence[Tensor]) -> ChannelProjection:
    """The :class:`ChannelProjection` of Tucker factors ``[G, U_h, U_w, U_in, U_out, U_T]``.

    ``task_kernels = G ×_1 U_h ×_2 U_w ×_5 U_T`` with the task axis moved first.

    >>> core = torch.randn(2, 2, 3, 2, 2)
    >>> u = [torch.randn(3, 2), torch.randn(3, 2), torch.randn(5, 3), torch.randn(4, 2), torch.randn(6, 2)]
    >>> form = tucker_channel_projection([core, *u])
    >>> rebuilt = torch.einsum("ia,thwab,ob->hwiot", *form)
    >>> torch.allclose(rebuilt, tucker_compose(core, u), atol=1e-4)
    True
    """
    if len(factors) != 6:
        raise ValueError(
            f"Tucker: a channel projection needs the 6 factors of a (kh, kw, in, out, T) weight, got {len(factors)}"
        )
    core, u_h, u_w, u_in, u_out, u_task = factors
    _check_tucker_factors(core, factors[1:])
    kernels = torch.einsum("pqabc,hp,wq,tc->thwab", core, u_h, u_w, u_task)
    return ChannelProjection(u_in, kernels, u_out)


# ----------------------------------------------------------------------------------------- ranks


def laf_max_rank(shape: Sequence[int]) -> int:
    """Largest useful LAF rank: ``min(Π_{n<N} D_n, T)``, the rank of the last-axis flattening.

    >>> laf_max_rank((5, 4, 10))
    10
    """
    return min(math.prod(shape[:-1]), shape[-1])


def tucker_max_ranks(shape: Sequence[int]) -> tuple[int, ...]:
    """Largest useful Tucker ranks: ``K_n ≤ D_n`` (mode-``n`` flattening has ``D_n`` rows).

    >>> tucker_max_ranks((5, 4, 10))
    (5, 4, 10)
    """
    return tuple(int(d) for d in shape)


def tt_max_ranks(shape: Sequence[int]) -> tuple[int, ...]:
    """Largest useful TT ranks ``K_n ≤ min(Π_{m≤n} D_m, Π_{m>n} D_m)``, ``n = 1..N-1``.

    >>> tt_max_ranks((5, 4, 10))
    (5, 10)
    """
    return tuple(min(math.prod(shape[: n + 1]), math.prod(shape[n + 1 :])) for n in range(len(shape) - 1))


def _check_shape(shape: Sequence[int], what: str) -> tuple[int, ...]:
    shape = tuple(int(d) for d in shape)
    if len(shape) < 2 or any(d < 1 for d in shape):
        raise ValueError(f"{what}: weight shape {shape} must have ≥ 2 positive axes (…, T), task axis last")
    return shape


def check_laf_rank(shape: Sequence[int], rank: int, what: str = "LAF") -> int:
    """Validate a LAF rank for a task-last weight ``shape``; return it as ``int``.

    >>> check_laf_rank((8, 3), 5)
    Traceback (most recent call last):
    ...
    ValueError: LAF: rank 5 for weight shape (8, 3) must be in [1, 3] = [1, min(Π D_n, T)]
    """
    shape = _check_shape(shape, what)
    if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= laf_max_rank(shape):
        raise ValueError(
            f"{what}: rank {rank} for weight shape {shape} must be in [1, {laf_max_rank(shape)}] = [1, min(Π D_n, T)]"
        )
    return rank


def check_tucker_ranks(shape: Sequence[int], ranks: Sequence[int], what: str = "Tucker") -> tuple[int, ...]:
    """Validate one Tucker rank per axis of ``shape`` (``1 ≤ K_n ≤ D_n``); return a tuple.

    >>> check_tucker_ranks((8, 3), (2, 4))
    Traceback (most recent call last):
    ...
    ValueError: Tucker: ranks (2, 4) for weight shape (8, 3) must satisfy 1 ≤ K_n ≤ D_n = (8, 3)
    """
    shape = _check_shape(shape, what)
    ranks = tuple(ranks)
    if len(ranks) != len(shape):
        raise ValueError(
            f"{what}: got {len(ranks)} ranks {ranks} for weight shape {shape}; need one per axis "
            f"({len(shape)}, task axis included)"
        )
    if any(isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= d for k, d in zip(ranks, shape, strict=True)):
        raise ValueError(f"{what}: ranks {ranks} for weight shape {shape} must satisfy 1 ≤ K_n ≤ D_n = {shape}")
    return ranks


def check_tt_ranks(shape: Sequence[int], ranks: Sequence[int], what: str = "TT") -> tuple[int, ...]:
    """Validate the ``N-1`` inner TT ranks for ``shape`` (boundary ranks 1 are implicit).

    >>> check_tt_ranks((8, 3), (9,))
    Traceback (most recent call last):
    ...
    ValueError: TT: ranks (9,) for weight shape (8, 3) must satisfy 1 ≤ K_n ≤ (3,)
    """
    shape = _check_shape(shape, what)
    ranks = tuple(ranks)
    if len(ranks) != len(shape) - 1:
        raise ValueError(
            f"{what}: got {len(ranks)} ranks {ranks} for weight shape {shape}; need N-1 = "
            f"{len(shape) - 1} inner ranks (boundary ranks are 1)"
        )
    bounds = tt_max_ranks(shape)
    if any(
        isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= b for k, b in zip(ranks, bounds, strict=True)
    ):
        raise ValueError(f"{what}: ranks {ranks} for weight shape {shape} must satisfy 1 ≤ K_n ≤ {bounds}")
    full = (1, *ranks, 1)
    for n in range(1, len(shape)):
        # A rank larger than what its neighbours can feed is unreachable: the extra slices of the
        # core stay linearly dependent forever, so reject it instead of silently wasting memory.
        if full[n] > full[n - 1] * shape[n - 1] or full[n] > shape[n] * full[n + 1]:
            raise ValueError(
                f"{what}: rank K_{n}={full[n]} for weight shape {shape} exceeds what its "
                f"neighbours "
                f"allow (K_{n - 1}·D_{n}={full[n - 1] * shape[n - 1]}, "
                f"D_{n + 1}·K_{n + 1}={shape[n] * full[n + 1]}); see tt_feasible_ranks"
            )
    return ranks


def tt_feasible_ranks(shape: Sequence[int], max_rank: int) -> tuple[int, ...]:
    """Largest chain-consistent TT ranks ``≤ max_rank``.

    Chain-consistent means ``K_n ≤ K_{n-1} D_n`` and ``K_n ≤ D_{n+1} K_{n+1}``.

    >>> tt_feasible_ranks((2, 3, 4), 100)
    (2, 4)
    """
    shape = _check_shape(shape, "TT")
    ranks = [min(max_rank, b) for b in tt_max_ranks(shape)]
    previous = 1
    for n in range(len(ranks)):
        ranks[n] = previous = min(ranks[n], previous * shape[n])
    following = 1
    for n in reversed(range(len(ranks))):
        ranks[n] = following = min(ranks[n], shape[n + 1] * following)
    return tuple(ranks)


# ------------------------------------------------------------------------------ parameter counts


def laf_parameter_count(shape: Sequence[int], rank: int) -> int:
    """Number of LAF weight parameters: ``K·Π_{n<N} D_n + K·T``.

    >>> laf_parameter_count((512, 1, 10), 3)
    1566
    """
    shape = _check_shape(shape, "LAF")
    check_laf_rank(shape, rank)
    return rank * math.prod(shape[:-1]) + rank * shape[-1]


def tucker_parameter_count(shape: Sequence[int], ranks: Sequence[int]) -> int:
    """Number of Tucker weight parameters: ``Π_n K_n + Σ_n D_n K_n``.

    >>> tucker_parameter_count((512, 1, 10), (4, 1, 2))
    2077
    """
    ranks = check_tucker_ranks(shape, ranks)
    return math.prod(ranks) + sum(d * k for d, k in zip(shape, ranks, strict=True))


def tt_parameter_count(shape: Sequence[int], ranks: Sequence[int]) -> int:
    """Number of TT weight parameters: ``Σ_n K_{n-1} D_n K_n`` with ``K_0 = K_N = 1``.

    >>> tt_parameter_count((512, 1, 10), (1, 1))
    523
    """
    full = (1, *check_tt_ranks(shape, ranks), 1)
    return sum(full[n] * d * full[n + 1] for n, d in enumerate(shape))


def factorized_parameter_count(method: FactorizationMethod, shape: Sequence[int], ranks: int | Sequence[int]) -> int:
    """Weight parameters of a factorised task-stacked tensor (biases not included).

    >>> factorized_parameter_count("laf", (512, 1, 10), 3)
    1566
    """
    _deprecated("factorized_parameter_count(method, ...)", "Factorization.count(shape, ranks)")
    if method == "laf":
        if not isinstance(ranks, int):
            raise ValueError(f"LAF takes a single integer rank K, got {ranks!r}")
        return laf_parameter_count(shape, ranks)
    if method == "tucker":
        return tucker_parameter_count(shape, ranks)  # type: ignore[arg-type]
    if method == "tt":
        return tt_parameter_count(shape, ranks)  # type: ignore[arg-type]
    raise ValueError(f"unknown factorisation method {method!r}; expected one of {FACTORIZATION_METHODS}")
