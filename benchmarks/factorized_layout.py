"""The 9 linear ε-rank points of issue #20's grid that missed the time target, with and without ``leading``.

``python -m benchmarks.factorized_layout [--repeats N] [--runs R] [--out FILE]``: for each point
(built exactly as ``bench_factorized``'s grid builds it: same seeds, same order of random draws),
a training step (forward + backward + SGD, one torch thread) of ``T`` dense layers, of the layer
on its plan with the intermediates in order of appearance (``leading=""``) and on the same plan
stored task- and batch-major (``leading="tb"``, what :class:`~mtlkit.nn.FactorizedLinear` uses),
timed interleaved in one run; ``ratio`` is the median time against the dense layers' and
``time_vs_flop`` that ratio over the FLOP ratio (target ≤ 1.5). ``R`` runs, medians over them.

For the three 32 → 32 points it also splits the step: the plan's last step alone on a composed
weight (a leaf parameter in that step's layout), and the weight chain before it (forward and
backward of the steps that compose the weight).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn

from benchmarks import bench_factorized as grid
from mtlkit.factorized import ContractionPlan, plan_contraction
from mtlkit.nn import FactorizedLinear

MISSES = (
    "tucker T=2 32->32 B=512 eps0.1-related shared",
    "tucker T=2 32->32 B=512 eps0.1-unrelated shared",
    "tt T=2 32->32 B=512 eps0.1-unrelated per-task",
    "tt T=2 512->512 B=64 eps0.1-related per-task",
    "tt T=2 512->512 B=64 eps0.1-unrelated per-task",
    "tucker T=10 1024->512 B=32 eps0.1-related shared",
    "tt T=10 1024->512 B=32 eps0.1-related per-task",
    "tucker T=10 1024->512 B=32 eps0.1-unrelated shared",
    "tt T=10 1024->512 B=32 eps0.1-unrelated per-task",
)
LAYOUTS = {"appearance": "", "tb": "tb"}


def _points() -> Iterator[tuple[str, FactorizedLinear, nn.ModuleList, Tensor, bool]]:
    """The grid's linear loop, drawing every point's random numbers, yielding the misses."""
    cpu = torch.device("cpu")
    point = 0
    for tasks, fan_in, fan_out, batch in grid.GRID_SHAPES:
        for setting in grid.GRID_RANKS:
            dense = grid._grid_dense(tasks, fan_in, fan_out, setting.endswith("-related"), cpu)
            for kind in grid.GRID_KINDS[setting]:
                shared = point % 2 == 0
                point += 1
                torch.manual_seed(point)
                name = f"{kind} T={tasks} {fan_in}->{fan_out} B={batch} {setting} {'shared' if shared else 'per-task'}"
                if name in MISSES:
                    layer = grid._grid_layer(kind, setting, dense)
                    yield name, layer, dense, torch.randn(*(() if shared else (tasks,)), batch, fan_in), shared


def _on_plan(layer: FactorizedLinear, plan: ContractionPlan) -> FactorizedLinear:
    """A copy of ``layer`` that runs ``plan``."""
    copied = copy.deepcopy(layer)
    copied.plan_for = lambda *args, **kwargs: plan  # type: ignore[method-assign]
    return copied


class _LastStep(nn.Module):
    """The plan's last step on the composed weight, a leaf parameter in that step's layout, plus the bias."""

    def __init__(self, layer: FactorizedLinear, plan: ContractionPlan) -> None:
        super().__init__()
        self.equation = plan.steps[-1].equation
        weight_subscripts = self.equation.split("->")[0].split(",")[1]
        with torch.no_grad():
            composed = torch.einsum(f"iot->{weight_subscripts}", layer.weight.compose()).contiguous()
        self.weight = nn.Parameter(composed)
        assert layer.bias is not None
        self.bias = nn.Parameter(layer.bias.detach().clone())

    def forward(self, x: Tensor) -> Tensor:
        return torch.einsum(self.equation, x, self.weight) + self.bias.T.contiguous().unsqueeze(1)


def _weight_chain(layer: FactorizedLinear, plan: ContractionPlan, shared: bool, x: Tensor) -> Callable[[], None]:
    """Forward and backward of the plan's steps before the last (they compose the weight here)."""

    def run() -> None:
        _, tensors, _ = layer._network(shared)
        live = list(zip(plan.equation.split("->")[0].split(","), [x, *tensors], strict=True))
        for step, positions in zip(plan.steps[:-1], plan.path[:-1], strict=True):
            taken = [live[p] for p in positions]
            for p in sorted(positions, reverse=True):
                del live[p]
            live.append((step.equation.split("->")[1], torch.einsum(step.equation, *(t for _, t in taken))))
        live[-1][1].sum().backward()

    return run


