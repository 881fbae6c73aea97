"""The gradient methods' cost table of docs/balancing.rst, generated from the benchmark file."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs"))
import aggregation_cost_table as act  # noqa: E402 - docs tooling is not a package


def _entry(method: str, t: int, ratio: float, every_k: bool = False) -> dict:
    reference, target = ("plain summing", "<= 1.5 (vs plain summing)") if every_k else ("T backward passes", "<= 1.3")
    name = f"{method} step time vs {reference} (LeNet, T = {t}, 10 steps)"
    ratios = {"ratio": ratio, "time_ratio_vs_T_backward": ratio, "time_ratio_vs_plain": 2 * ratio}
    return {"module": "bench_aggregation", "name": name, "target": target, **ratios, "T_backward_vs_plain": 2.0,
            "peak_memory_ratio_vs_plain": 1.4, "load_average_1min_at_start": 1.5}  # fmt: skip


def test_the_table_lists_every_method_and_names_exactly_the_missed_targets():
    benchmarks = {"entries": [
        _entry("PCGrad", 2, 1.0), _entry("PCGrad", 10, 1.31), _entry("Nash-MTL (update every 10)", 2, 1.2, True),
        {"module": "bench_weighting", "name": "UW step time vs plain", "ratio": 9.0, "target": "<= 1.1"},
    ]}  # fmt: skip
    text = act.table(benchmarks)
    assert "   * - PCGrad" in text and "   * - Nash-MTL (update every 10)" in text and "UW" not in text
    assert "Missed: PCGrad at T = 10 (1.31" in text and "Nash-MTL (update every 10) at" not in text
    benchmarks["entries"][1]["ratio"] = 1.29
    assert "Every method meets its target" in act.table(benchmarks)


def test_the_committed_benchmark_file_renders():
    act.write()
    assert act.OUT.read_text().startswith(".. list-table::")
