"""The factorised-layer benchmark tables of ``docs/factorized.rst``, generated from the benchmark file.

Run by ``docs/conf.py`` at every build: writes ``docs/results/factorized_lenet.inc`` (the DMTRL
LeNet's layers and the whole net) and ``docs/results/factorized_grid.inc`` (issue #20's grid, per
layer type and rank setting, and every point off its time target outside ``Ranks(4)``). Every
number is a ratio of one ``python -m benchmarks --only factorized`` run (``results/benchmarks.json``,
module ``bench_factorized``), so the page follows the file when the benchmark is re-run;
``python docs/factorized_benchmark_tables.py`` prints both.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate_results import _rst_table

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "results" / "benchmarks.json"
OUT = Path(__file__).resolve().parent / "results"
METHODS = ("laf", "tucker", "tt")
LABEL = {"laf": "LAF", "tucker": "Tucker", "tt": "TT", "cp": "CP"}
SETTINGS = {
    "rank4": "``Ranks(4)``",
    "budget0.25": "``ParameterBudget(0.25)``",
    "eps0.1-related": "ε = 0.1, related",
    "eps0.1-unrelated": "ε = 0.1, unrelated",
}
#: "grid/<kind> [conv ]T=... <setting> <shared|per-task>"
GRID_NAME = re.compile(r"^grid/(?P<kind>\w+) (?P<conv>conv )?T=\S+ .* (?P<setting>\S+) (?P<where>shared|per-task)$")


def _entries(benchmarks: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in benchmarks["entries"] if e["module"] == "bench_factorized"}


def _x(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def _range(values: list[float]) -> str:
    return "—" if not values else f"{min(values):.2f}–{max(values):.2f}×"


def _load(entries: dict[str, dict[str, Any]]) -> str:
    loads = sorted({e["load_average_1min_at_start"] for e in entries.values() if "load_average_1min_at_start" in e})
    return ", ".join(str(v) for v in loads)


def lenet_table(benchmarks: dict[str, Any]) -> str:
    """Each factorised LeNet layer against its ``T`` dense layers and its loop oracle; the whole net."""
    entries = _entries(benchmarks)

    def ratio(name: str) -> float | None:
        return entries[name]["ratio"] if name in entries else None

    def flops(name: str) -> str:
        return f"{entries[name]['flop_ratio']:.2f}" if name in entries else "—"

    header = ["layer", "method", "time vs T dense (B = 64)", "FLOP ratio", "B = 256",
              "batched vs per-task loop (B = 64, 8)"]  # fmt: skip
    rows = []
    for layer in ("conv1", "conv2", "fc1", "fc2"):
        for method in METHODS:
            dense = f"{layer}/{method} vs_dense"
            loop = f"{layer}/{method} batched_vs_loop"
            rows.append([layer, LABEL[method], _x(ratio(dense)), flops(dense), _x(ratio(f"{dense} @B=256")),
                         f"{_x(ratio(loop))}, {_x(ratio(f'{loop} @B=8'))}"])  # fmt: skip
    network = ["network", "method", "time vs 10 STL LeNets", "FLOP ratio", "convolutions split per task",
               "batched vs per-task execution"]  # fmt: skip
    net_rows = []
    for method in METHODS:
        fused = f"network/{method} vs_stl"
        net_rows.append(["LeNet", LABEL[method], _x(ratio(fused)), flops(fused),
                         _x(ratio(f"network/{method} split_tasks vs_stl")),
                         _x(ratio(f"network/{method} batched_vs_per_task"))])  # fmt: skip
    note = (
        f"One run, one thread (load average at its start: {_load(entries)}); medians of its repeats. "
        "Ratios below 1 are faster than the reference."
    )
    return _rst_table(header, rows) + "\n" + _rst_table(network, net_rows) + "\n" + note + "\n"


def _grid(entries: dict[str, dict[str, Any]]) -> list[tuple[re.Match[str], dict[str, Any]]]:
    found = []
    for name, entry in entries.items():
        match = GRID_NAME.match(name)
        if match:
            found.append((match, entry))
    return found


def grid_table(benchmarks: dict[str, Any]) -> str:
    """Issue #20's grid: targets met per layer type and rank setting, and the misses outside ``Ranks(4)``."""
    entries = _entries(benchmarks)
    grid = _grid(entries)
    header = ["layer", "ranks", "points", "plan ≤ 1.1 × best", "time ≤ 1.5 × FLOP ratio", "time / FLOP ratio",
              "faster than dense", "≥ 2× faster than TensorLy-Torch"]  # fmt: skip
    rows = []
    for conv in (False, True):
        for setting, label in SETTINGS.items():
            chosen = [e for m, e in grid if bool(m["conv"]) == conv and m["setting"] == setting]
            if not chosen:
                continue
            theirs = [e for e in chosen if "meets_tltorch_target" in e]
            rows.append([
                "conv" if conv else "linear", label, str(len(chosen)),
                str(sum(e["meets_plan_target"] for e in chosen)), str(sum(e["meets_time_target"] for e in chosen)),
                _range([e["time_vs_flop"] for e in chosen]), str(sum(e["ratio"] < 1 for e in chosen)),
                f"{sum(e['meets_tltorch_target'] for e in theirs)} of {len(theirs)}" if theirs else "—",
            ])  # fmt: skip
    total = [e for _, e in grid]
    rows.append(["all", "", str(len(total)), str(sum(e["meets_plan_target"] for e in total)),
                 str(sum(e["meets_time_target"] for e in total)), _range([e["time_vs_flop"] for e in total]),
                 str(sum(e["ratio"] < 1 for e in total)),
                 f"{sum(e.get('meets_tltorch_target') is True for e in total)} of "
                 f"{sum('meets_tltorch_target' in e for e in total)}"])  # fmt: skip
    misses = [
        [name.removeprefix("grid/"), _x(e["time_vs_flop"]), _x(e["ratio"]), f"{e['flop_ratio']:.2f}"]
        for name, e in entries.items()
        if name.startswith("grid/") and "rank4" not in name and e.get("meets_time_target") is False
    ]
    timed = [e["timed_vs_best"] for m, e in grid if m["conv"] and e.get("timed_vs_best") is not None]
    above = [v for v in timed if v > 1.1]
    out = _rst_table(header, rows) + "\n"
    repeats = ", ".join(str(r) for r in sorted({e["repeats"] for _, e in grid if "repeats" in e}))
    out += f"One run, one thread (load average at its start: {_load(entries)}); medians of {repeats} interleaved "
    out += "repeats. "
    out += (
        "The plan column counts the planner's choice (the untimed default). The convolutions are timed "
        f"(``timed=True``): at {len(above)} of their {len(timed)} points the trial ran a plan of more than 1.1 × the "
        f"fewest multiply-adds because it measured it faster{f' (up to {max(above):.2f} ×)' if above else ''}.\n"
    )
    if misses:
        out += "\nOff the time target outside ``Ranks(4)``:\n\n"
        out += _rst_table(["point", "time / FLOP ratio", "time vs dense", "FLOP ratio"], misses)
    else:
        out += "\nEvery point outside ``Ranks(4)`` meets the time target.\n"
    return out


def write() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    benchmarks = json.loads(BENCHMARKS.read_text())
    (OUT / "factorized_lenet.inc").write_text(lenet_table(benchmarks))
    (OUT / "factorized_grid.inc").write_text(grid_table(benchmarks))


if __name__ == "__main__":
    data = json.loads(BENCHMARKS.read_text())
    print(lenet_table(data))
    print(grid_table(data))
