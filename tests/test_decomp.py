"""ε-truncated decompositions: the error bound, rank monotonicity, fixed ranks and random init."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mtlkit.decomp import decompose, random_factors, relative_error, truncation_rank
from mtlkit.factorization import compose

# These tests cover the 0.1 string-dispatched functions, kept as deprecated shims.
pytestmark = pytest.mark.filterwarnings("ignore:mtlkit.*deprecated:DeprecationWarning")

METHODS = ("laf", "tucker", "tt")


@st.composite
def task_stacked_weights(draw: st.DrawFn) -> torch.Tensor:
    """Low-rank-plus-noise tensors: the regime of trained single-task weights."""
    shape = tuple(draw(st.lists(st.integers(1, 6), min_size=2, max_size=4)))
    seed = draw(st.integers(0, 2**16))
    noise = draw(st.sampled_from([0.0, 0.05, 0.3]))
    generator = torch.Generator().manual_seed(seed)
    rank = draw(st.integers(1, 3))
    factors = [torch.randn(d, rank, generator=generator, dtype=torch.float64) for d in shape]
    low_rank = torch.einsum(
        ",".join(f"{chr(97 + i)}z" for i in range(len(shape))) + "->" + "".join(chr(97 + i) for i in range(len(shape))),
        *factors,
    )
    return low_rank + noise * torch.randn(*shape, generator=generator, dtype=torch.float64)


def _ranks(factors: list[torch.Tensor], method: str) -> tuple[int, ...]:
    if method == "laf":
        return (factors[1].shape[0],)
    if method == "tucker":
        return tuple(factors[0].shape)
    return tuple(core.shape[2] for core in factors[:-1])


@settings(max_examples=40, deadline=None)
@given(weights=task_stacked_weights(), eps=st.floats(0.0, 0.9), method=st.sampled_from(METHODS))
def test_eps_bound_holds(weights: torch.Tensor, eps: float, method: str) -> None:
    factors = decompose(method, weights, eps=eps)  # type: ignore[arg-type]
    assert relative_error(weights, compose(method, factors)) <= eps + 1e-9  # type: ignore[arg-type]


@settings(max_examples=30, deadline=None)
@given(weights=task_stacked_weights(), eps=st.floats(0.0, 0.9), method=st.sampled_from(METHODS))
def test_factors_are_contiguous(weights: torch.Tensor, eps: float, method: str) -> None:
    # A strided factor becomes a strided parameter: one extra copy of it and its gradient per step.
    factors = decompose(method, weights, eps=eps)  # type: ignore[arg-type]
    assert all(f.is_contiguous() for f in factors), [f.stride() for f in factors]


@settings(max_examples=30, deadline=None)
@given(weights=task_stacked_weights(), method=st.sampled_from(METHODS))
def test_ranks_never_grow_as_eps_grows(weights: torch.Tensor, method: str) -> None:
    previous = None
    for eps in (0.0, 0.01, 0.05, 0.1, 0.2, 0.4, 0.8):
        ranks = _ranks(decompose(method, weights, eps=eps), method)  # type: ignore[arg-type]
        if previous is not None:
            assert all(r <= p for r, p in zip(ranks, previous, strict=True)), (eps, ranks, previous)
        previous = ranks


@settings(max_examples=30, deadline=None)
@given(weights=task_stacked_weights(), method=st.sampled_from(METHODS))
def test_zero_eps_is_exact(weights: torch.Tensor, method: str) -> None:
    factors = decompose(method, weights, eps=0.0)  # type: ignore[arg-type]
    assert relative_error(weights, compose(method, factors)) < 1e-6  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.floats(0.0, 10.0), min_size=1, max_size=8), eps=st.floats(0.0, 1.0))
def test_truncation_rank_is_the_smallest_rank_within_eps(values: list[float], eps: float) -> None:
    sigma = torch.tensor(sorted(values, reverse=True), dtype=torch.float64)
    total = math.sqrt(float((sigma**2).sum()))
    rank = truncation_rank(sigma, eps)
    tail = lambda k: math.sqrt(float((sigma[k:] ** 2).sum()))  # noqa: E731
    assert tail(rank) <= eps * total * (1 + 1e-9) + 1e-300
    assert rank == 1 or tail(rank - 1) > eps * total


def test_fixed_ranks_give_requested_shapes() -> None:
    weights = torch.randn(4, 5, 6, dtype=torch.float64)
    assert [tuple(f.shape) for f in decompose("laf", weights, ranks=3)] == [(4, 5, 3), (3, 6)]
    tucker = decompose("tucker", weights, ranks=(2, 3, 4))
    assert [tuple(f.shape) for f in tucker] == [(2, 3, 4), (4, 2), (5, 3), (6, 4)]
    tt = decompose("tt", weights, ranks=(3, 2))
    assert [tuple(f.shape) for f in tt] == [(1, 4, 3), (3, 5, 2), (2, 6, 1)]
    # Tucker ranks above the numerical rank are completed with orthonormal columns.
    padded = decompose("tucker", torch.randn(7, 1, 2, dtype=torch.float64), ranks=(5, 1, 2))
    assert torch.allclose(padded[1].T @ padded[1], torch.eye(5, dtype=torch.float64), atol=1e-10)


def test_low_rank_laf_recovers_the_matrix_rank() -> None:
    generator = torch.Generator().manual_seed(0)
    weights = torch.einsum("ak,bk,tk->abt", *(torch.randn(d, 2, generator=generator) for d in (6, 5, 8)))
    assert decompose("laf", weights, eps=1e-4)[1].shape[0] == 2


def test_float32_in_float32_out() -> None:
    factors = decompose("tucker", torch.randn(3, 4, 5), eps=0.1)
    assert all(f.dtype == torch.float32 for f in factors)


def test_invalid_arguments_raise() -> None:
    weights = torch.randn(3, 4, 5)
    with pytest.raises(ValueError, match="exactly one of eps"):
        decompose("laf", weights)
    with pytest.raises(ValueError, match="exactly one of eps"):
        decompose("tt", weights, eps=0.1, ranks=2)
    with pytest.raises(ValueError, match=r"rank 9 for weight shape \(3, 4, 5\)"):
        decompose("laf", weights, ranks=9)
    with pytest.raises(ValueError, match="one eps per mode"):
        decompose("tucker", weights, eps=[0.1, 0.1])
    with pytest.raises(ValueError, match="eps must be"):
        decompose("laf", weights, eps=-1.0)


@pytest.mark.parametrize("method", METHODS)
def test_random_factors_have_the_dense_init_scale(method: str) -> None:
    torch.manual_seed(0)
    weights = compose(method, random_factors(method, (32, 16, 4), fan_in=32, ranks=2))  # type: ignore[arg-type]
    expected_std = (1 / math.sqrt(32)) / math.sqrt(3)  # std of U(-b, b) is b/√3
    assert weights.std().item() == pytest.approx(expected_std, rel=0.1)