def _call(module: nn.Module, x: Tensor) -> Callable[[], Tensor]:
    return lambda: module(x)


def _interleaved(steps: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    for step in steps.values():
        step()
    times: dict[str, list[float]] = {key: [] for key in steps}
    for _ in range(repeats):
        for key, step in steps.items():
            start = time.perf_counter()
            step()
            times[key].append(time.perf_counter() - start)
    return {key: statistics.median(values) for key, values in times.items()}


def measure(repeats: int) -> list[dict]:
    """One run over the 9 points: seconds of each variant, ratios against the dense layers."""
    rows = []
    for name, layer, dense, x, shared in _points():
        subscripts, tensors, names = layer._network(shared)
        shapes = [tuple(x.shape), *(tuple(t.shape) for t in tensors)]
        plans = {key: plan_contraction(subscripts, "tbo", shapes, names, leading=lead) for key, lead in LAYOUTS.items()}
        steps = {"dense": grid._training_step(dense, grid._dense_forward(dense, x, shared=shared))}
        for key, plan in plans.items():
            variant = _on_plan(layer, plan)
            steps[key] = grid._training_step(variant, _call(variant, x))
        small = layer.in_features * layer.out_features <= 32 * 32
        if small:
            last = _LastStep(layer, plans["tb"])
            steps["last step alone"] = grid._training_step(last, _call(last, x))
            steps["weight chain"] = _weight_chain(_on_plan(layer, plans["tb"]), plans["tb"], shared, x)
        seconds = _interleaved(steps, repeats)
        flops = {key: grid._flops(steps[key]) for key in ("dense", *LAYOUTS)}
        row: dict = {"name": name, "ranks": list(layer.ranks), "dense_s": seconds["dense"]}
        for key in LAYOUTS:
            ratio = seconds[key] / seconds["dense"]
            flop_ratio = flops[key] / flops["dense"]
            row[key] = {"ratio": ratio, "flop_ratio": flop_ratio, "time_vs_flop": ratio / flop_ratio,
                        "plan": str(plans[key])}  # fmt: skip
        if small:
            row["last_step_vs_dense"] = seconds["last step alone"] / seconds["dense"]
            row["weight_chain_vs_dense"] = seconds["weight chain"] / seconds["dense"]
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    runs = [measure(args.repeats) for _ in range(args.runs)]
    summary = []
    for rows in zip(*runs, strict=True):
        entry: dict = {"name": rows[0]["name"], "ranks": rows[0]["ranks"]}
        for key in LAYOUTS:
            for field in ("ratio", "flop_ratio", "time_vs_flop"):
                entry[f"{key} {field}"] = statistics.median(r[key][field] for r in rows)
        for field in ("last_step_vs_dense", "weight_chain_vs_dense"):
            if field in rows[0]:
                entry[field] = statistics.median(r[field] for r in rows)
        summary.append(entry)
        extra = "".join(f"  {f} {entry[f]:.2f}" for f in ("last_step_vs_dense", "weight_chain_vs_dense") if f in entry)
        print(
            f"{entry['name']:50s} time/FLOP: appearance {entry['appearance time_vs_flop']:.2f}, "
            f"tb {entry['tb time_vs_flop']:.2f} (ratio {entry['appearance ratio']:.2f} → {entry['tb ratio']:.2f}, "
            f"FLOP {entry['tb flop_ratio']:.2f}){extra}",
            flush=True,
        )
    if args.out:
        with open(args.out, "w") as out:
            json.dump({"runs": runs, "summary": summary}, out, indent=1)


if __name__ == "__main__":
    main()
