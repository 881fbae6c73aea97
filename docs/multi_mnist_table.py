"""The Multi-MNIST / Multi-Fashion table and verdict of ``docs/balancing.rst``, generated from the results.

Run by ``docs/conf.py`` at every build: writes ``docs/results/multi_mnist_table.inc``, which the
balancing page includes. Every number comes from ``results/multi_mnist.json`` (accuracies, Δm,
the gates' quantities) or ``results/benchmarks.json`` (step-time ratios measured in one run), and
the verdict is computed from the rows, so it follows the campaign as configurations finish.

A line of the table is one method on one dataset. Its gate mark re-evaluates the experiment's
registered gates (``examples/multi_mnist``) on the rows that line stands on: the method's own and
its dataset's single-task (STL) rows. A line is in the verdict when all the planned seeds have run
and no gate fails; the verdict compares each such method's Δm with EW's by the same-seed paired
difference (:func:`mtlkit.metrics.paired_gain`: a difference counts beyond two standard errors).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the docs build from a checkout: render with this checkout's mtlkit

from generate_results import _rst_table  # noqa: E402

from mtlkit.experiments import discover  # noqa: E402
from mtlkit.gates import Gate  # noqa: E402
from mtlkit.metrics import paired_gain  # noqa: E402

RESULTS = ROOT / "results" / "multi_mnist.json"
BENCHMARKS = ROOT / "results" / "benchmarks.json"
OUT = Path(__file__).resolve().parent / "results" / "multi_mnist_table.inc"
TASKS = ("left", "right")
STL, EW = "STL", "EW"
DATASETS = {"mnist": "Multi-MNIST", "fashion": "Multi-Fashion", "fashion_mnist": "Multi-(Fashion+MNIST)"}
#: The benchmark entry of each method of the example, where its name there differs (the example's
#: MGDA-UB runs on the representation).
BENCHMARK_NAMES = {"MGDA-UB": "MGDA-UB (representation)"}


@dataclass(frozen=True)
class Line:
    """One method on one dataset: its rows, and what keeps it out of the verdict."""

    method: str
    acc: dict[str, dict[str, Any]]
    delta_m: dict[str, Any] | None
    n: int
    failed: list[str]
    pending: bool

    @property
    def in_verdict(self) -> bool:
        return not self.pending and not self.failed and self.delta_m is not None

    @property
    def status(self) -> str:
        if self.pending:
            return f"pending (n={self.n})"
        if self.method == STL:
            return "the Δm baseline"
        return "in the verdict" if self.in_verdict else "not in the verdict"


def lines(result: dict[str, Any], dataset: str, gates: Sequence[Gate]) -> list[Line]:
    """The lines of ``dataset`` in the order the results file holds its methods."""
    rows = [r for r in result["rows"] if r.get("variant") == dataset]
    planned = len(result.get("seeds") or [None])
    methods = list(dict.fromkeys(r["method"] for r in rows))
    out = []
    for method in methods:
        own = [r for r in rows if r["method"] == method]
        acc = {t: r for t in TASKS for r in own if r["metric"] == f"test_acc_{t}"}
        if len(acc) < len(TASKS):
            continue
        delta_m = next((r for r in own if r["metric"] == "delta_m_pct"), None)
        stand_on = own + [r for r in rows if r["method"] == STL and method != STL]
        failed = []
        for gate in gates:
            check = gate.evaluate(stand_on)
            if not check["passed"]:
                measured = check["note"] if check["value"] is None else f"{check['value']:.4g}"
                failed.append(f"{gate.name} ({measured})")
        n = min(r["n"] for r in [*acc.values(), *([delta_m] if delta_m else [])])
        out.append(Line(method, acc, delta_m, n, failed, pending=n < planned))
    return out


def step_ratio(bench: dict[str, Any] | None, method: str) -> tuple[float | None, str]:
    """The method's step time over plain summing's from one benchmark run, and its table cell."""
    if method == EW:
        return 1.0, "1 (reference)"
    if bench is None or method == STL:
        return None, "—"
    name = BENCHMARK_NAMES.get(method, method)
    for e in bench["entries"]:
        if e["module"] == "bench_weighting" and e["name"].startswith(f"{name} vs plain summing (Multi-MNIST LeNet"):
            return e["ratio"], f"{e['ratio']:.2f} ({e['ratio_min']:.2f}–{e['ratio_max']:.2f})"
        if e["module"] == "bench_aggregation" and e["name"].startswith(
            f"{name} step time vs T backward passes (LeNet, T = 2,"
        ):
            return e["time_ratio_vs_plain"], f"{e['time_ratio_vs_plain']:.2f}"
    return None, "not benchmarked"


def _num(value: float, digits: int = 2, sign: bool = False) -> str:
    return f"{value:+.{digits}f}".replace("-", "−") if sign else f"{value:.{digits}f}"


def _spread(row: dict[str, Any], sign: bool = False) -> str:
    text = _num(row["ours"], sign=sign)
    if row.get("ours_std") is not None:
        text += f" ± {_num(row['ours_std'])}"
    return f"{text} (n={row['n']})"


def table(lines_: Sequence[Line], bench: dict[str, Any] | None) -> str:
    header = ["method", *[f"{t} accuracy %" for t in TASKS], "Δm % vs STL", "step time / EW", "gates", "status"]
    body = [
        [
            line.method,
            *[_spread(line.acc[t]) for t in TASKS],
            _spread(line.delta_m, sign=True) if line.delta_m else "—",
            step_ratio(bench, line.method)[1],
            "fails: " + "; ".join(line.failed) if line.failed else "pass",
            line.status,
        ]
        for line in lines_
    ]
    return _rst_table(header, body)


def _paired(line: Line, reference: Line) -> dict[str, Any]:
    """Δm(line) − Δm(reference) paired by seed."""
    assert line.delta_m is not None and reference.delta_m is not None
    ours = dict(zip(line.delta_m["seeds"], line.delta_m["per_repeat"], strict=True))
    ref = dict(zip(reference.delta_m["seeds"], reference.delta_m["per_repeat"], strict=True))
    seeds = sorted(set(ours) & set(ref))
    return paired_gain([ours[s] for s in seeds], [ref[s] for s in seeds])


def _versus_stl(line: Line) -> int:
    """-1 / +1 when the line's Δm is below / above 0 by more than two standard errors, else 0."""
    assert line.delta_m is not None
    per_seed = line.delta_m["per_repeat"]
    g = paired_gain(per_seed, [0.0] * len(per_seed))
    return 0 if not g["beyond_2_standard_errors"] else 1 if g["gain"] > 0 else -1


