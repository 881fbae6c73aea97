"""Speed and memory of DMTRL factorised layers on the modified LeNet of the paper (T = 10 tasks).

Four comparisons, each a *training step* (forward + backward + SGD step), median over interleaved
repeats measured in this run; ``ratio = ours_s / baseline_s`` (lower is better). Every entry also
has ``flop_ratio``, the same ratio in floating-point operations (``torch.utils.flop_counter``):
where the time ratio is close to it, the kernels run at the baseline's speed and only a cheaper
algorithm could help.

* ``vs_dense``: a factorised layer (all T tasks, batched kernel) against T independent dense
  layers run in a loop — the STL network DMTRL replaces. Target ratio ≤ 1.3.
* ``batched_vs_loop``: our task-batched kernel against the per-task loop oracle
  (``forward_per_task``, composition still done once). Target ≥ 3× faster, i.e. ratio ≤ 0.33.
* ``network vs_stl``: the whole factorised LeNet (``DMTRLNet``, the paper's MNIST setting: one
  image batch shared by the 10 tasks, default ``execution="auto"``) against the 10 single-task
  LeNets it replaces; ``network batched_vs_per_task``: its two execution modes against each other.
* ``grid/...`` (issue #20): planned linear layers on 20 shapes (T ∈ {2, 10, 50}, in/out 32–2048,
  batch 8–512) × rank settings (``Ranks(4)``; ``ParameterBudget(0.25)``; ε = 0.1 on related and
  on unrelated dense layers)
  × factorisations, inputs alternating shared / per-task: time and FLOP ratio of a training step
  against ``T`` dense layers, the planner's multiply-adds against the best order's
  (:func:`mtlkit.factorized.best_multiply_adds`; ``plan_vs_best``), and, for Tucker, the time against a TensorLy-Torch
  Tucker tensor at equal ranks. Targets: plan ≤ 1.1 × best; time ratio ≤ 1.5 × FLOP ratio; ≥ 2×
  faster than TensorLy-Torch. The same for planned convolutions on 10 shapes (``CONV_GRID_SHAPES``:
  T ∈ {2, 10, 50}, 1–128 channels, kernels 3–5, images 8–32, batch 8–64; TensorLy-Torch: a Tucker
  tensor over ``(T, out, in, kh, kw)``, reconstructed, then ``conv2d`` per task); a convolution runs
  the fastest plan within 2× the planner's multiply-adds by timed trial (``timed_vs_best``: its
  multiply-adds against the best; the FLOP ratio counts the plan that runs). ``grid/summary``
  counts the points meeting each target and lists the others.
* ``vs_tltorch``: ours against TensorLy-Torch's ``FactorizedLinear`` with ``n_layers=T`` (one
  joint Tucker tensor, called once per task index), if ``tltorch`` is importable.

Inputs follow the network: conv1 gets the shared image batch ``(B, 1, 28, 28)``; deeper layers get
per-task activations ``(T, B, ...)``. Batch 64 throughout; FC1 is also measured at batch 256 (its
composition cost does not grow with the batch) and every layer's batched-vs-loop at batch 8 (where
per-call overhead, not arithmetic, bounds the loop — the regime of a GPU). Ranks (documented, not
ε-derived: random weights are full rank): LAF ``K = 5``; Tucker ``K_n = min(⌈D_n/2⌉, 64)``; TT the
largest chain-consistent ranks ≤ 64.

Peak memory is the growth of the process's peak resident set over one step (Linux ``VmHWM``;
tracemalloc cannot see torch's allocator, and the CPU profiler's memory events miss most of it).

On an accelerator (``python -m benchmarks --only factorized --device cuda``) every module and
input lives on that device, each timed step ends with a device synchronisation, and peak memory is
the growth of the allocator's peak (``torch.accelerator.max_memory_allocated``). The
batched-vs-loop target is an accelerator's: there the loop pays a kernel launch per task.

Run: ``python -m benchmarks.bench_factorized [--quick] [--device cuda]`` (or
``python -m benchmarks --only factorized``).
"""

