"""The factorised-layer benchmark tables of docs/factorized.rst, generated from the benchmark file."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs"))
import factorized_benchmark_tables as fbt  # noqa: E402 - docs tooling is not a package


def _point(name: str, time_vs_flop: float, ratio: float, tltorch: bool | None = None) -> dict:
    entry = {"module": "bench_factorized", "name": f"grid/{name}", "ratio": ratio, "flop_ratio": ratio / time_vs_flop,
             "time_vs_flop": time_vs_flop, "meets_plan_target": True, "meets_time_target": time_vs_flop <= 1.5,
             "load_average_1min_at_start": 2.0}  # fmt: skip
    if tltorch is not None:
        entry["meets_tltorch_target"] = tltorch
    return entry


def test_the_grid_table_counts_per_setting_and_lists_the_misses_outside_ranks_4():
    benchmarks = {"entries": [
        _point("tucker T=2 32->32 B=512 rank4 per-task", 9.0, 0.9, tltorch=False),
        _point("tt T=2 32->32 B=512 eps0.1-related per-task", 1.61, 1.7),
        _point("tucker T=2 32->32 B=512 eps0.1-related shared", 1.2, 1.3, tltorch=True),
        _point("tucker conv T=2 3->32 k=3 32x32 B=32 budget0.25 shared", 1.1, 0.5),
        {"module": "bench_factorized", "name": "grid/summary", "points": 4},
        {"module": "bench_weighting", "name": "grid/tt T=2 1->1 B=1 eps0.1-related shared", "ratio": 9.0},
    ]}  # fmt: skip
    text = fbt.grid_table(benchmarks)
    rows = text.split("   * - ")
    linear_eps = next(r for r in rows if r.startswith("linear\n     - ε = 0.1, related"))
    assert "     - 2\n     - 2\n     - 1\n     - 1.20–1.61×\n     - 0\n     - 1 of 1" in linear_eps
    assert next(r for r in rows if r.startswith("all\n")).split("\n     - ")[2:5] == ["4", "4", "2"]
    assert "tt T=2 32->32 B=512 eps0.1-related per-task\n     - 1.61×" in text  # the one miss outside Ranks(4)
    assert "rank4 per-task\n     - 9.00×" not in text and "1->1" not in text
    benchmarks["entries"][1]["meets_time_target"] = True
    assert "Every point outside ``Ranks(4)`` meets the time target." in fbt.grid_table(benchmarks)


def test_the_grid_table_agrees_with_the_benchmarks_own_summary():
    benchmarks = json.loads(fbt.BENCHMARKS.read_text())
    summary = next(e for e in benchmarks["entries"] if e["name"] == "grid/summary")
    every = next(r for r in fbt.grid_table(benchmarks).split("   * - ") if r.startswith("all\n"))
    cells = every.split("\n\n")[0].split("\n     - ")
    assert cells[2:5] == [str(summary["points"]), str(summary["plan_target_met"]), str(summary["time_target_met"])]
    assert cells[7] == f"{summary['tltorch_target_met']} of {summary['tltorch_points']}"


def test_the_committed_benchmark_file_renders():
    fbt.write()
    for name in ("factorized_lenet.inc", "factorized_grid.inc"):
        assert (fbt.OUT / name).read_text().startswith(".. list-table::")