def verdict(title: str, lines_: Sequence[Line], bench: dict[str, Any] | None) -> str:
    """What the finished, gated lines of one dataset say about each method against EW and STL."""
    held = [f"{x.method} (pending, n={x.n})" for x in lines_ if x.pending]
    held += [f"{x.method} ({'; '.join(x.failed)})" for x in lines_ if not x.pending and x.failed]
    out = f"**{title}.** "
    reference = next((x for x in lines_ if x.method == EW), None)
    if reference is None or not reference.in_verdict:
        if reference is not None and not reference.pending:
            out += "No verdict: EW's line fails a gate, and every method is judged against it."
        else:
            why = "has not run" if reference is None else "is pending"
            out += f"No verdict yet: EW's line {why}, and every method is judged against it."
    else:
        judged = [x for x in lines_ if x.in_verdict and x.method != EW]
        better, worse, same = [], [], []
        for x in judged:
            g = _paired(x, reference)
            ratio = step_ratio(bench, x.method)[0]
            cost = f", step {ratio:.2f}" if ratio is not None else ""
            text = f"{x.method} ({_num(g['gain'], sign=True)} ± {_num(g['standard_error'])}{cost})"
            (same if not g["beyond_2_standard_errors"] else better if g["gain"] > 0 else worse).append(text)
        below_stl = [x.method for x in [reference, *judged] if _versus_stl(x) < 0]
        above_stl = [x.method for x in [reference, *judged] if _versus_stl(x) > 0]
        out += f"EW's Δm against the single-task nets is {_spread(reference.delta_m, sign=True)}. "
        out += f"Of the {len(judged)} other methods with every seed and no failed gate, these differ from EW in Δm "
        out += "by more than two standard errors of the same-seed difference (points ± SE, step time / EW): "
        out += f"better: {', '.join(better) or 'none'}; worse: {', '.join(worse) or 'none'}. "
        out += f"Within two standard errors of EW: {', '.join(same) or 'none'}. "
        out += "Δm below 0 by more than two standard errors (the shared net loses to the single-task nets): "
        out += f"{', '.join(below_stl) or 'none'}; above 0: {', '.join(above_stl) or 'none'}."
    if held:
        out += f" Not judged: {', '.join(held)}."
    return out