from __future__ import annotations

import argparse
import ctypes
import math
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from benchmarks._timing import compare
from mtlkit.factorization import tt_feasible_ranks
from mtlkit.factorized import (
    CP,
    LAF,
    TT,
    Factorization,
    ParameterBudget,
    Ranks,
    RelativeError,
    Tucker,
    best_convolution_multiply_adds,
    best_multiply_adds,
    plan_convolution,
)
from mtlkit.factorized._conv_plan import WEIGHT_MODES
from mtlkit.nn import DMTRLNet, FactorizedConv2d, FactorizedLinear

RUNS_ON_ACCELERATORS = True  # `python -m benchmarks --device` passes the device to run()
TASKS = 10
DEFAULT_BATCH = 64
METHODS = ("laf", "tucker", "tt")
KINDS: dict[str, type[Factorization]] = {"laf": LAF, "tucker": Tucker, "tt": TT, "cp": CP}
# name: (kind, in, out, kernel, per-task input shape without (T, B))
LAYERS: dict[str, tuple[str, int, int, int, tuple[int, ...]]] = {
    "conv1": ("conv", 1, 32, 5, (1, 28, 28)),
    "conv2": ("conv", 32, 64, 4, (32, 12, 12)),
    "fc1": ("linear", 1024, 512, 0, (1024,)),
    "fc2": ("linear", 512, 1, 0, (512,)),
}


