"""Composition functions against TensorLy, gradients, rank checks and parameter counts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorly as tl
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mtlkit.factorization import (
    check_laf_rank,
    check_tt_ranks,
    check_tucker_ranks,
    compose,
    compose_task_major,
    factorized_parameter_count,
    input_projection,
    laf_compose,
    task_basis,
    tt_compose,
    tt_feasible_ranks,
    tucker_channel_projection,
    tucker_compose,
    unfold,
)

# These tests cover the 0.1 string-dispatched functions, kept as deprecated shims.
pytestmark = pytest.mark.filterwarnings("ignore:mtlkit.*deprecated:DeprecationWarning")

shapes = st.lists(st.integers(1, 5), min_size=2, max_size=4).map(tuple)


def _random(shape: tuple[int, ...], seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@st.composite
def tucker_factors(draw: st.DrawFn) -> tuple[torch.Tensor, list[torch.Tensor]]:
    shape = draw(shapes)
    ranks = tuple(draw(st.integers(1, d)) for d in shape)
    seed = draw(st.integers(0, 2**16))
    factors = [_random((d, k), seed + i) for i, (d, k) in enumerate(zip(shape, ranks, strict=True))]
    return _random(ranks, seed), factors


@st.composite
def tt_cores(draw: st.DrawFn) -> list[torch.Tensor]:
    shape = draw(shapes)
    inner = [draw(st.integers(1, 3)) for _ in range(len(shape) - 1)]
    full = [1, *inner, 1]
    seed = draw(st.integers(0, 2**16))
    return [_random((full[n], d, full[n + 1]), seed + n) for n, d in enumerate(shape)]


@settings(max_examples=30, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**16))
def test_unfold_matches_tensorly(shape: tuple[int, ...], seed: int) -> None:
    tensor = _random(shape, seed)
    for mode in range(len(shape)):
        np.testing.assert_array_equal(unfold(tensor, mode).numpy(), tl.unfold(tensor.numpy(), mode))


@settings(max_examples=30, deadline=None)
@given(shape=shapes, rank=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_laf_is_a_low_rank_last_axis_flattening(shape: tuple[int, ...], rank: int, seed: int) -> None:
    shared, task_factor = _random((*shape[:-1], rank), seed), _random((rank, shape[-1]), seed + 1)
    weights = laf_compose(shared, task_factor)
    expected = (shared.reshape(-1, rank) @ task_factor).T  # W_(N) = Sᵀ L_(N)... as a matrix product
    np.testing.assert_allclose(tl.unfold(weights.numpy(), len(shape) - 1), expected.numpy(), atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(tucker_factors())
def test_tucker_matches_tensorly(factors: tuple[torch.Tensor, list[torch.Tensor]]) -> None:
    core, matrices = factors
    expected = tl.tucker_to_tensor((core.numpy(), [m.numpy() for m in matrices]))
    np.testing.assert_allclose(tucker_compose(core, matrices).numpy(), expected, atol=1e-10)


@settings(max_examples=30, deadline=None)
@given(tt_cores())
def test_tt_matches_tensorly(cores: list[torch.Tensor]) -> None:
    expected = tl.tt_to_tensor([c.numpy() for c in cores])
    np.testing.assert_allclose(tt_compose(cores).numpy(), expected, atol=1e-10)


@st.composite
def any_factors(draw: st.DrawFn) -> tuple[str, list[torch.Tensor]]:
    method = draw(st.sampled_from(["laf", "tucker", "tt"]))
    if method == "tucker":
        core, matrices = draw(tucker_factors())
        return method, [core, *matrices]
    if method == "tt":
        return method, draw(tt_cores())
    shape, rank, seed = draw(shapes), draw(st.integers(1, 4)), draw(st.integers(0, 2**16))
    return method, [_random((*shape[:-1], rank), seed), _random((rank, shape[-1]), seed + 1)]


@settings(max_examples=60, deadline=None)
@given(any_factors())
def test_task_basis_composes_to_the_same_weights(method_and_factors: tuple[str, list[torch.Tensor]]) -> None:
    method, factors = method_and_factors
    weights = compose(method, factors)  # type: ignore[arg-type]
    form = task_basis(method, factors)  # type: ignore[arg-type]
    assert form.basis.is_contiguous() and form.basis.shape[:-1] == weights.shape[:-1]
    assert form.task_matrix.shape == (weights.shape[-1], form.basis.shape[-1])
    task_major = compose_task_major(form)
    torch.testing.assert_close(task_major, torch.movedim(weights, -1, 0), rtol=1e-10, atol=1e-10)


@settings(max_examples=40, deadline=None)
@given(any_factors())
def test_input_projection_composes_to_the_same_weights(method_and_factors: tuple[str, list[torch.Tensor]]) -> None:
    method, factors = method_and_factors
    weights = compose(method, factors)  # type: ignore[arg-type]
    if method == "laf":
        assert input_projection(method, factors) is None  # LAF keeps the input axis whole
        return
    if weights.dim() != 3:
        with pytest.raises(ValueError, match="3-axis"):
            input_projection(method, factors)  # type: ignore[arg-type]
        return
    form = input_projection(method, factors)  # type: ignore[arg-type]
    assert form is not None
    torch.testing.assert_close(torch.matmul(form.projection, form.task_maps), torch.movedim(weights, -1, 0))


@settings(max_examples=30, deadline=None)
@given(
    shape=st.tuples(*(st.integers(1, 4) for _ in range(5))),
    rank_fraction=st.floats(0.1, 1.0),
    seed=st.integers(0, 2**16),
)
def test_tucker_channel_projection_composes_to_the_same_kernels(
    shape: tuple[int, ...], rank_fraction: float, seed: int
) -> None:
    ranks = tuple(max(1, round(d * rank_fraction)) for d in shape)
    core = _random(ranks, seed)
    matrices = [_random((d, k), seed + 1 + n) for n, (d, k) in enumerate(zip(shape, ranks, strict=True))]
    form = tucker_channel_projection([core, *matrices])
    assert form.task_kernels.shape == (shape[4], shape[0], shape[1], ranks[2], ranks[3])
    rebuilt = torch.einsum("ia,thwab,ob->hwiot", *form)
    torch.testing.assert_close(rebuilt, tucker_compose(core, matrices), rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="6 factors"):
        tucker_channel_projection([core, *matrices[:-1]])


def test_gradcheck_through_the_channel_projection() -> None:
    shapes = [(2, 2, 2, 3, 2), (3, 2), (3, 2), (4, 2), (5, 3), (3, 2)]
    tensors = [_random(shape, i).requires_grad_() for i, shape in enumerate(shapes)]
    assert torch.autograd.gradcheck(lambda *fs: tuple(tucker_channel_projection(list(fs))), tensors)


@pytest.mark.parametrize(
    ("method", "factors"),
    [
        ("laf", [(3, 2, 2), (2, 4)]),
        ("tucker", [(2, 2, 3), (3, 2), (2, 2), (4, 3)]),
        ("tt", [(1, 3, 2), (2, 2, 3), (3, 4, 1)]),
    ],
)
def test_gradcheck_through_composition(method: str, factors: list[tuple[int, ...]]) -> None:
    tensors = [_random(shape, i).requires_grad_() for i, shape in enumerate(factors)]
    assert torch.autograd.gradcheck(lambda *fs: compose(method, list(fs)), tensors)  # type: ignore[arg-type]
    assert torch.autograd.gradcheck(
        lambda *fs: compose_task_major(task_basis(method, list(fs))),  # type: ignore[arg-type]
        tensors,
    )
    if method != "laf":
        assert torch.autograd.gradcheck(lambda *fs: tuple(input_projection(method, list(fs))), tensors)  # type: ignore[arg-type]


def test_composition_rejects_mismatched_factors() -> None:
    with pytest.raises(ValueError, match=r"LAF: shared factor L \(3, 2\)"):
        laf_compose(torch.ones(3, 2), torch.ones(3, 4))
    with pytest.raises(ValueError, match=r"Tucker: factor 1 has shape \(4, 3\)"):
        tucker_compose(torch.ones(2, 2), [torch.ones(3, 2), torch.ones(4, 3)])
    with pytest.raises(ValueError, match="TT: core 1 has shape"):
        tt_compose([torch.ones(1, 3, 2), torch.ones(3, 4, 1)])
    with pytest.raises(ValueError, match="boundary ranks must be 1"):
        tt_compose([torch.ones(2, 3, 1)])
    with pytest.raises(ValueError, match="unknown factorisation method 'cp'"):
        compose("cp", [])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="TT: a task-stacked weight needs ≥ 2 cores"):
        task_basis("tt", [torch.ones(1, 3, 1)])
    with pytest.raises(ValueError, match=r"LAF: shared factor L \(3, 2\)"):
        task_basis("laf", [torch.ones(3, 2), torch.ones(3, 4)])


def test_rank_checks_name_shape_and_rank() -> None:
    with pytest.raises(ValueError, match=r"rank 0 for weight shape \(8, 3\)"):
        check_laf_rank((8, 3), 0)
    with pytest.raises(ValueError, match=r"got 2 ranks \(2, 2\) for weight shape \(8, 3, 2\)"):
        check_tucker_ranks((8, 3, 2), (2, 2))
    with pytest.raises(ValueError, match=r"rank K_2=7 for weight shape \(4, 5, 6, 2\) exceeds"):
        check_tt_ranks((4, 5, 6, 2), (1, 7, 2))
    with pytest.raises(ValueError, match="MyLayer"):
        check_tucker_ranks((8, 3), (9, 1), what="MyLayer")


@settings(max_examples=30, deadline=None)
@given(shape=shapes, max_rank=st.integers(1, 30))
def test_feasible_tt_ranks_pass_the_check(shape: tuple[int, ...], max_rank: int) -> None:
    ranks = tt_feasible_ranks(shape, max_rank)
    assert check_tt_ranks(shape, ranks) == ranks
    assert all(r <= max_rank for r in ranks)


@settings(max_examples=30, deadline=None)
@given(tucker_factors(), tt_cores())
def test_parameter_counts_match_factor_sizes(
    tucker: tuple[torch.Tensor, list[torch.Tensor]], cores: list[torch.Tensor]
) -> None:
    core, matrices = tucker
    shape = tuple(m.shape[0] for m in matrices)
    expected = core.numel() + sum(m.numel() for m in matrices)
    assert factorized_parameter_count("tucker", shape, tuple(core.shape)) == expected
    tt_shape = tuple(c.shape[1] for c in cores)
    tt_ranks = tuple(c.shape[2] for c in cores[:-1])
    if check_tt_ranks_ok(tt_shape, tt_ranks):
        assert factorized_parameter_count("tt", tt_shape, tt_ranks) == sum(c.numel() for c in cores)
    laf_shape = (*shape[:-1], shape[-1])
    rank = min(math.prod(shape[:-1]), shape[-1])
    assert factorized_parameter_count("laf", laf_shape, rank) == rank * (math.prod(shape[:-1]) + shape[-1])


def check_tt_ranks_ok(shape: tuple[int, ...], ranks: tuple[int, ...]) -> bool:
    try:
        check_tt_ranks(shape, ranks)
    except ValueError:
        return False
    return True
