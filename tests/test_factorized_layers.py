"""FactorizedLinear / FactorizedConv2d: dense equivalence, batched kernels vs the loop, cache."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from mtlkit.decomp import relative_error
from mtlkit.factorized import CP, LAF, TT, Factorization, Ranks, RelativeError, SpectralError, Tucker, plan_contraction
from mtlkit.nn import FactorizedConv2d, FactorizedLinear

METHODS: tuple[type[Factorization], ...] = (LAF, Tucker, TT, CP)


def _dense_linears(count: int, fan_in: int, fan_out: int, seed: int) -> list[nn.Linear]:
    torch.manual_seed(seed)
    return [nn.Linear(fan_in, fan_out) for _ in range(count)]


def _dense_convs(count: int, cin: int, cout: int, k: int, seed: int, **kw: int) -> list[nn.Conv2d]:
    torch.manual_seed(seed)
    return [nn.Conv2d(cin, cout, k, **kw) for _ in range(count)]


@settings(max_examples=25, deadline=None)
@given(
    tasks=st.integers(1, 4),
    fan_in=st.integers(1, 6),
    fan_out=st.integers(1, 5),
    eps=st.sampled_from([0.0, 0.1, 0.3]),
    method=st.sampled_from(METHODS),
    seed=st.integers(0, 999),
)
def test_linear_from_dense_reproduces_within_eps(
    tasks: int, fan_in: int, fan_out: int, eps: float, method: type[Factorization], seed: int
) -> None:
    dense = _dense_linears(tasks, fan_in, fan_out, seed)
    layer = FactorizedLinear.from_dense(dense, method, RelativeError(eps))  # type: ignore[arg-type]
    stacked = torch.stack([d.weight.T for d in dense], dim=-1)
    assert relative_error(stacked, layer.task_weights()) <= eps + 1e-5
    torch.testing.assert_close(layer.bias, torch.stack([d.bias for d in dense], dim=-1))


@settings(max_examples=25, deadline=None)
@given(
    tasks=st.integers(1, 3),
    cin=st.integers(1, 3),
    cout=st.integers(1, 4),
    k=st.integers(1, 3),
    eps=st.sampled_from([0.0, 0.1, 0.3]),
    method=st.sampled_from(METHODS),
    seed=st.integers(0, 999),
)
def test_conv_from_dense_reproduces_within_eps(
    tasks: int, cin: int, cout: int, k: int, eps: float, method: type[Factorization], seed: int
) -> None:
    dense = _dense_convs(tasks, cin, cout, k, seed, padding=1)
    layer = FactorizedConv2d.from_dense(dense, method, RelativeError(eps))  # type: ignore[arg-type]
    stacked = torch.stack([d.weight.permute(2, 3, 1, 0) for d in dense], dim=-1)
    assert relative_error(stacked, layer.task_weights()) <= eps + 1e-5
    assert layer.padding == (1, 1)


@pytest.mark.parametrize("method", METHODS)
def test_single_task_behaves_as_the_dense_layer(method: type[Factorization]) -> None:
    (linear,) = _dense_linears(1, 7, 3, 0)
    x = torch.randn(5, 7)
    torch.testing.assert_close(FactorizedLinear.from_dense([linear], method, RelativeError(0.0))(x)[0], linear(x))
    (conv,) = _dense_convs(1, 2, 3, 3, 0, stride=2, padding=1)
    images = torch.randn(2, 2, 9, 9)
    torch.testing.assert_close(FactorizedConv2d.from_dense([conv], method, RelativeError(0.0))(images)[0], conv(images))


@settings(max_examples=25, deadline=None)
@given(
    tasks=st.integers(1, 4),
    batch=st.integers(1, 4),
    method=st.sampled_from(METHODS),
    shared=st.booleans(),
    rank=st.integers(1, 3),
    seed=st.integers(0, 999),
)
def test_linear_batched_forward_and_backward_equal_the_loop(
    tasks: int, batch: int, method: type[Factorization], shared: bool, rank: int, seed: int
) -> None:
    torch.manual_seed(seed)
    layer = FactorizedLinear(5, 4, tasks, method, rule=Ranks(rank))  # type: ignore[arg-type]
    x = torch.randn(batch, 5) if shared else torch.randn(tasks, batch, 5)
    _assert_same_values_and_gradients(layer, x)


@settings(max_examples=25, deadline=None)
@given(
    tasks=st.integers(1, 4),
    method=st.sampled_from(METHODS),
    shared=st.booleans(),
    stride=st.integers(1, 2),
    padding=st.integers(0, 1),
    seed=st.integers(0, 999),
)
def test_conv_batched_forward_and_backward_equal_the_loop(
    tasks: int, method: type[Factorization], shared: bool, stride: int, padding: int, seed: int
) -> None:
    torch.manual_seed(seed)
    layer = FactorizedConv2d(2, 3, 3, tasks, method, stride=stride, padding=padding, rule=Ranks(2))  # type: ignore[arg-type]
    x = torch.randn(2, 2, 6, 6) if shared else torch.randn(tasks, 2, 2, 6, 6)
    _assert_same_values_and_gradients(layer, x)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize(
    ("in_features", "out_features", "tasks", "batch", "cap"),
    [(16, 12, 3, 4, 2), (16, 12, 3, 4, 12), (40, 3, 7, 1, 5), (5, 30, 2, 33, 1)],
)
def test_every_linear_plan_equals_the_loop_in_float64(
    method: type[Factorization], shared: bool, in_features: int, out_features: int, tasks: int, batch: int, cap: int
) -> None:
    torch.manual_seed(0)
    layer = FactorizedLinear(in_features, out_features, tasks, method, Ranks(cap)).double()
    x = torch.randn(batch, in_features) if shared else torch.randn(tasks, batch, in_features)
    _assert_same_values_and_gradients(layer, x.double(), tolerance=1e-10)
    assert layer.plan is not None and layer.plan.names[0] == "x"
    assert layer.plan is layer.plan_for(batch, shared, "cpu", torch.float64)  # cached, one per shape
    for step in layer.plan.steps[:-1]:  # intermediates are stored task-, then batch-major
        result = step.equation.split("->")[1]
        carried = "".join(i for i in "tb" if i in result)
        assert result.startswith(carried), step.equation


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("leading", ["", "tb", "bo", "otb"])
def test_every_order_in_every_layout_equals_the_loop_in_float64(
    method: type[Factorization], shared: bool, leading: str
) -> None:
    torch.manual_seed(0)
    layer = FactorizedLinear(9, 7, 3, method, Ranks(2), bias=False).double()
    x = torch.randn(*(() if shared else (3,)), 4, 9, dtype=torch.float64)
    subscripts, tensors, names = layer._network(shared)
    shapes = [tuple(x.shape), *(tuple(t.shape) for t in tensors)]
    looped = layer.forward_per_task(x)
    upstream = torch.randn_like(looped)
    expected = torch.autograd.grad((looped * upstream).sum(), list(layer.parameters()))
    for first in [(a, b) for a in range(len(names)) for b in range(a + 1, len(names))]:
        path = [first] + [(0, 1)] * (len(names) - 2)
        plan = plan_contraction(subscripts, "tbo", shapes, names, path=path, leading=leading)
        ours = plan([x, *tensors])
        torch.testing.assert_close(ours, looped, rtol=1e-9, atol=1e-10)
        grads = torch.autograd.grad((ours * upstream).sum(), list(layer.parameters()))
        for a, b in zip(grads, expected, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("method", METHODS)
def test_every_order_of_the_contraction_equals_the_loop(method: type[Factorization]) -> None:
    # Overriding the plan with each possible first pair (compose-first included) changes the cost, never the value.
    torch.manual_seed(0)
    probe = FactorizedLinear(9, 7, 3, method, Ranks(2)).double()
    operands = 1 + len(probe.weight.factor_names)
    x = torch.randn(3, 4, 9, dtype=torch.float64)
    costs = set()
    for first in [(a, b) for a in range(operands) for b in range(a + 1, operands)]:
        path = [first] + [(0, 1)] * (operands - 2)
        layer = FactorizedLinear(9, 7, 3, method, Ranks(2), path=path).double()
        layer.load_state_dict(probe.state_dict())
        _assert_same_values_and_gradients(layer, x, tolerance=1e-10)
        assert layer.plan is not None and layer.plan.path == tuple(path)
        costs.add(layer.plan.multiply_adds)
    probe(x)
    assert probe.plan is not None and probe.plan.multiply_adds == min(costs | {probe.plan.multiply_adds})


def test_compressive_plans_never_build_the_weights() -> None:
    # Tucker at rank 2 on a 1024 → 512 layer: (x·U0)·(core·U2)·U1 costs far less than composing.
    layer = FactorizedLinear(1024, 512, 10, Tucker, Ranks(2))
    layer(torch.randn(64, 1024))
    assert layer.plan is not None
    assert layer.plan.multiply_adds < 0.01 * 64 * 1024 * 512 * 10
    assert all("io" not in step.equation.split("->")[1] for step in layer.plan.steps)


@pytest.mark.parametrize("method", METHODS)
def test_forward_tasks_takes_ragged_lists_and_equals_the_loop(method: type[Factorization]) -> None:
    torch.manual_seed(0)
    for layer, shape in (
        (FactorizedLinear(16, 12, 3, method, rule=Ranks(2)), (16,)),  # type: ignore[arg-type]
        (FactorizedConv2d(2, 3, 3, 3, method, rule=Ranks(2)), (2, 6, 6)),
    ):  # type: ignore[arg-type]
        ragged = [torch.randn(n, *shape) for n in (1, 2, 3)]
        for task, (out, x) in enumerate(zip(layer.forward_tasks(ragged), ragged, strict=True)):
            torch.testing.assert_close(out, layer.forward_per_task(x.expand(3, *x.shape))[task])
        stacked = torch.randn(3, 4, *shape)
        ours, oracle = torch.stack(layer.forward_tasks(stacked)), layer.forward_per_task(stacked)
        torch.testing.assert_close(ours, oracle)
        for a, b in zip(
            torch.autograd.grad(ours.square().sum(), list(layer.parameters())),
            torch.autograd.grad(oracle.square().sum(), list(layer.parameters())),
            strict=True,
        ):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
        shared = torch.randn(4, *shape)
        torch.testing.assert_close(torch.stack(layer.forward_tasks(shared)), layer.forward_per_task(shared))
        with pytest.raises(ValueError, match="2 task inputs for T=3"):
            layer.forward_tasks(ragged[:2])


def _assert_same_values_and_gradients(
    layer: FactorizedLinear | FactorizedConv2d, x: torch.Tensor, tolerance: float = 1e-5
) -> None:
    x = x.detach().requires_grad_()  # the input's gradient is what a layer below receives
    batched, looped = layer(x), layer.forward_per_task(x)
    assert batched.shape == looped.shape and batched.shape[0] == layer.num_tasks
    torch.testing.assert_close(batched, looped, rtol=tolerance * 10, atol=tolerance)
    upstream = torch.randn_like(batched)
    inputs = [x, *layer.parameters()]
    grads_batched = torch.autograd.grad((batched * upstream).sum(), inputs)
    grads_looped = torch.autograd.grad((layer.forward_per_task(x) * upstream).sum(), inputs)
    for a, b in zip(grads_batched, grads_looped, strict=True):
        torch.testing.assert_close(a, b, rtol=tolerance * 10, atol=tolerance)


def test_eval_cache_is_used_and_invalidated() -> None:
    torch.manual_seed(0)
    layer = FactorizedLinear(6, 3, 2, Tucker, Ranks(2))
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    layer.eval()
    x = torch.randn(4, 6)
    with torch.no_grad():
        first = layer(x)
        cached = layer.task_weights()
        assert layer.task_weights() is cached  # composed once
    layer.train()
    assert not layer._cache
    layer(x).sum().backward()
    optimizer.step()  # bumps every factor's _version
    layer.eval()
    with torch.no_grad():
        assert not torch.allclose(layer(x), first)
        assert torch.allclose(layer(x), layer.forward_per_task(x))
    # Eval mode with autograd on must not hand out a detached cached weight.
    assert layer(x).requires_grad


@pytest.mark.parametrize("method", METHODS)
def test_parameters_are_contiguous(method: type[Factorization]) -> None:
    # A strided parameter costs a copy of itself and of its gradient in every step (FC1 LAF: +15 %).
    layers = [
        FactorizedLinear(12, 6, 4, method, rule=Ranks(3)),
        FactorizedConv2d(3, 5, 3, 4, method, rule=Ranks(3)),
        FactorizedLinear.from_dense(_dense_linears(4, 12, 6, seed=0), method, RelativeError(0.1)),
        FactorizedConv2d.from_dense(_dense_convs(4, 3, 5, 3, seed=0), method, RelativeError(0.1)),
    ]
    for layer in layers:
        assert all(p.is_contiguous() for p in layer.parameters()), (layer, [p.stride() for p in layer.parameters()])


@pytest.mark.parametrize("method", METHODS)
def test_from_dense_decomposes_the_given_weights_and_draws_nothing(method: type[Factorization]) -> None:
    # No throwaway random layer is built first (issue #20): any random init would move the global stream.
    linears, convs = _dense_linears(3, 12, 6, seed=0), _dense_convs(3, 2, 4, 3, seed=0)
    state = torch.get_rng_state()
    FactorizedLinear.from_dense(linears, method, RelativeError(0.1))
    FactorizedConv2d.from_dense(convs, method, RelativeError(0.1))
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("method", METHODS)
def test_from_dense_keeps_the_dense_dtype(method: type[Factorization]) -> None:
    linear = FactorizedLinear.from_dense([layer.double() for layer in _dense_linears(3, 6, 4, seed=0)], method)
    conv = FactorizedConv2d.from_dense([layer.double() for layer in _dense_convs(3, 2, 4, 3, seed=0)], method)
    for layer in (linear, conv):
        assert {p.dtype for p in layer.parameters()} == {torch.float64}


def test_parameter_count_is_factors_plus_biases() -> None:
    layer = FactorizedConv2d(3, 8, 3, 4, TT, rule=Ranks(2, 3, 4, 2))
    assert layer.parameter_count() == TT.count((3, 3, 3, 8, 4), (2, 3, 4, 2)) + 8 * 4
    assert layer.ranks == (2, 3, 4, 2)
    assert FactorizedLinear(4, 2, 3, LAF, Ranks(2), bias=False).parameter_count() == 2 * 8 + 2 * 3


def test_factors_are_named_parameters() -> None:
    layer = FactorizedLinear(4, 2, 3, Tucker, Ranks(2))
    assert [n for n, _ in layer.named_parameters()] == ["bias", "weight.core", "weight.U0", "weight.U1", "weight.U2"]


def test_clear_errors_name_layer_shape_and_rank() -> None:
    named = r"FactorizedLinear\(6, 3, num_tasks=2\) \(Tucker\): ranks \(2, 4, 1\) for weight shape \(6, 3, 2\)"
    with pytest.raises(ValueError, match=named):
        FactorizedLinear(6, 3, 2, Tucker, Ranks(2, 4, 1))
    with pytest.raises(ValueError, match=r"FactorizedConv2d\(2, 4, 3, num_tasks=5\) \(TT\).*\(3, 3, 2, 4, 5\)"):
        FactorizedConv2d(2, 4, 3, 5, TT, rule=Ranks(3, 10, 8, 5))
    with pytest.raises(ValueError, match="positive int, got \\(0,\\)"):
        FactorizedConv2d(2, 4, 3, 5, LAF, rule=0)
    with pytest.raises(ValueError, match="LAF takes one rank K"):
        FactorizedLinear(6, 3, 2, LAF, Ranks(2, 2))
    spectral_cp = r"from_dense\(2 × nn\.Linear\(6, 3\)\) \(CP\): SpectralError\(0\.1\) for weight shape \(6, 3, 2\)"
    with pytest.raises(ValueError, match=spectral_cp):
        FactorizedLinear.from_dense([nn.Linear(6, 3), nn.Linear(6, 3)], CP, SpectralError(0.1))
    with pytest.raises(TypeError, match="factorization must be a Factorization class"):
        FactorizedLinear(6, 3, 2, nn.Linear)  # type: ignore[arg-type]
    layer = FactorizedLinear(6, 3, 2, LAF, Ranks(1))
    with pytest.raises(ValueError, match=r"expected input \(B, 6\) or \(T=2, B, 6\), got \(3, 4, 6\)"):
        layer(torch.randn(3, 4, 6))
    conv = FactorizedConv2d(2, 4, 3, 5, TT, rule=Ranks(1))
    with pytest.raises(ValueError, match=r"got \(1, 3, 8, 8\)"):
        conv(torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match="all layers must be"):
        FactorizedLinear.from_dense([nn.Linear(3, 2), nn.Linear(3, 4)])
    with pytest.raises(ValueError, match="all layers must be"):
        FactorizedConv2d.from_dense([nn.Conv2d(1, 2, 3), nn.Conv2d(1, 2, 3, stride=2)])


def test_bad_input_names_the_argument_and_value() -> None:
    # issue #21: each bad argument is a ValueError/TypeError that names it and its value.
    with pytest.raises(ValueError, match="num_tasks must be a positive int, got 0"):
        FactorizedLinear(8, 4, num_tasks=0)
    with pytest.raises(TypeError, match=r"in_features must be a positive int, got 2\.5"):
        FactorizedLinear(2.5, 4, num_tasks=2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="out_channels must be a positive int, got -1"):
        FactorizedConv2d(1, -1, 3, num_tasks=2)
    not_a_conv = r"layers\[0\] is Linear\(in_features=3, out_features=2, bias=True\), not an nn.Conv2d"
    with pytest.raises(TypeError, match=not_a_conv):
        FactorizedConv2d.from_dense([nn.Linear(3, 2)])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"non-empty sequence of nn\.Linear"):
        FactorizedLinear.from_dense(nn.Linear(3, 2))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="non-empty sequence"):
        FactorizedLinear.from_dense([])
    broken = nn.Linear(3, 2)
    with torch.no_grad():
        broken.weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"weights of shape \(3, 2, 2\) hold 1 NaN/inf"):
        FactorizedLinear.from_dense([broken, nn.Linear(3, 2)])
    for eps in (1.0, 2.0):
        with pytest.raises(ValueError, match=f"eps must be in \\[0, 1\\), got {eps}"):
            FactorizedLinear.from_dense([nn.Linear(3, 2)], LAF, RelativeError(eps))


def test_deprecated_string_api_still_works_and_warns() -> None:
    torch.manual_seed(0)
    dense = _dense_linears(3, 6, 4, seed=0)
    with pytest.warns(DeprecationWarning, match="names are deprecated"):
        old = FactorizedLinear.from_dense(dense, "tucker", eps=0.1)  # type: ignore[arg-type]
    new = FactorizedLinear.from_dense(dense, Tucker, RelativeError(0.1))
    torch.testing.assert_close(old.task_weights(), new.task_weights())
    with pytest.warns(DeprecationWarning, match="eps= and ranks= are deprecated"):
        assert FactorizedLinear(6, 4, 3, LAF, ranks=2).ranks == (2,)
    # The shim maps the names 0.1 had; CP came with the classes and has none.
    with pytest.raises(ValueError, match="unknown factorization 'cp'"):
        FactorizedLinear(6, 4, 3, "cp")
