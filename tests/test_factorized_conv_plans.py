"""FactorizedConv2d's planned contractions: every plan and every forced order against the loop oracle."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.func import functional_call

from mtlkit.factorized import (
    CP,
    LAF,
    TT,
    ConvolutionPlan,
    Factorization,
    Ranks,
    Tucker,
    Window,
    best_convolution_multiply_adds,
    plan_convolution,
)
from mtlkit.factorized._conv_plan import WEIGHT_MODES, _choices, convolution_plans
from mtlkit.factorized._trial import fastest
from mtlkit.nn import FactorizedConv2d
from mtlkit.nn import _factorized_conv as factorized_conv

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
    geometry_args = {"stride": stride, "padding": padding, "dilation": dilation}
    layer = FactorizedConv2d(cin, cout, kernel, tasks, method, rule=Ranks(cap), timed=False, **geometry_args).double()
    x = _input(layer, 2, shared, height, width)
    _assert_equals_the_loop(layer, x)
    plan = layer.plan
    assert plan is not None and plan is layer.plan_for(2, shared, height, width, "cpu", torch.float64, True)
    subscripts, tensors = layer.weight.network(WEIGHT_MODES)
    best = best_convolution_multiply_adds(subscripts, [t.shape for t in tensors], tuple(x.shape), layer.window)
    assert plan.multiply_adds == best
    assert not plan.split_tasks  # the untimed default: one convolution


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("cap", [1, 2, 16])
def test_the_convolution_split_per_task_equals_the_loop_in_float64(
    method: type[Factorization], shared: bool, geometry: tuple, cap: int
) -> None:
    # split_tasks=True: the window step as T convolutions, task j's output from task j's kernel (and,
    # for per-task inputs, task j's images), stacked into the single convolution's layout. The
    # oracle's tasks have distinct kernels and T ≥ 2 here, so a wrong task order or stacking axis fails.
    cin, cout, kernel, tasks, stride, padding, dilation, height, width = geometry
    torch.manual_seed(0)
    geometry_args = {"stride": stride, "padding": padding, "dilation": dilation}
    layer = FactorizedConv2d(cin, cout, kernel, tasks, method, rule=Ranks(cap), split_tasks=True, **geometry_args)
    layer = layer.double()
    x = _input(layer, 2, shared, height, width)
    _assert_equals_the_loop(layer, x)
    plan = layer.plan
    assert plan is not None and plan.split_tasks and plan.kernel_carries_tasks
    assert "  convolution, one per task: " in str(plan)
    subscripts, tensors = layer.weight.network(WEIGHT_MODES)
    shapes = [t.shape for t in tensors]
    names = layer.weight.factor_names
    one = plan_convolution(
        subscripts, shapes, names, x.shape, layer.window, project=plan.project, kernel=plan.kernel_factors
    )
    assert not one.split_tasks and dataclasses.replace(one, split_tasks=True) == plan  # the rest is unchanged
    carrying = [p for p in convolution_plans(subscripts, shapes, names, x.shape, layer.window) if p.split_tasks]
    assert plan.multiply_adds == min(p.multiply_adds for p in carrying)  # the cheapest kernel that carries t


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shared", [True, False])
def test_every_projection_and_kernel_of_the_convolution_equals_the_loop(
    method: type[Factorization], shared: bool
) -> None:
    # Forcing each projection, each kernel set (every factor in the kernel = composing first) and,
    # where the kernel carries the task axis, each execution of its convolution changes the cost,
    # never the value: every plan a timed trial can choose is one of these, and convolution_plans
    # lists each once. The untimed planner's choice is the cheapest of them, run as one convolution.
    torch.manual_seed(0)
    probe = FactorizedConv2d(3, 4, 3, 2, method, rule=Ranks(2), padding=1, timed=False).double()
    x = _input(probe, 2, shared, 5, 5)
    subscripts, tensors = probe.weight.network(WEIGHT_MODES)
    names = probe.weight.factor_names
    image = "bihw" if shared else "tbihw"
    costs, made = [], []
    for chosen, kernel in _choices(subscripts, names, image, None, None):
        project, composed = [names[n] for n in chosen], [names[n] for n in kernel]
        for split in (False, True):
            layer = FactorizedConv2d(
                3, 4, 3, 2, method, rule=Ranks(2), padding=1, project=project, kernel=composed, split_tasks=split
            ).double()
            layer.load_state_dict(probe.state_dict())
            if split and not made[-1].kernel_carries_tasks:
                with pytest.raises(ValueError, match="split_tasks=True needs a kernel that carries the task axis"):
                    layer(x)
                continue
            _assert_equals_the_loop(layer, x.detach())
            assert layer.plan is not None and layer.plan.project == tuple(project)
            assert layer.plan.kernel_factors == tuple(composed) and layer.plan.split_tasks == split
            costs.append(layer.plan.multiply_adds)
            made.append(layer.plan)
    assert any(p.split_tasks for p in made) and len(costs) > 2
    listed = convolution_plans(subscripts, [t.shape for t in tensors], names, x.shape, probe.window)
    assert sorted(listed, key=str) == sorted(made, key=str)
    for plan in listed:  # composing first: no projection, every factor in the kernel
        assert plan.composes_first == (not plan.project and set(plan.kernel_factors) == set(names))
    assert any(plan.composes_first for plan in listed) and not all(plan.composes_first for plan in listed)
    probe(x)
    assert probe.plan is not None and probe.plan.multiply_adds == min(costs) and not probe.plan.split_tasks


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize(
    ("method", "project", "kernel", "in_the_convolution"),
    [
        (LAF, (), ("L", "S"), True),  # composed kernels: each task's convolution gives its output
        (CP, ("U2",), ("U0", "U1", "U3", "U4"), True),  # CP projected, the rest composed
        (CP, ("U2", "U3"), ("U0", "U1", "U4"), False),  # o comes in with the image: conv2d batch, not channels
        (Tucker, (), ("core", "U0", "U1", "U2", "U4"), False),  # U3 (out) remains after the convolution
    ],
)
def test_the_split_convolutions_add_the_bias_where_their_channels_are_the_outputs(
    monkeypatch: pytest.MonkeyPatch,
    method: type[Factorization],
    project: tuple[str, ...],
    kernel: tuple[str, ...],
    in_the_convolution: bool,
    shared: bool,
) -> None:
    # As T nn.Conv2d do, rather than in a pass over the whole (B, T, out, H'·W') output.
    torch.manual_seed(0)
    layer = FactorizedConv2d(
        3, 4, 3, 2, method, rule=Ranks(2), padding=1, project=project, kernel=kernel, split_tasks=True
    ).double()
    biases: list[torch.Tensor | None] = []
    conv2d = torch.nn.functional.conv2d

    def recording(
        x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None = None, *args: object, **kwargs: object
    ) -> torch.Tensor:
        if w.shape[-2:] == (3, 3):  # the window step, not a 1×1 projection
            biases.append(bias)
        return conv2d(x, w, bias, *args, **kwargs)

    x = _input(layer, 2, shared, 5, 5)
    with monkeypatch.context() as patched:  # F is torch.nn.functional: the oracle's convolutions run after
        patched.setattr("mtlkit.factorized._conv_plan.F.conv2d", recording)
        layer(x)
    _assert_equals_the_loop(layer, x)
    assert layer.plan is not None and layer.plan.split_tasks and len(biases) == 2
    if in_the_convolution:
        assert layer.bias is not None
        for task, bias in enumerate(biases):
            assert bias is not None and torch.equal(bias, layer.bias[:, task])
    else:
        assert biases == [None, None]


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
    tucker = FactorizedConv2d(32, 64, 3, 10, Tucker, rule=Ranks(3, 3, 8, 8, 4), timed=False)
    tucker(torch.randn(8, 32, 12, 12))
    assert tucker.plan is not None and tucker.plan.project == ("U2",)  # Tucker-2: 1×1 to K_in channels first
    assert tucker.plan.multiply_adds < 0.05 * 8 * 100 * 9 * 32 * 64 * 10
    cp = FactorizedConv2d(32, 64, 3, 10, CP, rule=Ranks(6), timed=False)
    cp(torch.randn(8, 32, 12, 12))
    assert cp.plan is not None and cp.plan.project[0] == "U2"  # CP: 1×1 in, depthwise window, 1×1 out
    assert cp.plan.kernel_factors == ("U0", "U1")
    terms, result = cp.plan.convolution.equation.split("->")
    assert terms.split(",")[0] == "bRpql" and set(terms.split(",")[1]) == set("pqR") and result == "bRl"  # depthwise
    # Task rank = T: composing the kernels is cheapest.
    full = FactorizedConv2d(1, 8, 5, 10, LAF, rule=Ranks(10), timed=False)
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


def _fastest_on_a_model_clock(
    seconds: Callable[[ConvolutionPlan], float], timed: list[ConvolutionPlan]
) -> Callable[..., ConvolutionPlan]:
    """A stand-in for ``fastest`` that runs every candidate for real (forward and backward, so a plan
    that fails would fail the test), records it in ``timed``, and reads time from a model clock."""

    def on_the_model_clock(plans: list[ConvolutionPlan], trial: Callable, **options: Any) -> ConvolutionPlan:
        clock = [0.0]

        def charged(plan: ConvolutionPlan) -> Callable[[], None]:
            run = trial(plan)

            def step() -> None:
                run()
                timed.append(plan)
                clock[0] += seconds(plan)

            return step

        return fastest(plans, charged, timer=lambda: clock[0], **options)

    return on_the_model_clock


def _few_channel_seconds(plan: ConvolutionPlan, sizes: dict[str, int]) -> float:
    """A model clock: a convolution that contracts ``c`` channels into each output runs at
    ``min(1, c / 16)`` of the rate of every other step (16: a vector of float32 lanes)."""
    terms, result = plan.convolution.equation.split("->")
    image, kernel = terms.split(",")
    contracted = math.prod(sizes[i] for i in image if i in kernel and i not in result and i not in "pq")
    slow = plan.convolution.multiply_adds / min(1.0, contracted / 16)
    return plan.multiply_adds - plan.convolution.multiply_adds + slow


def test_the_timed_trial_picks_the_grouped_plan_for_the_few_channel_lenet_conv2(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The DMTRL LeNet's conv2 with Tucker ranks (2, 2, 16, 32, 5): the fewest multiply-adds come
    # from 1×1 to 16 channels, then a 1 → 4 convolution of each channel (a few-channel convolution);
    # convolving the 16 channels with task-grouped composed kernels costs 1.9× that. The trial runs
    # every candidate within 2× for real, on a model clock, and keeps what that clock says is fastest.
    torch.manual_seed(0)
    layer = FactorizedConv2d(32, 64, 4, 10, Tucker, rule=Ranks(2, 2, 16, 32, 5), timed=True).double()
    x = torch.randn(10, 2, 32, 12, 12, dtype=torch.float64)
    subscripts, tensors = layer.weight.network(WEIGHT_MODES)
    sizes = dict(zip("tbihw", x.shape, strict=True))
    for term, tensor in zip(subscripts, tensors, strict=True):
        sizes.update(zip(term, tensor.shape, strict=True))
    plans = convolution_plans(subscripts, [t.shape for t in tensors], layer.weight.factor_names, x.shape, layer.window)
    within = [p for p in plans if p.multiply_adds <= 2 * plans[0].multiply_adds or p.composes_first]
    assert (plans[0].project, plans[0].kernel_factors) == (("U2",), ("U0", "U1"))
    predicted = min(within, key=lambda p: _few_channel_seconds(p, sizes))
    assert (predicted.project, predicted.kernel_factors) == (("U2",), ("core", "U0", "U1", "U4"))
    timed: list[ConvolutionPlan] = []
    monkeypatch.setattr(
        factorized_conv, "fastest", _fastest_on_a_model_clock(lambda plan: _few_channel_seconds(plan, sizes), timed)
    )
    _assert_equals_the_loop(layer, x)
    assert layer.plan == predicted
    assert {(p.project, p.kernel_factors) for p in timed} == {(p.project, p.kernel_factors) for p in within}
    untimed = FactorizedConv2d(32, 64, 4, 10, Tucker, rule=Ranks(2, 2, 16, 32, 5), timed=False)
    untimed(x.float())
    assert untimed.plan is not None and untimed.plan.multiply_adds == plans[0].multiply_adds


def test_split_tasks_is_a_construction_override_and_never_the_untimed_default() -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 1, 12, 12)
    one = FactorizedConv2d(1, 8, 5, 10, LAF, rule=Ranks(10))
    one(x)
    assert one.plan is not None and one.plan.kernel_factors == ("L", "S") and not one.plan.split_tasks
    assert "one per task" not in str(one.plan)
    split = FactorizedConv2d(1, 8, 5, 10, LAF, rule=Ranks(10), split_tasks=True)
    split.load_state_dict(one.state_dict())
    torch.testing.assert_close(split(x), one(x))
    assert split.plan == dataclasses.replace(one.plan, split_tasks=True)
    # Compressive: the cheapest plan convolves with the K basis kernels (no task axis to split);
    # forcing the split takes the cheapest kernel that carries it, the composed one.
    basis = FactorizedConv2d(1, 8, 5, 10, LAF, rule=Ranks(2), split_tasks=True)
    basis(x)
    assert basis.plan is not None and basis.plan.split_tasks and basis.plan.kernel_factors == ("L", "S")
    assert FactorizedConv2d.from_dense([nn.Conv2d(1, 8, 5) for _ in range(3)], split_tasks=True).split_tasks
    subscripts, tensors = one.weight.network(WEIGHT_MODES)
    single = FactorizedConv2d(1, 8, 5, 1, LAF, rule=Ranks(1))  # T = 1: nothing to split, no twin to time
    single_subscripts, single_tensors = single.weight.network(WEIGHT_MODES)
    shapes = [t.shape for t in single_tensors]
    assert not any(p.split_tasks for p in convolution_plans(single_subscripts, shapes, ["L", "S"], x.shape, one.window))
    with pytest.raises(ValueError, match=r"split_tasks must be None, True or False, got 'yes'"):
        FactorizedConv2d(1, 8, 5, 10, LAF, split_tasks="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"split_tasks must be None, True or False, got 1"):
        plan_convolution(subscripts, [t.shape for t in tensors], ["L", "S"], x.shape, one.window, split_tasks=1)  # type: ignore[arg-type]
    only_basis = FactorizedConv2d(1, 8, 5, 10, LAF, rule=Ranks(2), kernel=["L"], split_tasks=True)
    with pytest.raises(
        ValueError, match=r"needs a kernel that carries the task axis, and none of the kernels \[\('L',\)\]"
    ):
        only_basis(x)


def test_the_timed_trial_also_times_composing_first_outside_twice_the_fewest_multiply_adds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The DMTRL LeNet's conv1 at Tucker ranks (3, 3, 1, 16, 5): the fewest multiply-adds (0.39 × the
    # dense ones) convolve single-channel images, composing costs 2.6 × that, so a 2× window alone
    # would never time it; where few-channel convolutions are slow enough, composing wins.
    torch.manual_seed(0)
    layer = FactorizedConv2d(1, 32, 5, 10, Tucker, rule=Ranks(3, 3, 1, 16, 5), timed=True).double()
    x = torch.randn(2, 1, 12, 12, dtype=torch.float64)
    subscripts, tensors = layer.weight.network(WEIGHT_MODES)
    plans = convolution_plans(subscripts, [t.shape for t in tensors], layer.weight.factor_names, x.shape, layer.window)
    composing = [p for p in plans if p.composes_first]
    assert composing and all(p.multiply_adds > 2 * plans[0].multiply_adds for p in composing)
    timed: list[ConvolutionPlan] = []
    monkeypatch.setattr(
        factorized_conv,
        "fastest",
        _fastest_on_a_model_clock(lambda plan: plan.multiply_adds * (1 if plan.composes_first else 10), timed),
    )
    _assert_equals_the_loop(layer, x)
    assert layer.plan in composing and {str(p) for p in composing} <= {str(p) for p in timed}


def _one_convolution_is_slow_seconds(plan: ConvolutionPlan) -> float:
    """A model clock shaped like oneDNN's on the LeNet conv1 (``benchmarks/conv1_fused_probe.py``):
    a window step run as one convolution takes 4× the time its multiply-adds would, split per task 1×."""
    return plan.multiply_adds + (0 if plan.split_tasks else 3 * plan.convolution.multiply_adds)


@pytest.mark.parametrize(("method", "shared"), [(Tucker, True), (TT, False), (LAF, True)])
def test_the_timed_trial_can_split_the_full_rank_lenet_conv1_per_task(
    monkeypatch: pytest.MonkeyPatch, method: type[Factorization], shared: bool
) -> None:
    # The DMTRL LeNet's conv1 shape (T = 10, 1 → 32, 5×5) at full ranks, as ε = 0.1 gives them: the
    # fewest multiply-adds compose the kernels and run one 1 → 320 (or task-grouped) convolution,
    # and its split twin ties. Every candidate runs for real; on the model clock the split is fastest.
    torch.manual_seed(0)
    layer = FactorizedConv2d(1, 32, 5, 10, method, rule=Ranks(320), timed=True).double()
    x = torch.randn(*(() if shared else (10,)), 2, 1, 12, 12, dtype=torch.float64)
    subscripts, tensors = layer.weight.network(WEIGHT_MODES)
    plans = convolution_plans(subscripts, [t.shape for t in tensors], layer.weight.factor_names, x.shape, layer.window)
    assert plans[0].project == () and len(plans[0].kernel_factors) == len(tensors) and not plans[0].split_tasks
    within = [p for p in plans if p.multiply_adds <= 2 * plans[0].multiply_adds or p.composes_first]
    timed: list[ConvolutionPlan] = []
    monkeypatch.setattr(factorized_conv, "fastest", _fastest_on_a_model_clock(_one_convolution_is_slow_seconds, timed))
    _assert_equals_the_loop(layer, x)
    assert layer.plan == dataclasses.replace(plans[0], split_tasks=True)
    assert set(map(str, timed)) == set(map(str, within))
    timed.clear()
    fused_only = FactorizedConv2d(1, 32, 5, 10, method, rule=Ranks(320), timed=True, split_tasks=False).double()
    fused_only.load_state_dict(layer.state_dict())
    fused_only(x)
    assert timed and not any(p.split_tasks for p in timed)
    assert fused_only.plan is not None and not fused_only.plan.split_tasks


@dataclass(frozen=True)
class _Candidate:
    multiply_adds: int
    seconds: float  # the model clock's time per run
    first: float = 0.0  # extra time of the first run (allocations, kernel selection)


def _on_a_model_clock(plans: list[_Candidate], **options: Any) -> tuple[_Candidate, list[_Candidate]]:
    clock, ran = [0.0], []

    def trial(plan: _Candidate) -> Callable[[], None]:
        def run() -> None:
            clock[0] += plan.seconds + (0.0 if plan in ran else plan.first)
            ran.append(plan)

        return run

    return fastest(plans, trial, timer=lambda: clock[0], **options), ran  # type: ignore[arg-type]


def test_fastest_times_only_plans_within_the_bound_and_keeps_the_cheapest_within_the_margin() -> None:
    cheapest, twice, far = _Candidate(10, 1.0), _Candidate(20, 0.5), _Candidate(21, 0.0)
    chosen, ran = _on_a_model_clock([cheapest, twice, far])
    assert chosen == twice and far not in ran and ran.count(cheapest) == 7  # warm-up, one timed run, 5 rounds
    # A round fills min_seconds at the quickest run's steady speed (20 runs each), not its first run's.
    quick, quicker = _Candidate(10, 0.004, first=0.05), _Candidate(20, 0.001, first=0.05)
    chosen, ran = _on_a_model_clock([quick, quicker], min_seconds=0.02)
    assert chosen == quicker and ran.count(quick) == ran.count(quicker) == 2 + 5 * 20
    # A slow first run (over 2× the others') neither drops a candidate nor decides the choice.
    assert _on_a_model_clock([cheapest, _Candidate(20, 0.5, first=2.0)])[0] == _Candidate(20, 0.5, first=2.0)
    assert _on_a_model_clock([cheapest, _Candidate(12, 0.95)])[0] == cheapest  # < 10 % faster: noise
    assert _on_a_model_clock([cheapest, twice, far], within=3.0)[0] == far
    assert _on_a_model_clock([cheapest, _Candidate(30, 0.1)], always=[_Candidate(30, 0.1)])[0] == _Candidate(30, 0.1)
    with pytest.raises(ValueError, match="every plan in always must be one of plans"):
        _on_a_model_clock([cheapest], always=[far])
    assert _on_a_model_clock([cheapest, far])[1] == []  # one candidate: nothing to time
    slow = _Candidate(15, 2.5)
    chosen, ran = _on_a_model_clock([cheapest, slow, twice])
    assert chosen == twice and ran.count(slow) == 2  # a timed run over 2× the quickest: no rounds
    with pytest.raises(ValueError, match=r"within=0\.5"):
        _on_a_model_clock([cheapest], within=0.5)
    with pytest.raises(ValueError, match=r"min_seconds=-1"):
        _on_a_model_clock([cheapest], min_seconds=-1)
    with pytest.raises(ValueError, match="must not be empty"):
        _on_a_model_clock([])


def test_the_timed_trial_leaves_the_random_stream_alone() -> None:
    torch.manual_seed(0)
    layer = FactorizedConv2d(3, 4, 3, 2, Tucker, rule=Ranks(2), timed=True)
    x = torch.randn(2, 3, 6, 6)
    state = torch.get_rng_state()
    layer(x)
    assert torch.equal(torch.get_rng_state(), state)
