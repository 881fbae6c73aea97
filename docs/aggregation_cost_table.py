"""The cost table of the gradient aggregators in ``docs/balancing.rst``, generated from the benchmark file.

Run by ``docs/conf.py`` at every build: writes ``docs/results/aggregation_cost.inc``, which the
balancing page includes. Every number is a ratio of one ``python -m benchmarks --only aggregation``
run (``results/benchmarks.json``, module ``bench_aggregation``), and the sentence on the issue's
targets is computed from the same entries, so the page follows the file when the benchmark is re-run.
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
OUT = Path(__file__).resolve().parent / "results" / "aggregation_cost.inc"
#: "<method> step time vs <reference> (LeNet, T = <T>, ...)"
NAME = re.compile(r"^(?P<method>.+?) step time vs (?P<reference>.+?) \(LeNet, T = (?P<T>\d+),")


def entries_by_method(benchmarks: dict[str, Any]) -> dict[str, dict[int, dict[str, Any]]]:
    """``{method: {T: entry}}`` of the ``bench_aggregation`` step-time entries."""
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for entry in benchmarks["entries"]:
        match = NAME.match(str(entry["name"])) if entry["module"] == "bench_aggregation" else None
        if match:
            out.setdefault(match["method"], {})[int(match["T"])] = entry
    return out


def _ratio(value: float | None, unit: str = "") -> str:
    return "—" if value is None else f"{value:.2f}{unit}"


def table(benchmarks: dict[str, Any]) -> str:
    """The reST of the cost table and the computed sentence on the targets."""
    methods = entries_by_method(benchmarks)
    header = ["method", "T = 2: step / T passes", "T = 10: step / T passes", "T = 2, 10: step / plain",
              "peak memory / plain (T = 2, 10)"]  # fmt: skip
    rows, missed = [], []
    for method, by_t in methods.items():
        every_k = "update every" in method

        def versus(t: int, key: str, by_t: dict = by_t) -> float | None:
            return by_t[t].get(key) if t in by_t else None

        per_t = [_ratio(None if every_k else versus(t, "time_ratio_vs_T_backward")) for t in (2, 10)]
        plain = ", ".join(_ratio(versus(t, "time_ratio_vs_plain")) for t in (2, 10))
        memory = ", ".join(_ratio(versus(t, "peak_memory_ratio_vs_plain")) for t in (2, 10))
        rows.append([method, *per_t, plain, memory])
        missed += [f"{method} at T = {t} ({e['ratio']:.2f}, target {e['target']})" for t, e in by_t.items()
                   if e["ratio"] > float(re.findall(r"[\d.]+", str(e["target"]))[0])]  # fmt: skip
    loads = sorted({e["load_average_1min_at_start"] for by_t in methods.values() for e in by_t.values()})
    passes = {t: e["T_backward_vs_plain"] for by_t in methods.values() for t, e in by_t.items()}
    verdict = ("Every method meets its target at both T." if not missed else "Missed: " + "; ".join(missed) + ".") + (
        " The per-task passes themselves cost "
        + " and ".join(f"{v:.1f}× (T = {t})" for t, v in sorted(passes.items()))
        + " plain summing, so a method on the parameters costs about T backward passes; with "
        "``update_every = k`` Nash-MTL costs about :math:`1 + (c_T - 1)/k` plain steps, "
        ":math:`c_T` the T passes' ratio."
    )
    note = f"One run (load average at its start: {', '.join(str(v) for v in loads)}); medians of its repeats."
    return _rst_table(header, rows) + "\n" + note + " " + verdict + "\n"


def write() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(table(json.loads(BENCHMARKS.read_text())))


if __name__ == "__main__":
    print(table(json.loads(BENCHMARKS.read_text())))
