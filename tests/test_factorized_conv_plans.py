"""FactorizedConv2d's planned contractions: every plan and every forced order against the loop oracle."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.func import functional_call

from mtlkit.factorized import (
    CP,
    LAF,
    TT,
    Factorization,
    Ranks,
    Tucker,
    Window,
    best_convolution_multiply_adds,
    plan_convolution,
)
from mtlkit.factorized._conv_plan import WEIGHT_MODES, _choices
from mtlkit.nn import FactorizedConv2d

METHODS: tuple[type[Factorization], ...] = (LAF, Tucker, TT, CP)
# (in, out, kernel, T, stride, padding, dilation, H, W): square and not, strided, dilated, "same".
GEOMETRIES = [
    (3, 4, 3, 3, 1, 1, 1, 6, 6),
    (2, 5, (2, 3), 2, 2, 0, 1, 7, 6),
    (4, 3, 2, 4, 1, "same", 1, 5, 5),
    (2, 3, 3, 2, 1, 2, 2, 6, 7),
]


def _input(layer: FactorizedConv2d, batch: int, shared: bool, height: int, width: int) -> torch.Tensor:
    shape = (batch, layer.in_channels, height, width)
    return torch.randn(*(shape if shared else (layer.num_tasks, *shape)), dtype=torch.float64)


def _assert_equals_the_loop(layer: FactorizedConv2d, x: torch.Tensor) -> None:
    x = x.detach().requires_grad_()
    ours, oracle = layer(x), layer.forward_per_task(x)
    assert ours.shape == oracle.shape
    torch.testing.assert_close(ours, oracle, rtol=1e-10, atol=1e-10)
    upstream = torch.randn_like(ours)
    inputs = [x, *layer.parameters()]
    mine = torch.autograd.grad((ours * upstream).sum(), inputs)
    theirs = torch.autograd.grad((oracle * upstream).sum(), inputs)
    for a, b in zip(mine, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("cap", [1, 2, 16])
def test_every_conv_plan_equals_the_loop_in_float64(
    method: type[Factorization], shared: bool, geometry: tuple, cap: int
) -> None:
    cin, cout, kernel, tasks, stride, padding, dilation, height, width = geometry
    torch.manual_seed(0)
    layer = FactorizedConv2d(
        cin, cout, kernel, tasks, method, rule=Ranks(cap), stride=stride, padding=padding, dilation=dilation
    ).double()
    x = _input(layer, 2, shared, height, width)
    _assert_equals_the_loop(layer, x)
    plan = layer.plan
    assert plan is not None and plan is layer.plan_for(2, shared, height, width, "cpu", torch.float64)
    subscripts, tensors = layer.weight.network(WEIGHT_MODES)
    best = best_convolution_multiply_adds(subscripts, [t.shape for t in tensors], tuple(x.shape), layer.window)
    assert plan.multiply_adds == best


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shared", [True, False])
def test_every_projection_and_kernel_of_the_convolution_equals_the_loop(
    method: type[Factorization], shared: bool
) -> None:
    # Forcing each projection and each kernel set (every factor in the kernel = composing first)
    # changes the cost, never the value; the planner's choice is the cheapest of them.
    torch.manual_seed(0)
    probe = FactorizedConv2d(3, 4, 3, 2, method, rule=Ranks(2), padding=1).double()
    x = _input(probe, 2, shared, 5, 5)
    subscripts, _ = probe.weight.network(WEIGHT_MODES)
    names = probe.weight.factor_names
    image = "bihw" if shared else "tbihw"
    costs = []
    for chosen, kernel in _choices(subscripts, names, image, None, None):
        project, composed = [names[n] for n in chosen], [names[n] for n in kernel]
        layer = FactorizedConv2d(3, 4, 3, 2, method, rule=Ranks(2), padding=1, project=project, kernel=composed)
        layer = layer.double()
        layer.load_state_dict(probe.state_dict())
        _assert_equals_the_loop(layer, x.detach())
        assert layer.plan is not None and layer.plan.project == tuple(project)
        assert layer.plan.kernel_factors == tuple(composed)
        costs.append(layer.plan.multiply_adds)
    assert len(costs) > 1
    probe(x)
    assert probe.plan is not None and probe.plan.multiply_adds == min(costs)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shared", [True, False])
def test_gradcheck_through_the_planned_convolution(method: type[Factorization], shared: bool) -> None:
    torch.manual_seed(0)
    layer = FactorizedConv2d(2, 3, 2, 2, method, rule=Ranks(2), stride=2, padding=1).double()
    names = [n for n, _ in layer.named_parameters()]
    x = _input(layer, 1, shared, 4, 3).requires_grad_()
    params = [p.detach().clone().requires_grad_() for p in layer.parameters()]

    def forward(x: torch.Tensor, *values: torch.Tensor) -> torch.Tensor:
        return functional_call(layer, dict(zip(names, values, strict=True)), (x,))

    assert torch.autograd.gradcheck(forward, (x, *params))
    assert layer.plan is not None


@settings(max_examples=30, deadline=None)
@given(
    method=st.sampled_from(METHODS),
    shared=st.booleans(),
    tasks=st.integers(1, 6),
    cin=st.integers(1, 12),
    cout=st.integers(1, 12),
    kernel=st.integers(1, 4),
    cap=st.integers(1, 8),
    batch=st.integers(1, 16),
    size=st.integers(4, 20),
)
def test_the_chosen_conv_plan_is_the_cheapest(
    method: type[Factorization],
    shared: bool,
    tasks: int,
    cin: int,
    cout: int,
    kernel: int,
    cap: int,
    batch: int,
    size: int,
) -> None:
    # Planned from shapes alone: the factors' ranks, the image and the window.
    shape = (kernel, kernel, cin, cout, tasks)
    if method is CP:  # ALS is slow and beside the point here: random factors of the capped rank
        rank = min(cap, CP.max_rank(shape))
        weight: Factorization = CP(shape, *(torch.randn(d, rank) for d in shape))
    else:
        weight = method.random(shape, Ranks(cap))
    subscripts, tensors = weight.network(WEIGHT_MODES)
    shapes = [tuple(t.shape) for t in tensors]
    image = (batch, cin, size, size) if shared else (tasks, batch, cin, size, size)
    window = Window((kernel, kernel))
    plan = plan_convolution(subscripts, shapes, weight.factor_names, image, window)
    assert plan.multiply_adds == best_convolution_multiply_adds(subscripts, shapes, image, window)


def test_compressive_tucker_and_cp_project_the_image_first() -> None:
    torch.manual_seed(0)
    tucker = FactorizedConv2d(32, 64, 3, 10, Tucker, rule=Ranks(3, 3, 8, 8, 4))
    tucker(torch.randn(8, 32, 12, 12))
    assert tucker.plan is not None and tucker.plan.project == ("U2",)  # Tucker-2: 1×1 to K_in channels first
    assert tucker.plan.multiply_adds < 0.05 * 8 * 100 * 9 * 32 * 64 * 10
    cp = FactorizedConv2d(32, 64, 3, 10, CP, rule=Ranks(6))
    cp(torch.randn(8, 32, 12, 12))
    assert cp.plan is not None and cp.plan.project[0] == "U2"  # CP: 1×1 in, depthwise window, 1×1 out
    assert cp.plan.kernel_factors == ("U0", "U1")
    terms, result = cp.plan.convolution.equation.split("->")
    assert terms.split(",")[0] == "bRpql" and set(terms.split(",")[1]) == set("pqR") and result == "bRl"  # depthwise
    full = FactorizedConv2d(1, 8, 5, 10, LAF, rule=Ranks(10))  # task rank = T: composing the kernels is cheapest
    full(torch.randn(8, 1, 28, 28))
    assert full.plan is not None and full.plan.project == () and full.plan.kernel_factors == ("L", "S")
    assert full.plan.after is None


def test_plans_are_cached_per_input_kind_and_shape_and_printable() -> None:
    torch.manual_seed(0)
    layer = FactorizedConv2d(2, 3, 3, 2, TT, rule=Ranks(2), padding=1)
    layer(torch.randn(4, 2, 6, 6))
    first = layer.plan
    layer(torch.randn(2, 4, 2, 6, 6))
    layer(torch.randn(4, 2, 8, 6))
    layer(torch.randn(4, 2, 6, 6))
    assert layer.plan is first and len(layer._plans) == 3
    assert first is not None and f"({first.multiply_adds:,} multiply-adds)" in str(first)
    inner = [p for p in (first.before, first.kernel, first.after) if p is not None]
    assert len(first.steps) == 1 + sum(len(p.steps) for p in inner)


def test_bad_overrides_name_the_argument() -> None:
    with pytest.raises(ValueError, match=r"project must be a sequence of factor names among \('L', 'S'\)"):
        FactorizedConv2d(2, 3, 3, 2, LAF, rule=Ranks(1), project=["U9"])
    layer = FactorizedConv2d(2, 3, 3, 2, Tucker, rule=Ranks(1), project=["U0"])
    with pytest.raises(ValueError, match=r"project=\('U0',\) must name factors among .* without a kernel axis"):
        layer(torch.randn(1, 2, 5, 5))
    layer = FactorizedConv2d(2, 3, 3, 2, Tucker, rule=Ranks(1), kernel=["core", "U0"])
    with pytest.raises(ValueError, match=r"must hold every factor with a kernel axis \(missing: \['U1'\]\)"):
        layer(torch.randn(1, 2, 5, 5))
    with pytest.raises(ValueError, match="smaller than the"):
        FactorizedConv2d(2, 3, 5, 2, LAF, rule=Ranks(1))(torch.randn(1, 2, 3, 3))
