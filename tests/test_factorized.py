"""mtlkit.factorized: factorisation classes, rank rules, contraction plans (against oracles)."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest
import tensorly as tl
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tensorly.cp_tensor import cp_to_tensor

import mtlkit.factorized._cp as cp_module
from mtlkit.decomp import relative_error
from mtlkit.factorized import (
    CP,
    LAF,
    TT,
    Factorization,
    ParameterBudget,
    ProportionalBudget,
    Ranks,
    RelativeError,
    SpectralError,
    Tucker,
    best_multiply_adds,
    plan_contraction,
)

KINDS: tuple[type[Factorization], ...] = (LAF, Tucker, TT, CP)


def _weights(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@settings(max_examples=30, deadline=None)
@given(
    shape=st.lists(st.integers(1, 5), min_size=2, max_size=4).map(tuple),
    eps=st.sampled_from([0.0, 0.05, 0.2, 0.5]),
    kind=st.sampled_from(KINDS),
    seed=st.integers(0, 999),
)
def test_relative_error_rule_meets_its_bound(
    shape: tuple[int, ...], eps: float, kind: type[Factorization], seed: int
) -> None:
    weights = _weights(shape, seed)
    made = kind.from_tensor(weights, RelativeError(eps))
    assert made.shape == shape
    assert relative_error(weights, made.compose()) <= eps + 1e-6
    assert made.parameter_count == kind.count(shape, made.ranks) == sum(p.numel() for p in made.parameters())


@settings(max_examples=30, deadline=None)
@given(
    shape=st.lists(st.integers(1, 5), min_size=2, max_size=4).map(tuple),
    kind=st.sampled_from(KINDS),
    cap=st.integers(1, 6),
    seed=st.integers(0, 999),
)
def test_task_basis_and_network_compose_to_the_same_weights(
    shape: tuple[int, ...], kind: type[Factorization], cap: int, seed: int
) -> None:
    torch.manual_seed(seed)
    made = kind.random(shape, Ranks(cap), dtype=torch.float64)
    weights = made.compose()
    basis, task_matrix = made.task_basis()
    torch.testing.assert_close(torch.tensordot(basis, task_matrix, dims=([-1], [1])), weights)
    modes = "abcdefgh"[: len(shape)]
    subscripts, tensors = made.network(modes)
    torch.testing.assert_close(torch.einsum(f"{','.join(subscripts)}->{modes}", *tensors), weights)
    assert made.task_factor().shape == (task_matrix.shape[1], shape[-1])


def test_cp_matches_tensorly() -> None:
    torch.manual_seed(0)
    made = CP.random((4, 3, 5), Ranks(2), dtype=torch.float64)
    with tl.backend_context("pytorch"):
        reference = cp_to_tensor((torch.ones(2, dtype=torch.float64), made.factors()))
    torch.testing.assert_close(made.compose(), reference)


@given(
    shape=st.lists(st.integers(1, 7), min_size=3, max_size=4).map(tuple),
    rank=st.integers(1, 6),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=40, deadline=None)
def test_cp_random_at_a_shape_fixed_rank_draws_factors_with_the_dense_draws_expected_norm(
    shape: tuple[int, ...], rank: int, seed: int
) -> None:
    # No ALS on a structureless dense draw: the factors are drawn, and ‖Ŵ‖ = √(Π D / (3 fan_in)).
    state = torch.get_rng_state()
    made = CP.random(shape, Ranks(rank), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    assert torch.equal(torch.get_rng_state(), state)  # its own generator: the caller's stream is untouched
    assert made.ranks == (min(rank, CP.max_rank(shape)),)
    expected = math.sqrt(math.prod(shape) / (3 * math.prod(shape[:-2])))
    assert math.isclose(float(made.compose().detach().norm()), expected, rel_tol=1e-9)
    again = CP.random(shape, Ranks(rank), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    assert all(torch.equal(a, b) for a, b in zip(made.factors(), again.factors(), strict=True))


def test_cp_random_runs_als_only_for_an_error_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    fits: list[int] = []
    als = cp_module._als

    def counted(weights: torch.Tensor, rank: int) -> list[torch.Tensor]:
        fits.append(rank)
        return als(weights, rank)

    monkeypatch.setattr(cp_module, "_als", counted)
    CP.random((8, 6, 3), Ranks(3))
    CP.random((8, 6, 3), ParameterBudget(0.5))
    assert fits == []
    made = CP.random((8, 6, 3), RelativeError(0.5))
    assert fits and made.ranks[0] in fits


@pytest.mark.parametrize("shape", [(6, 5, 4), (10, 8, 6)])
def test_cp_als_fits_an_exact_low_rank_tensor_within_the_rank_searchs_slack(shape: tuple[int, ...]) -> None:
    # The Gram identity reads errors under ≈ 1e-8 as cancellation noise: ALS must not stop there,
    # above RelativeError's 1e-9 slack, or ε = 0 climbs past the tensor's rank.
    generator = torch.Generator().manual_seed(0)
    weights = cp_module._compose([torch.randn(d, 3, generator=generator, dtype=torch.float64) for d in shape])
    assert relative_error(weights, cp_module._compose(cp_module._als(weights, 3))) < 1e-9
    assert CP.from_tensor(weights, RelativeError(0.0)).ranks == (3,)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fan_in", [0, -3, 2.5])
def test_random_names_a_bad_fan_in(kind: type[Factorization], fan_in: object) -> None:
    with pytest.raises(ValueError, match=rf"layer fc1: fan_in must be a positive int, got {fan_in}"):
        kind.random((4, 3, 2), Ranks(2), fan_in=fan_in, what="layer fc1")  # type: ignore[arg-type]


def test_gradcheck_through_every_composition() -> None:
    for kind in KINDS:
        made = kind.random((3, 2, 4), Ranks(2), dtype=torch.float64)
        names = made.factor_names
        params = tuple(p.detach().clone().requires_grad_() for p in made.factors())
        # The module's forward is its composition: differentiate it in the factors, float64.
        assert torch.autograd.gradcheck(
            lambda *fs, m=made, n=names: torch.func.functional_call(m, dict(zip(n, fs, strict=True)), ()), params
        )


def test_spectral_rule_keeps_singular_values_above_eps_sigma1() -> None:
    weights = torch.zeros(4, 3, 2, dtype=torch.float64)
    weights[0, 0, 0], weights[1, 1, 1], weights[2, 2, 0] = 1.0, 0.05, 0.5
    assert LAF.from_tensor(weights, SpectralError(0.1)).ranks == (1,)
    assert Tucker.from_tensor(weights, SpectralError(0.1)).ranks == (2, 2, 1)
    assert TT.from_tensor(weights, SpectralError(0.1)).ranks == (2, 1)
    with pytest.raises(ValueError, match=r"layer fc1: SpectralError\(0\.1\) for weight shape \(4, 3, 2\): .* no CP"):
        CP.from_tensor(weights, SpectralError(0.1), what="layer fc1")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fraction", [0.25, 0.5, 1.0])
def test_parameter_budget_is_the_largest_cap_within_budget(kind: type[Factorization], fraction: float) -> None:
    shape = (12, 8, 6)
    budget = fraction * math.prod(shape)
    made = kind.from_tensor(_weights(shape, 0), ParameterBudget(fraction))
    assert made.parameter_count <= budget
    caps = [kind.resolve_ranks(shape, Ranks(c), "x") for c in range(1, 13 * 13)]
    fitting = [kind.count(shape, r) for r in caps if kind.count(shape, r) <= budget]
    assert made.parameter_count == max(fitting)


@settings(max_examples=40, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    shape=st.lists(st.integers(1, 9), min_size=2, max_size=4).map(tuple),
    fraction=st.sampled_from([0.3, 0.5, 0.8, 1.0]),
)
def test_proportional_budget_is_the_largest_shared_share_within_budget(
    kind: type[Factorization], shape: tuple[int, ...], fraction: float
) -> None:
    # Oracle: scan alpha on a grid finer than any rank step; the rule's count is the largest that fits.
    budget = fraction * math.prod(shape)
    full = kind.useful_ranks(shape, "x")

    def at(alpha: Fraction) -> tuple[int, ...]:
        return kind.resolve_ranks(shape, Ranks(*(max(1, math.ceil(alpha * r)) for r in full)), "x")

    # ceil(alpha R_n) only changes at alpha = k / R_n: every rank vector the rule can pick is at one of them.
    alphas = {Fraction(k, r) for r in full for k in range(r + 1)}
    fitting = [kind.count(shape, at(a)) for a in alphas if kind.count(shape, at(a)) <= budget]
    if not fitting:
        with pytest.raises(ValueError, match="ProportionalBudget"):
            kind.proportional_ranks(shape, fraction, "x")
        return
    ranks = kind.proportional_ranks(shape, fraction, "x")
    assert kind.count(shape, ranks) == max(fitting)
    made = kind.from_tensor(_weights(shape, 1), ProportionalBudget(fraction))
    assert made.ranks == ranks and made.parameter_count <= budget


@pytest.mark.parametrize("kind", [LAF, Tucker, TT])
def test_proportional_budget_lowers_the_task_rank_where_a_uniform_cap_does_not(kind: type[Factorization]) -> None:
    shape = (4, 4, 32, 64, 10)  # DMTRL's MNIST conv2, ten tasks
    proportional = kind.random(shape, ProportionalBudget(0.4))
    assert kind.task_factor(proportional).shape[0] < 10
    assert proportional.parameter_count <= 0.4 * math.prod(shape)
    if kind is not LAF:  # LAF has one rank, the task rank, so both rules agree there
        assert kind.random(shape, ParameterBudget(0.4)).task_factor().shape[0] == 10


def test_rules_are_validated_at_construction() -> None:
    for bad in (1.0, 1.5, -0.1, float("nan")):
        with pytest.raises((ValueError, TypeError), match="eps"):
            RelativeError(bad)
        with pytest.raises((ValueError, TypeError), match="eps"):
            SpectralError(bad)
    for bad in (0.0, 1.1):
        with pytest.raises(ValueError, match="fraction must be in"):
            ParameterBudget(bad)
        with pytest.raises(ValueError, match="ProportionalBudget: fraction must be in"):
            ProportionalBudget(bad)
    with pytest.raises(ValueError, match=r"positive int, got \(2, 0\)"):
        Ranks(2, 0)
    with pytest.raises(TypeError, match="positive int"):
        Ranks(2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"layer fc1: ranks \(2, 9, 1\) for weight shape \(6, 3, 2\)"):
        Tucker.from_tensor(_weights((6, 3, 2), 0), Ranks(2, 9, 1), what="layer fc1")
    with pytest.raises(ValueError, match="LAF takes one rank K"):
        LAF.random((6, 3, 2), Ranks(2, 2))
    with pytest.raises(ValueError, match=r"ParameterBudget.*rank 1 already needs"):
        Tucker.random((50, 50, 2), ParameterBudget(0.001))
    with pytest.raises(ValueError, match="NaN/inf"):
        LAF.from_tensor(torch.tensor([[1.0, float("nan")], [0.0, 1.0]]), RelativeError(0.1))
    with pytest.raises(TypeError, match="rule must be a RankRule"):
        LAF.from_tensor(torch.ones(2, 2), 0.1)  # type: ignore[arg-type]


def test_random_init_has_the_dense_scale() -> None:
    torch.manual_seed(0)
    for kind in KINDS:
        weights = kind.random((64, 32, 4), Ranks(2)).compose()
        # std of U(±1/8) is 1/(8√3); the task factor is rescaled to the dense draw's norm.
        assert weights.pow(2).mean().sqrt().item() * 8 * math.sqrt(3) == pytest.approx(1.0, rel=0.05)


# ------------------------------------------------------------------------------------- plans


def _all_orders_minimum(subscripts: list[str], output: str, shapes: list[tuple[int, ...]]) -> int:
    """Brute force over every sequence of pairwise contractions (the plan's second oracle)."""
    sizes = {i: s for term, shape in zip(subscripts, shapes, strict=True) for i, s in zip(term, shape, strict=True)}

    def search(terms: tuple[str, ...]) -> float:
        if len(terms) == 1:
            return 0
        best = math.inf
        for a, b in itertools.combinations(range(len(terms)), 2):
            rest = [t for k, t in enumerate(terms) if k not in (a, b)]
            needed = set(output).union(*rest) if rest else set(output)
            merged = "".join(sorted((set(terms[a]) | set(terms[b])) & needed))
            cost = math.prod(sizes[i] for i in set(terms[a]) | set(terms[b]))
            best = min(best, cost + search((*rest, merged)))
        return best

    return int(search(tuple(subscripts)))


@settings(max_examples=40, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    dims=st.tuples(st.integers(1, 40), st.integers(1, 40), st.integers(1, 6)),
    batch=st.integers(1, 64),
    cap=st.integers(1, 8),
    shared=st.booleans(),
)
def test_planner_finds_the_minimal_multiply_adds(
    kind: type[Factorization], dims: tuple[int, int, int], batch: int, cap: int, shared: bool
) -> None:
    made = kind.random(dims, Ranks(cap))
    subscripts, tensors = made.network("iot")
    subscripts = ["bi" if shared else "tbi", *subscripts]
    shapes = [(batch, dims[0]) if shared else (dims[2], batch, dims[0]), *(tuple(t.shape) for t in tensors)]
    plan = plan_contraction(subscripts, "tbo", shapes, ["x", *made.factor_names])
    best = best_multiply_adds(subscripts, "tbo", shapes)
    assert best == _all_orders_minimum(subscripts, "tbo", shapes)
    assert plan.multiply_adds <= 1.1 * best
    assert plan.multiply_adds == sum(step.multiply_adds for step in plan.steps)


def test_plan_override_is_validated_and_costed() -> None:
    shapes = [(64, 784), (784, 3), (3, 10)]
    compose_first = plan_contraction(["bi", "iK", "Kt"], "tb", shapes, ["x", "L", "S"], path=[(1, 2), (0, 1)])
    assert compose_first.multiply_adds == 784 * 3 * 10 + 64 * 784 * 10
    with pytest.raises(ValueError):
        plan_contraction(["bi", "iK", "Kt"], "tb", shapes, ["x", "L", "S"], path=[(0, 5)])


def test_leading_is_validated() -> None:
    shapes = [(64, 784), (784, 3), (3, 10)]
    for bad in ("tx", "tt", "K"):  # not in the output, repeated, contracted away
        with pytest.raises(ValueError, match=f"leading={bad!r}"):
            plan_contraction(["bi", "iK", "Kt"], "tb", shapes, ["x", "L", "S"], leading=bad)


@settings(max_examples=40, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    dims=st.tuples(st.integers(1, 12), st.integers(1, 12), st.integers(1, 5)),
    batch=st.integers(1, 9),
    cap=st.integers(1, 6),
    shared=st.booleans(),
    order=st.permutations("tbo"),
    count=st.integers(0, 3),
)
def test_leading_reorders_every_intermediate_and_nothing_else(
    kind: type[Factorization],
    dims: tuple[int, int, int],
    batch: int,
    cap: int,
    shared: bool,
    order: list[str],
    count: int,
) -> None:
    leading = "".join(order[:count])
    made = kind.random(dims, Ranks(cap))
    subscripts, tensors = made.network("iot")
    subscripts = ["bi" if shared else "tbi", *subscripts]
    shapes = [(batch, dims[0]) if shared else (dims[2], batch, dims[0]), *(tuple(t.shape) for t in tensors)]
    names = ["x", *made.factor_names]
    plain = plan_contraction(subscripts, "tbo", shapes, names)
    led = plan_contraction(subscripts, "tbo", shapes, names, leading=leading)
    assert (led.path, led.multiply_adds) == (plain.path, plain.multiply_adds)
    for number, (a, b) in enumerate(zip(plain.steps, led.steps, strict=True)):
        (a_in, a_out), (b_in, b_out) = a.equation.split("->"), b.equation.split("->")
        same_terms = [sorted(t) for t in a_in.split(",")] == [sorted(t) for t in b_in.split(",")]
        assert same_terms and (a.left, a.right, a.multiply_adds) == (b.left, b.right, b.multiply_adds)
        if number == len(plain.steps) - 1:
            assert b_out == "tbo"
            continue
        first = "".join(i for i in leading if i in a_out)
        assert b_out == first + "".join(i for i in a_out if i not in first)