def _ranks(method: str, shape: tuple[int, ...]) -> Ranks:
    if method == "laf":
        return Ranks(5)
    if method == "tucker":
        return Ranks(*(min((d + 1) // 2, 64) for d in shape))
    return Ranks(*tt_feasible_ranks(shape, 64))


def _layer_ranks(name: str, method: str) -> Ranks:
    kind, fan_in, fan_out, kernel, _ = LAYERS[name]
    shape = (kernel, kernel, fan_in, fan_out, TASKS) if kind == "conv" else (fan_in, fan_out, TASKS)
    return _ranks(method, shape)


def _factorized(name: str, method: str) -> FactorizedConv2d | FactorizedLinear:
    kind, fan_in, fan_out, kernel, _ = LAYERS[name]
    ranks = _layer_ranks(name, method)
    if kind == "conv":
        return FactorizedConv2d(fan_in, fan_out, kernel, TASKS, KINDS[method], rule=ranks, timed=True)
    return FactorizedLinear(fan_in, fan_out, TASKS, KINDS[method], ranks)


def _dense(name: str) -> nn.ModuleList:
    kind, fan_in, fan_out, kernel, _ = LAYERS[name]
    make = (lambda: nn.Conv2d(fan_in, fan_out, kernel)) if kind == "conv" else (lambda: nn.Linear(fan_in, fan_out))
    return nn.ModuleList(make() for _ in range(TASKS))


def _input(name: str, batch: int, device: torch.device) -> Tensor:
    per_task = () if name == "conv1" else (TASKS,)  # conv1 sees the image batch shared by all tasks
    return torch.randn(*per_task, batch, *LAYERS[name][4], device=device)


def _training_step(module: nn.Module, forward: Callable[[], Tensor | list[Tensor]]) -> Callable[[], None]:
    optimizer = torch.optim.SGD(module.parameters(), lr=1e-3)
    device = next(module.parameters()).device

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        outputs = forward()
        sum(o.square().mean() for o in outputs).backward()  # type: ignore[union-attr]
        optimizer.step()
        if device.type != "cpu":  # kernels run asynchronously: time them, not their launches
            torch.accelerator.synchronize(device)

    return step


def _conv_backward_flops(grad_out_shape, x_shape, w_shape, *args, **kwargs) -> int:
    """Each requested gradient of a (non-transposed) convolution costs what its forward costs.

    Replaces torch's formula, which multiplies the backward of a grouped convolution by ``groups``
    (``groups=T`` is exactly what the batched kernel uses).
    """
    output_mask = kwargs.get("output_mask", args[7] if len(args) > 7 else (True, True, False))
    forward = 2 * math.prod(grad_out_shape) * math.prod(w_shape[1:])
    return forward * (int(output_mask[0]) + int(output_mask[1]))


def _flops(step: Callable[[], None]) -> int:
    mapping = {torch.ops.aten.convolution_backward: _conv_backward_flops}
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        step()
    return counter.get_total_flops()


def _lenet() -> nn.Sequential:
    """The paper's modified LeNet for one binary MNIST task (leaf layers 0, 3, 7, 9 have weights)."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1024, 512), nn.ReLU(), nn.Linear(512, 1),
    )  # fmt: skip


def _network_entries(batch: int, repeats: int, methods: tuple[str, ...], device: torch.device) -> list[dict]:
    """DMTRL LeNet (shared image batch, T = 10 outputs) vs the 10 single-task LeNets."""
    nets = {f"task{t}": _lenet().to(device) for t in range(TASKS)}
    x = torch.randn(batch, 1, 28, 28, device=device)
    stl = nn.ModuleList(nets.values())
    stl_step = _training_step(stl, lambda: [net(x) for net in stl])
    entries = []
    for method in methods:
        # The LeNet's weighted leaf layers 0, 3, 7, 9 are conv1, conv2, fc1, fc2 of LAYERS.
        ranks = {index: _layer_ranks(name, method) for index, name in zip((0, 3, 7, 9), LAYERS, strict=True)}
        dmtrl = DMTRLNet.from_single_task(nets, KINDS[method], rules=ranks).to(device)
        step = _training_step(dmtrl, lambda dmtrl=dmtrl: list(dmtrl(x).values()))

        def in_mode(mode: str, dmtrl: DMTRLNet = dmtrl, step: Callable[[], None] = step) -> Callable[[], None]:
            def run() -> None:
                dmtrl.execution = mode  # type: ignore[assignment]
                step()

            return run

        params = {
            "params_ours": sum(p.numel() for p in dmtrl.parameters()),
            "params_dense": sum(p.numel() for p in stl.parameters()),
        }
        split = DMTRLNet.from_single_task(nets, KINDS[method], rules=ranks, split_tasks=True).to(device)
        split_step = _training_step(split, lambda split=split: list(split(x).values()))
        entries += [
            _entry(f"network/{method} vs_stl", stl_step, in_mode("auto"), repeats, device,
                   target="report (paper: DMTRL replaces the STL nets)", **params),
            _entry(f"network/{method} split_tasks vs_stl", stl_step, split_step, repeats, device,
                   target="report (convolutions run per task: DMTRLNet.from_single_task(split_tasks=True))"),
            _entry(f"network/{method} batched_vs_per_task", in_mode("per_task"), in_mode("batched"), repeats, device,
                   target="report (auto picks per_task on CPU, batched on accelerators)"),
        ]  # fmt: skip
    return entries


def _dense_forward(layers: nn.ModuleList, x: Tensor, shared: bool) -> Callable[[], Tensor]:
    return lambda: torch.stack([layer(x if shared else x[t]) for t, layer in enumerate(layers)])


def _resident_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    raise OSError(f"{field} not in /proc/self/status")


def _peak_memory_mb(step: Callable[[], None], device: torch.device) -> float | None:
    """Peak memory growth over one step: the allocator's on an accelerator, else Linux's ``VmHWM``.

    On CPU, tracemalloc cannot see torch's allocator and the profiler's memory events miss most
    allocations here, so the kernel's resident high-water mark is the honest measurement. ``None``
    where ``/proc/self/clear_refs`` is unavailable.
    """
    if device.type != "cpu":
        torch.accelerator.reset_peak_memory_stats(device)
        before = torch.accelerator.memory_allocated(device)
        step()
        return (torch.accelerator.max_memory_allocated(device) - before) / 2**20
    try:
        # Hand freed heap pages back to the OS first, or a warm step reuses them: no growth.
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")  # reset the peak-RSS counter of this process
        before = _resident_mb("VmRSS")
        step()
        return _resident_mb("VmHWM") - before
    except OSError:
        return None


def _entry(
    name: str,
    baseline: Callable[[], None],
    ours: Callable[[], None],
    repeats: int,
    device: torch.device,
    **extra: object,
) -> dict:
    return {
        "name": name,
        **compare(baseline, ours, repeats),
        "flop_ratio": _flops(ours) / _flops(baseline),
        "peak_mem_mb": _peak_memory_mb(ours, device),
        "baseline_peak_mem_mb": _peak_memory_mb(baseline, device),
        **extra,
    }


def _tltorch_entries(batch: int, repeats: int, device: torch.device) -> list[dict]:
    """Ours vs a TensorLy-Torch Tucker tensor over ``(T, out, in)`` with the same ranks.

    ``tltorch.FactorizedLinear(n_layers=T)`` is the natural equivalent but its per-layer indexing
    fails for Tucker in tltorch 0.5, so the comparison uses its ``FactorizedTensor`` directly the
    way its ``implementation="reconstructed"`` layers do: reconstruct, then ``F.linear`` per task.
    """
    name = "fc1/tucker vs_tltorch"
    try:
        import tltorch
    except ImportError:
        return [{"name": name, "skipped": "tltorch not importable (pip install tensorly-torch)"}]
    _, fan_in, fan_out, _, _ = LAYERS["fc1"]
    ours = _factorized("fc1", "tucker").to(device)
    ranks = ours.ranks
    theirs = tltorch.FactorizedTensor.new(
        (TASKS, fan_out, fan_in), rank=(ranks[2], ranks[1], ranks[0]), factorization="tucker"
    )
    theirs.normal_(0, 0.02)
    biases = nn.Parameter(torch.zeros(TASKS, fan_out))
    holder = nn.ModuleList([theirs]).append(nn.ParameterList([biases])).to(device)
    x = _input("fc1", batch, device)

    def their_forward() -> Tensor:
        weights = theirs.to_tensor()
        return torch.stack([nn.functional.linear(x[t], weights[t], biases[t]) for t in range(TASKS)])

    try:
        their_forward()
    except Exception as error:
        return [{"name": name, "skipped": f"tltorch failed: {error}"}]
    return [
        _entry(
            name,
            _training_step(holder, their_forward),
            _training_step(ours, lambda: ours(x)),
            repeats,
            device,
            params_ours=ours.parameter_count(),
            params_baseline=sum(p.numel() for p in holder.parameters()),
        )
    ]


def _layer_entries(
    name: str, method: str, batch: int, repeats: int, vs_dense: bool, device: torch.device
) -> list[dict]:
    suffix = "" if batch == DEFAULT_BATCH else f" @B={batch}"
    x = _input(name, batch, device)
    layer = _factorized(name, method).to(device)
    batched = _training_step(layer, lambda: layer(x))
    looped = _training_step(layer, lambda: layer.forward_per_task(x))
    entries = [
        _entry(
            f"{name}/{method} batched_vs_loop{suffix}", looped, batched, repeats, device, target="<= 0.33 (3x faster)"
        )
    ]
    if vs_dense:
        dense = _dense(name).to(device)
        dense_step = _training_step(dense, _dense_forward(dense, x, shared=name == "conv1"))
        params = {"params_ours": layer.parameter_count(), "params_dense": sum(p.numel() for p in dense.parameters())}
        entries.insert(0, _entry(f"{name}/{method} vs_dense{suffix}", dense_step, batched, repeats, device,
                                 target="<= 1.3", **params))  # fmt: skip
        entries[0]["plan"] = str(layer.plan)  # the plan the timed steps ran (the conv layers' trial picks it)
    return entries


# ------------------------------------------------------------------------------------------ grid

# (T, in, out, batch): T ∈ {2, 10, 50}, in/out 32-2048, batch 8-512 (issue #20's grid).
GRID_SHAPES: tuple[tuple[int, int, int, int], ...] = (
    (2, 32, 32, 512), (2, 512, 512, 64), (2, 2048, 256, 8), (2, 64, 2048, 128),
    (10, 256, 64, 128), (10, 784, 256, 64), (10, 1024, 512, 32), (10, 2048, 32, 16),
    (50, 32, 64, 256), (50, 128, 128, 64), (50, 64, 2048, 8), (50, 512, 32, 32),
    (2, 128, 1024, 256), (2, 1024, 1024, 16), (2, 256, 32, 64), (10, 64, 64, 512),
    (10, 512, 2048, 8), (10, 128, 512, 256), (50, 256, 256, 16), (50, 1024, 64, 128),
)  # fmt: skip
# Rank settings, from strongly compressive to near full: fixed ranks 4; the ranks a quarter of the
# T dense layers' parameters buys (ParameterBudget(0.25), random factors: timing depends on the
# ranks alone); the ranks ε = 0.1 picks on T related dense layers (one shared weight plus 30 %
# per-task noise) and on T unrelated (independent) ones.
GRID_RANKS = ("rank4", "budget0.25", "eps0.1-related", "eps0.1-unrelated")
GRID_KINDS = {
    "rank4": ("laf", "tucker", "tt", "cp"),
    "budget0.25": ("tucker", "tt"),
    "eps0.1-related": ("tucker", "tt"),
    "eps0.1-unrelated": ("tucker", "tt"),
}
TIME_TARGET = 1.5  # time ratio vs dense ≤ 1.5 × FLOP ratio vs dense
PLAN_TARGET = 1.1  # chosen plan's multiply-adds ≤ 1.1 × the best order's


def _grid_dense(tasks: int, fan_in: int, fan_out: int, related: bool, device: torch.device) -> nn.ModuleList:
    layers = nn.ModuleList(nn.Linear(fan_in, fan_out) for _ in range(tasks))
    if related:
        with torch.no_grad():
            common = layers[0].weight.clone()
            for layer in layers:
                layer.weight.mul_(0.3).add_(common)
    return layers.to(device)


def _grid_layer(kind: str, setting: str, dense: nn.ModuleList) -> FactorizedLinear:
    first = dense[0]
    if setting in ("rank4", "budget0.25"):
        rule = Ranks(4) if setting == "rank4" else ParameterBudget(0.25)
        return FactorizedLinear(first.in_features, first.out_features, len(dense), KINDS[kind], rule)
    return FactorizedLinear.from_dense(list(dense), KINDS[kind], RelativeError(0.1))


def _tltorch_reconstructed(
    shape: tuple[int, ...],
    ranks: tuple[int, ...],
    x: Tensor,
    shared: bool,
    apply: Callable[[Tensor, Tensor, Tensor], Tensor],
) -> tuple[nn.Module, Callable[[], Tensor]] | None:
    """A TensorLy-Torch Tucker tensor of ``shape`` = ``(T, out, ...)`` at ``ranks``, reconstructed every
    step and applied per task as ``apply(input, weight, bias)``; ``None`` without TensorLy-Torch."""
    try:
        import tltorch
    except ImportError:
        return None
    theirs = tltorch.FactorizedTensor.new(shape, rank=ranks, factorization="tucker")
    theirs.normal_(0, 0.02)
    num_tasks, out = shape[:2]
    biases = nn.Parameter(torch.zeros(num_tasks, out))
    holder = nn.ModuleList([theirs]).append(nn.ParameterList([biases])).to(x.device)

    def forward() -> Tensor:
        weights = theirs.to_tensor()
        return torch.stack([apply(x if shared else x[t], weights[t], biases[t]) for t in range(num_tasks)])

    return holder, forward


def _tltorch_tucker(layer: FactorizedLinear, x: Tensor, shared: bool) -> tuple[nn.Module, Callable[[], Tensor]] | None:
    """A TensorLy-Torch Tucker tensor over ``(T, out, in)`` at our ranks, used as its reconstructed layers are."""
    k_in, k_out, k_task = layer.ranks
    shape = (layer.num_tasks, layer.out_features, layer.in_features)
    return _tltorch_reconstructed(shape, (k_task, k_out, k_in), x, shared, nn.functional.linear)


def _grid_point(
    name: str,
    layer: FactorizedLinear | FactorizedConv2d,
    dense: nn.ModuleList,
    x: Tensor,
    shared: bool,
    best: int,
    dense_multiply_adds: int,
    theirs: tuple[nn.Module, Callable[[], Tensor]] | None,
    repeats: int,
    planned: int | None = None,
) -> dict:
    """One grid entry: time and FLOP ratio against ``T`` dense layers, plan against best, vs TensorLy-Torch.

    ``planned``: the multiply-adds of the multiply-add planner's choice where the layer chose its
    plan by timed trial (default: the layer's plan).
    """
    plan = layer.plan
    assert plan is not None
    planned = plan.multiply_adds if planned is None else planned
    dense_step = _training_step(dense, _dense_forward(dense, x, shared=shared))
    ours_step = _training_step(layer, lambda: layer(x))
    entry = {
        "name": name,
        **compare(dense_step, ours_step, repeats),
        "flop_ratio": _flops(ours_step) / _flops(dense_step),
        "plan": str(plan),
        "plan_multiply_adds": plan.multiply_adds,
        "best_multiply_adds": best,
        "plan_vs_best": planned / best,
        "timed_vs_best": plan.multiply_adds / best,
        "dense_multiply_adds": dense_multiply_adds,
        "ranks": list(layer.ranks),
        "params_ours": layer.parameter_count(),
        "params_dense": sum(p.numel() for p in dense.parameters()),
        "target": f"plan_vs_best <= {PLAN_TARGET}; ratio <= {TIME_TARGET} x flop_ratio",
    }
    entry["time_vs_flop"] = entry["ratio"] / entry["flop_ratio"]
    entry["meets_plan_target"] = entry["plan_vs_best"] <= PLAN_TARGET
    entry["meets_time_target"] = entry["time_vs_flop"] <= TIME_TARGET
    if theirs is not None:
        holder, their_forward = theirs
        versus = compare(_training_step(holder, their_forward), ours_step, repeats)
        entry["vs_tltorch_ratio"] = versus["ratio"]
        entry["meets_tltorch_target"] = versus["ratio"] <= 0.5
    return entry


def _grid_entries(repeats: int, device: torch.device, shapes: tuple[tuple[int, int, int, int], ...]) -> list[dict]:
    """Every linear grid point: planned layer vs ``T`` dense layers, plan vs best order, vs TensorLy-Torch."""
    entries = []
    point = 0
    for tasks, fan_in, fan_out, batch in shapes:
        for setting in GRID_RANKS:
            dense = _grid_dense(tasks, fan_in, fan_out, setting.endswith("-related"), device)
            for kind in GRID_KINDS[setting]:
                shared = point % 2 == 0  # alternate shared (B, in) and per-task (T, B, in) inputs
                point += 1
                torch.manual_seed(point)
                layer = _grid_layer(kind, setting, dense).to(device)
                x = torch.randn(*(() if shared else (tasks,)), batch, fan_in, device=device)
                layer(x)
                plan = layer.plan
                assert plan is not None
                subscripts, output = plan.equation.split("->")
                shapes_now = [tuple(x.shape), *(tuple(t.shape) for t in layer._network(shared)[1])]
                best = best_multiply_adds(subscripts.split(","), output, shapes_now)
                where = "shared" if shared else "per-task"
                name = f"grid/{kind} T={tasks} {fan_in}->{fan_out} B={batch} {setting} {where}"
                theirs = _tltorch_tucker(layer, x, shared) if kind == "tucker" else None
                dense_multiply_adds = tasks * batch * fan_in * fan_out
                entries.append(_grid_point(name, layer, dense, x, shared, best, dense_multiply_adds, theirs, repeats))
    return entries


# (T, in, out, kernel, image size, batch): a first layer on colour images, a wide 3×3 layer, the
# DMTRL LeNet's two convolutions, and small layers with many tasks (overhead-bound).
CONV_GRID_SHAPES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (2, 3, 32, 3, 32, 32), (2, 64, 64, 3, 16, 16), (10, 1, 32, 5, 28, 64),
    (10, 32, 64, 4, 12, 64), (10, 16, 16, 3, 8, 8), (50, 8, 16, 3, 8, 16),
    (2, 32, 32, 3, 32, 8), (10, 3, 16, 5, 32, 16), (50, 1, 8, 3, 28, 8), (10, 64, 128, 3, 8, 32),
)  # fmt: skip


def _conv_grid_dense(
    tasks: int, cin: int, cout: int, kernel: int, related: bool, device: torch.device
) -> nn.ModuleList:
    layers = nn.ModuleList(nn.Conv2d(cin, cout, kernel) for _ in range(tasks))
    if related:
        with torch.no_grad():
            common = layers[0].weight.clone()
            for layer in layers:
                layer.weight.mul_(0.3).add_(common)
    return layers.to(device)


def _conv_grid_layer(kind: str, setting: str, dense: nn.ModuleList) -> FactorizedConv2d:
    first = dense[0]
    if setting.startswith("eps"):
        return FactorizedConv2d.from_dense(list(dense), KINDS[kind], RelativeError(0.1), timed=True)
    rule = Ranks(4) if setting == "rank4" else ParameterBudget(0.25)
    return FactorizedConv2d(
        first.in_channels, first.out_channels, first.kernel_size, len(dense), KINDS[kind], rule=rule, timed=True
    )


def _tltorch_tucker_conv(
    layer: FactorizedConv2d, x: Tensor, shared: bool
) -> tuple[nn.Module, Callable[[], Tensor]] | None:
    """A TensorLy-Torch Tucker tensor over ``(T, out, in, kh, kw)`` at our ranks, then ``conv2d`` per task."""
    k_h, k_w, k_in, k_out, k_task = layer.ranks
    shape = (layer.num_tasks, layer.out_channels, layer.in_channels, *layer.kernel_size)
    return _tltorch_reconstructed(shape, (k_task, k_out, k_in, k_h, k_w), x, shared, nn.functional.conv2d)


def _conv_grid_entries(
    repeats: int, device: torch.device, shapes: tuple[tuple[int, int, int, int, int, int], ...]
) -> list[dict]:
    """Every conv grid point, measured as the linear ones (:func:`_grid_point`)."""
    entries = []
    point = 0
    for tasks, cin, cout, kernel, size, batch in shapes:
        for setting in GRID_RANKS:
            dense = _conv_grid_dense(tasks, cin, cout, kernel, setting.endswith("-related"), device)
            for kind in GRID_KINDS[setting]:
                shared = point % 2 == 0
                point += 1
                torch.manual_seed(point)
                layer = _conv_grid_layer(kind, setting, dense).to(device)
                x = torch.randn(*(() if shared else (tasks,)), batch, cin, size, size, device=device)
                layer(x)
                subscripts, tensors = layer.weight.network(WEIGHT_MODES)
                shapes_now = [t.shape for t in tensors]
                best = best_convolution_multiply_adds(subscripts, shapes_now, x.shape, layer.window)
                names = layer.weight.factor_names
                planned = plan_convolution(subscripts, shapes_now, names, x.shape, layer.window).multiply_adds
                where = "shared" if shared else "per-task"
                name = f"grid/{kind} conv T={tasks} {cin}->{cout} k={kernel} {size}x{size} B={batch} {setting} {where}"
                theirs = _tltorch_tucker_conv(layer, x, shared) if kind == "tucker" else None
                positions = (size - kernel + 1) ** 2
                dense_multiply_adds = tasks * batch * positions * cin * cout * kernel * kernel
                entries.append(
                    _grid_point(name, layer, dense, x, shared, best, dense_multiply_adds, theirs, repeats, planned)
                )
    return entries


def _grid_summary(entries: list[dict]) -> dict:
    failing = [e["name"] for e in entries if not (e["meets_plan_target"] and e["meets_time_target"])]
    slow = [e["name"] for e in entries if e.get("meets_tltorch_target") is False]
    return {
        "name": "grid/summary",
        "points": len(entries),
        "conv_points": sum(" conv " in e["name"] for e in entries),
        "plan_target_met": sum(e["meets_plan_target"] for e in entries),
        "time_target_met": sum(e["meets_time_target"] for e in entries),
        "tltorch_points": sum("vs_tltorch_ratio" in e for e in entries),
        "tltorch_target_met": sum(e.get("meets_tltorch_target") is True for e in entries),
        "exceptions": failing,
        "slower_than_half_tltorch": slow,
    }


def run(quick: bool = False, device: str | torch.device = "cpu") -> list[dict]:
    """All entries; ``quick`` uses a small batch and few repeats (< 30 s on 2 cores)."""
    torch.manual_seed(0)
    device = torch.device(device)
    if quick:  # one entry per layer kind, cheap enough for CI
        cases = [("conv1", "laf", 8, True), ("fc1", "laf", 8, True), ("fc2", "tt", 8, True)]
        repeats, network_methods = 3, ("laf",)
    else:
        cases = [(n, m, DEFAULT_BATCH, True) for n in LAYERS for m in METHODS]
        # Composition costs the same at any batch size while the GEMMs grow with it ...
        cases += [("fc1", m, 4 * DEFAULT_BATCH, True) for m in METHODS]
        # ... and at a small batch the per-task loop is bound by per-call overhead, not FLOPs.
        cases += [(n, m, 8, False) for n in LAYERS for m in METHODS]
        repeats, network_methods = 10, METHODS
    results = [
        entry
        for name, method, batch, dense in cases
        for entry in _layer_entries(name, method, batch, repeats, dense, device)
    ]
    results += _network_entries(8 if quick else DEFAULT_BATCH, repeats, network_methods, device)
    results += _tltorch_entries(8 if quick else DEFAULT_BATCH, repeats, device)
    grid = _grid_entries(3 if quick else 5, device, GRID_SHAPES[4:5] if quick else GRID_SHAPES)
    grid += _conv_grid_entries(3 if quick else 5, device, CONV_GRID_SHAPES[4:5] if quick else CONV_GRID_SHAPES)
    results += [*grid, _grid_summary(grid)]
    return results


def _mb(value: float | None) -> str:
    return f"{value:8.1f}" if value is not None else f"{'n/a':>8s}"


def _print_table(results: list[dict]) -> None:
    header = (
        f"{'name':34s} {'ratio':>6s} {'flops':>6s} {'baseline_ms':>11s} {'ours_ms':>8s} {'rep':>3s} "
        f"{'peak_MB':>8s} {'base_MB':>8s} {'params':>9s}"
    )
    print(header)
    print("-" * len(header))
    for row in results:
        if "skipped" in row:
            print(f"{row['name']:34s} skipped: {row['skipped']}")
            continue
        print(
            f"{row['name']:34s} {row['ratio']:6.2f} {row['flop_ratio']:6.2f} {1e3 * row['baseline_s']:11.2f} "
            f"{1e3 * row['ours_s']:8.2f} "
            f"{row['repeats']:3d} {_mb(row['peak_mem_mb'])} {_mb(row['baseline_peak_mem_mb'])} "
            f"{row.get('params_ours', ''):>9}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small batch, few repeats (< 30 s)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default cpu)")
    arguments = parser.parse_args()
    start = time.perf_counter()
    _print_table(run(quick=arguments.quick, device=arguments.device))
    print(f"\ntotal {time.perf_counter() - start:.1f} s, torch {torch.__version__}, {torch.get_num_threads()} threads")
