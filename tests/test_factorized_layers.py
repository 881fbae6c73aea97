"""FactorizedLinear / FactorizedConv2d: dense equivalence, batched kernels vs the loop, cache."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from mtlkit.decomp import relative_error
from mtlkit.factorization import factorized_parameter_count
from mtlkit.nn import FactorizedConv2d, FactorizedLinear

METHODS = ("laf", "tucker", "tt")


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
    tasks: int, fan_in: int, fan_out: int, eps: float, method: str, seed: int
) -> None:
    dense = _dense_linears(tasks, fan_in, fan_out, seed)
    layer = FactorizedLinear.from_dense(dense, method, eps=eps)  # type: ignore[arg-type]
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
    tasks: int, cin: int, cout: int, k: int, eps: float, method: str, seed: int
) -> None:
    dense = _dense_convs(tasks, cin, cout, k, seed, padding=1)
    layer = FactorizedConv2d.from_dense(dense, method, eps=eps)  # type: ignore[arg-type]
    stacked = torch.stack([d.weight.permute(2, 3, 1, 0) for d in dense], dim=-1)
    assert relative_error(stacked, layer.task_weights()) <= eps + 1e-5
    assert layer.padding == (1, 1)


@pytest.mark.parametrize("method", METHODS)
def test_single_task_behaves_as_the_dense_layer(method: str) -> None:
    (linear,) = _dense_linears(1, 7, 3, 0)
    x = torch.randn(5, 7)
    torch.testing.assert_close(FactorizedLinear.from_dense([linear], method, eps=0.0)(x)[0], linear(x))
    (conv,) = _dense_convs(1, 2, 3, 3, 0, stride=2, padding=1)
    images = torch.randn(2, 2, 9, 9)
    torch.testing.assert_close(FactorizedConv2d.from_dense([conv], method, eps=0.0)(images)[0], conv(images))


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
    tasks: int, batch: int, method: str, shared: bool, rank: int, seed: int
) -> None:
    torch.manual_seed(seed)
    layer = FactorizedLinear(5, 4, tasks, method, ranks=rank)  # type: ignore[arg-type]
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
    tasks: int, method: str, shared: bool, stride: int, padding: int, seed: int
) -> None:
    torch.manual_seed(seed)
    layer = FactorizedConv2d(2, 3, 3, tasks, method, stride=stride, padding=padding, ranks=2)  # type: ignore[arg-type]
    x = torch.randn(2, 2, 6, 6) if shared else torch.randn(tasks, 2, 2, 6, 6)
    _assert_same_values_and_gradients(layer, x)
    # On CPU a shared batch loops over tasks; the single-kernel path (accelerators) must agree too.
    torch.testing.assert_close(layer._forward_composed(x, shared), layer.forward_per_task(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("path", ["basis", "composed"])
def test_both_shared_input_paths_equal_the_loop(method: str, path: str) -> None:
    torch.manual_seed(0)
    linear = FactorizedLinear(6, 5, 4, method, ranks=2)  # type: ignore[arg-type]
    conv = FactorizedConv2d(2, 5, 3, 4, method, ranks=2)  # type: ignore[arg-type]
    for layer, x in ((linear, torch.randn(3, 6)), (conv, torch.randn(3, 2, 6, 6))):
        layer.shared_input_path = path  # type: ignore[assignment]
        assert layer._mix_shared_input() == (path == "basis")
        _assert_same_values_and_gradients(layer, x)


@pytest.mark.parametrize("method", ["tucker", "tt"])
@pytest.mark.parametrize("shared", [True, False])
def test_input_projection_path_equals_the_loop(method: str, shared: bool) -> None:
    torch.manual_seed(0)
    low = FactorizedLinear(16, 12, 3, method, ranks=2)  # type: ignore[arg-type]
    assert low._project_input()  # 16·2 + 2·12 < 16·12
    assert not FactorizedLinear(16, 12, 3, method, ranks=12)._project_input()  # type: ignore[arg-type]
    _assert_same_values_and_gradients(low, torch.randn(4, 16) if shared else torch.randn(3, 4, 16))
    assert not FactorizedLinear(16, 12, 3, "laf", ranks=2)._project_input()  # LAF keeps the input axis whole


@pytest.mark.parametrize("method", METHODS)
def test_forward_tasks_takes_ragged_lists_and_equals_the_loop(method: str) -> None:
    torch.manual_seed(0)
    for layer, shape in ((FactorizedLinear(16, 12, 3, method, ranks=2), (16,)),  # type: ignore[arg-type]
                         (FactorizedConv2d(2, 3, 3, 3, method, ranks=2), (2, 6, 6))):  # type: ignore[arg-type]
        ragged = [torch.randn(n, *shape) for n in (1, 2, 3)]
        for task, (out, x) in enumerate(zip(layer.forward_tasks(ragged), ragged, strict=True)):
            torch.testing.assert_close(out, layer.forward_per_task(x.expand(3, *x.shape))[task])
        stacked = torch.randn(3, 4, *shape)
        ours, oracle = torch.stack(layer.forward_tasks(stacked)), layer.forward_per_task(stacked)
        torch.testing.assert_close(ours, oracle)
        for a, b in zip(torch.autograd.grad(ours.square().sum(), list(layer.parameters())),
                        torch.autograd.grad(oracle.square().sum(), list(layer.parameters())), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
        shared = torch.randn(4, *shape)
        torch.testing.assert_close(torch.stack(layer.forward_tasks(shared)), layer.forward_per_task(shared))
        with pytest.raises(ValueError, match="2 task inputs for T=3"):
            layer.forward_tasks(ragged[:2])


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize(("stride", "padding"), [(1, 0), (2, 1)])
def test_tucker_conv_channel_projection_equals_the_loop(shared: bool, stride: int, padding: int) -> None:
    torch.manual_seed(0)
    layer = FactorizedConv2d(8, 6, 3, 3, "tucker", ranks=(3, 3, 2, 2, 2), stride=stride, padding=padding)
    assert layer._project_channels()  # 8·2 + 2·2·9 + 2·6 (+ passes) < 8·6·9
    x = torch.randn(4, 8, 9, 9) if shared else torch.randn(3, 4, 8, 9, 9)
    _assert_same_values_and_gradients(layer, x)
    torch.testing.assert_close(torch.stack(layer.forward_tasks(x)), layer.forward_per_task(x))
    assert not FactorizedConv2d(8, 6, 3, 3, "tucker", ranks=(3, 3, 8, 6, 3))._project_channels()  # full rank
    assert not FactorizedConv2d(8, 6, 3, 3, "tt", ranks=2)._project_channels()  # Tucker only


def test_auto_path_mixes_wide_layers_with_low_task_rank_only() -> None:
    assert FactorizedLinear(1024, 8, 10, "laf", ranks=5)._mix_shared_input()
    assert not FactorizedLinear(1024, 8, 10, "laf", ranks=10)._mix_shared_input()  # K = T: nothing saved
    assert not FactorizedConv2d(1, 8, 5, 10, "laf", ranks=5)._mix_shared_input()  # fan-in 25: memory-bound
    assert FactorizedConv2d(32, 8, 4, 10, "laf", ranks=5)._mix_shared_input()
    layer = FactorizedLinear(4, 2, 3, "laf", ranks=1)
    layer.shared_input_path = "fastest"  # type: ignore[assignment]
    with pytest.raises(ValueError, match="shared_input_path must be"):
        layer(torch.randn(2, 4))


def _assert_same_values_and_gradients(layer: FactorizedLinear | FactorizedConv2d, x: torch.Tensor) -> None:
    batched, looped = layer(x), layer.forward_per_task(x)
    assert batched.shape == looped.shape and batched.shape[0] == layer.num_tasks
    torch.testing.assert_close(batched, looped, rtol=1e-4, atol=1e-5)
    upstream = torch.randn_like(batched)
    grads_batched = torch.autograd.grad((batched * upstream).sum(), list(layer.parameters()))
    grads_looped = torch.autograd.grad((layer.forward_per_task(x) * upstream).sum(), list(layer.parameters()))
    for a, b in zip(grads_batched, grads_looped, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_eval_cache_is_used_and_invalidated() -> None:
    torch.manual_seed(0)
    layer = FactorizedLinear(6, 3, 2, "tucker", ranks=2)
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
def test_parameters_are_contiguous(method: str) -> None:
    # A strided parameter costs a copy of itself and of its gradient in every step (FC1 LAF: +15 %).
    layers = [
        FactorizedLinear(12, 6, 4, method, ranks=3),
        FactorizedConv2d(3, 5, 3, 4, method, ranks=3),
        FactorizedLinear.from_dense(_dense_linears(4, 12, 6, seed=0), method, eps=0.1),
        FactorizedConv2d.from_dense(_dense_convs(4, 3, 5, 3, seed=0), method, eps=0.1),
    ]
    for layer in layers:
        assert all(p.is_contiguous() for p in layer.parameters()), (layer, [p.stride() for p in layer.parameters()])


@pytest.mark.parametrize("method", METHODS)
def test_from_dense_keeps_the_dense_dtype(method: str) -> None:
    linear = FactorizedLinear.from_dense([layer.double() for layer in _dense_linears(3, 6, 4, seed=0)], method)
    conv = FactorizedConv2d.from_dense([layer.double() for layer in _dense_convs(3, 2, 4, 3, seed=0)], method)
    for layer in (linear, conv):
        assert {p.dtype for p in layer.parameters()} == {torch.float64}


def test_parameter_count_is_factors_plus_biases() -> None:
    layer = FactorizedConv2d(3, 8, 3, 4, "tt", ranks=(2, 3, 4, 2))
    expected = factorized_parameter_count("tt", (3, 3, 3, 8, 4), (2, 3, 4, 2)) + 8 * 4
    assert layer.parameter_count() == expected
    assert layer.ranks == (2, 3, 4, 2)
    assert FactorizedLinear(4, 2, 3, "laf", ranks=2, bias=False).parameter_count() == 2 * 8 + 2 * 3


def test_clear_errors_name_layer_shape_and_rank() -> None:
    with pytest.raises(ValueError, match=r"FactorizedLinear\(tucker, weight shape \(6, 3, 2\)\)"):
        FactorizedLinear(6, 3, 2, "tucker", ranks=(2, 4, 1))
    with pytest.raises(ValueError, match=r"FactorizedConv2d\(tt, weight shape \(3, 3, 2, 4, 5\)\).*ranks"):
        FactorizedConv2d(2, 4, 3, 5, "tt", ranks=(3, 9, 8, 5, 1))
    with pytest.raises(ValueError, match="rank must be a positive integer, got 0"):
        FactorizedConv2d(2, 4, 3, 5, "laf", ranks=0)
    with pytest.raises(ValueError, match="LAF takes a single integer rank"):
        FactorizedLinear(6, 3, 2, "laf", ranks=(2, 2))
    with pytest.raises(ValueError, match="unknown method 'cp'"):
        FactorizedLinear(6, 3, 2, "cp")  # type: ignore[arg-type]
    layer = FactorizedLinear(6, 3, 2, "laf", ranks=1)
    with pytest.raises(ValueError, match=r"expected input \(B, 6\) or \(T=2, B, 6\), got \(3, 4, 6\)"):
        layer(torch.randn(3, 4, 6))
    conv = FactorizedConv2d(2, 4, 3, 5, "tt", ranks=1)
    with pytest.raises(ValueError, match=r"got \(1, 3, 8, 8\)"):
        conv(torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match="all layers must be"):
        FactorizedLinear.from_dense([nn.Linear(3, 2), nn.Linear(3, 4)])
    with pytest.raises(ValueError, match="all layers must be"):
        FactorizedConv2d.from_dense([nn.Conv2d(1, 2, 3), nn.Conv2d(1, 2, 3, stride=2)])
