"""The LeNet conv1 points of issue #20's grid, timed trial with and without the per-task convolution.

``python -m benchmarks.conv1_split [--repeats N] [--runs R] [--out FILE]``: the 8 grid points of
the ``T = 10``, 1 → 32, 5×5, 28×28, batch 64 shape (built exactly as ``bench_factorized``'s conv
grid builds them: same seeds, same order of random draws), each as a ``timed=True`` layer whose
trial may not split the convolution per task (``split_tasks=False``: the candidates before that
execution existed, "before") and one whose trial may (the default, "after"). Per run, both trials
run afresh, then a training step (forward + backward + SGD, one torch thread) of the ``T`` dense
layers and of both layers is timed interleaved; ``ratio`` is the median time against the dense
layers' and ``time_vs_flop`` that ratio over the FLOP ratio (target ≤ 1.5). ``R`` runs, medians
over them; ``split`` counts the runs whose trial chose the per-task convolution.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from benchmarks import bench_factorized as grid
from benchmarks.factorized_layout import _call, _interleaved
from mtlkit.nn import FactorizedConv2d

SHAPE = (10, 1, 32, 5, 28, 64)
VARIANTS = {"before": False, "after": None}  # split_tasks of each variant's timed trial


def _points() -> Iterator[tuple[str, FactorizedConv2d, nn.ModuleList, Tensor]]:
    """The conv grid's loop up to the conv1 shape (every draw as there), yielding its points."""
    shapes = grid.CONV_GRID_SHAPES[: grid.CONV_GRID_SHAPES.index(SHAPE) + 1]
    found: list[tuple[str, FactorizedConv2d, nn.ModuleList, Tensor]] = []
    build, point = grid._conv_grid_layer, grid._grid_point

    def untimed(kind: str, setting: str, dense: nn.ModuleList) -> FactorizedConv2d:
        layer = build(kind, setting, dense)
        layer.timed = False  # no draw from the global stream either way; the trials run below
        return layer

    def keep(name: str, layer: FactorizedConv2d, dense: nn.ModuleList, x: Tensor, *_: object, **__: object) -> dict:
        if " T=10 1->32 k=5 " in name:
            found.append((name.removeprefix("grid/"), layer, dense, x))
        return {}

    grid._conv_grid_layer, grid._grid_point = untimed, keep  # type: ignore[assignment]
    try:
        grid._conv_grid_entries(1, torch.device("cpu"), shapes)
    finally:
        grid._conv_grid_layer, grid._grid_point = build, point
    yield from found


def _variant(layer: FactorizedConv2d, split_tasks: bool | None) -> FactorizedConv2d:
    copied = copy.deepcopy(layer)
    copied.timed, copied.split_tasks, copied._plans = True, split_tasks, {}
    return copied


def measure(repeats: int) -> list[dict]:
    """One run over the 8 points: fresh trials, then seconds of each variant against the dense layers."""
    rows = []
    for name, layer, dense, x in _points():
        shared = x.dim() == 4
        steps = {"dense": grid._training_step(dense, grid._dense_forward(dense, x, shared=shared))}
        chosen = {}
        for key, split in VARIANTS.items():
            variant = _variant(layer, split)
            variant(x)  # the timed trial
            chosen[key] = variant.plan
            steps[key] = grid._training_step(variant, _call(variant, x))
        seconds = _interleaved(steps, repeats)
        row: dict = {"name": name, "ranks": list(layer.ranks), "dense_s": seconds["dense"]}
        for key in VARIANTS:
            plan = chosen[key]
            assert plan is not None
            ratio = seconds[key] / seconds["dense"]
            flop_ratio = grid._flops(steps[key]) / grid._flops(steps["dense"])
            row[key] = {
                "ratio": ratio,
                "flop_ratio": flop_ratio,
                "time_vs_flop": ratio / flop_ratio,
                "split_tasks": plan.split_tasks,
                "plan": str(plan),
            }
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
    for index, row in enumerate(runs[0]):
        same = [run[index] for run in runs]
        line = {"name": row["name"], "ranks": row["ranks"]}
        for key in VARIANTS:
            for field in ("ratio", "flop_ratio", "time_vs_flop"):
                line[f"{key}_{field}"] = statistics.median(r[key][field] for r in same)
            line[f"{key}_split"] = sum(r[key]["split_tasks"] for r in same)
        summary.append(line)
        print(
            f"{row['name']:<52} before {line['before_ratio']:.2f} ({line['before_time_vs_flop']:.2f}×FLOP)  "
            f"after {line['after_ratio']:.2f} ({line['after_time_vs_flop']:.2f}×FLOP, split in "
            f"{line['after_split']}/{len(runs)})  FLOP ratio {line['after_flop_ratio']:.2f}"
        )
    if args.out:
        with open(args.out, "w") as file:
            json.dump({"runs": runs, "summary": summary}, file, indent=1)


if __name__ == "__main__":
    main()