def section(result: dict[str, Any], bench: dict[str, Any] | None, gates: Sequence[Gate]) -> str:
    out = []
    for dataset, title in DATASETS.items():
        found = lines(result, dataset, gates)
        out += [title, "^" * len(title), ""]
        if not found:
            out += ["Not run yet.", ""]
            continue
        out += [table(found, bench), verdict(title, found, bench), ""]
    return "\n".join(out)


def _aggregation_steps(bench: dict[str, Any] | None) -> str:
    """How many Trainer steps of which batch ``bench_aggregation`` timed, as its entries' names say."""
    for entry in (bench or {}).get("entries", []):
        found = re.search(r"(\d+) Trainer steps of batch (\d+)", str(entry["name"]))
        if entry["module"] == "bench_aggregation" and found:
            return f"{found[1]} steps of {found[2]}"
    return "steps of 256"


def source_note(result: dict[str, Any], bench: dict[str, Any] | None) -> str:
    commits = sorted({str(r.get("mtlkit_commit")) for r in result["rows"]})
    done, planned = len(result.get("progress", {})), len(result.get("planned", []))
    text = (
        f"Generated from ``results/multi_mnist.json`` (``{result['command']}``, protocol "
        f"``{result.get('protocol', '—')}``, {done} of {planned} configurations finished, rows from commit(s) "
        f"{', '.join(commits)}). Accuracies and Δm are mean ± std over seeds (n = seeds). *Step time / EW* is "
        "from one benchmark run, ``results/benchmarks.json``: the loss weightings' Trainer epoch (30 × 256) "
        "over plain summing's (``bench_weighting``, median of 5, range over repeats in brackets), the gradient "
        f"methods' step (T = 2, {_aggregation_steps(bench)}) over plain summing's (``bench_aggregation``, median of 5)"
    )
    if bench is not None:
        loads = {
            e["module"]: e.get("load_average_1min_at_start")
            for e in bench["entries"]
            if e["module"] in ("bench_weighting", "bench_aggregation")
        }
        text += "; load average at their start " + ", ".join(f"{v} ({k})" for k, v in sorted(loads.items()))
    text += (
        ". The *gates* column evaluates the experiment's gates on the rows the line stands on (its own and the "
        "dataset's STL rows); a pending line or one with a failed gate is left out of the verdict."
    )
    return text


def registered_gates() -> tuple[Gate, ...]:
    return discover(ROOT / "examples" / "multi_mnist")["multi-mnist"].gates


def write(path: Path = OUT) -> str:
    """Write the include file of ``docs/balancing.rst``; its text."""
    if RESULTS.is_file():
        result = json.loads(RESULTS.read_text())
        bench = json.loads(BENCHMARKS.read_text()) if BENCHMARKS.is_file() else None
        text = source_note(result, bench) + "\n\n" + section(result, bench, registered_gates())
    else:
        text = "No results yet: ``mtlkit reproduce multi-mnist --mode reduced`` writes ``results/multi_mnist.json``.\n"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return text


if __name__ == "__main__":
    print(write())
