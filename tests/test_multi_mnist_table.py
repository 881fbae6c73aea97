"""The Multi-MNIST table and verdict of docs/balancing.rst, generated from the results (docs/multi_mnist_table.py)."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs"))
import multi_mnist_table as mmt  # noqa: E402 - docs tooling is not a package

from mtlkit.gates import Gate  # noqa: E402

GATES = (
    Gate("single-task baseline trains", key="ours", above=80.0, settings="* / STL", metric="test_acc_*"),
    Gate("training converged", key="train_loss_change_last10pct", below=0.02, metric="test_acc_*"),
)


def _rows(method: str, acc: list[float], delta: list[float] | None, change: float = 0.01) -> list[dict]:
    seeds = list(range(len(acc)))
    common = {"variant": "mnist", "method": method, "setting": f"mnist / {method}", "n": len(acc), "seeds": seeds}
    rows = [
        {**common, "metric": f"test_acc_{t}", "ours": sum(acc) / len(acc), "ours_std": None, "per_repeat": acc,
         "train_loss_change_last10pct": change}
        for t in ("left", "right")
    ]  # fmt: skip
    if delta is not None:
        rows.append({**common, "metric": "delta_m_pct", "ours": sum(delta) / len(delta), "ours_std": None,
                     "per_repeat": delta})  # fmt: skip
    return rows


def _result(late: list[float]) -> dict:
    rows = [
        *_rows("STL", [90.0, 90.5, 91.0], None),
        *_rows("EW", [88.0, 88.5, 89.0], [-2.0, -1.0, -3.0]),
        *_rows("UW", [89.0, 89.5, 90.0], [-1.5, -0.4, -2.6]),  # EW + 0.5, 0.6, 0.4: beyond 2 SE
        *_rows("RLW", [87.0, 89.0, 88.0], [-3.0, 0.0, -3.3]),  # differences -1, +1, -0.3: within 2 SE
        *_rows("DB-MTL", [91.0, 91.0, 91.0], [1.0, 1.0, 1.0], change=0.05),  # not converged
        *_rows("FAMO", [88.0] * len(late), late),
    ]
    return {"seeds": [0, 1, 2], "rows": rows, "command": "c", "progress": {}, "planned": []}


def test_lines_mark_pending_rows_and_failed_gates_and_keep_them_out_of_the_verdict():
    lines = {x.method: x for x in mmt.lines(_result([-2.0]), "mnist", GATES)}
    assert lines["FAMO"].status == "pending (n=1)"
    assert lines["DB-MTL"].failed == ["training converged (0.05)"] and not lines["DB-MTL"].in_verdict
    assert lines["STL"].status == "the Δm baseline" and lines["UW"].in_verdict
    text = mmt.verdict("Multi-MNIST", list(lines.values()), None)
    assert "better: UW (+0.50 ± 0.06)" in text and "worse: none" in text
    assert "Within two standard errors of EW: RLW" in text
    assert "Not judged: FAMO (pending, n=1), DB-MTL (training converged (0.05))" in text
    table = mmt.table(list(lines.values()), None)
    assert "pending (n=1)" in table and "fails: training converged (0.05)" in table and "−2.00 (n=3)" in table


def test_the_verdict_follows_the_rows_as_seeds_finish():
    finished = {x.method: x for x in mmt.lines(_result([-4.0, -3.0, -5.0]), "mnist", GATES)}
    text = mmt.verdict("Multi-MNIST", list(finished.values()), None)
    assert "worse: FAMO (−2.00 ± 0.00)" in text and "Not judged: DB-MTL" in text


def test_no_verdict_without_ews_seeds_and_a_failed_baseline_is_shown():
    result = _result([-2.0])
    for row in result["rows"]:
        if row["method"] == "STL":
            row["ours"] = 70.0
    lines = mmt.lines(result, "mnist", GATES)
    assert all("single-task baseline trains (70)" in x.failed[0] for x in lines)
    assert "No verdict: EW's line fails a gate" in mmt.verdict("Multi-MNIST", lines, None)


def test_step_time_comes_from_the_benchmark_entry_of_the_method():
    bench = json.loads((ROOT / "results" / "benchmarks.json").read_text())
    assert mmt.step_ratio(bench, "EW") == (1.0, "1 (reference)")
    ratio, cell = mmt.step_ratio(bench, "UW")
    assert cell.startswith(f"{ratio:.2f} (") and "–" in cell
    mgda = next(e for e in bench["entries"] if e["name"].startswith("MGDA-UB (representation) step time vs T back"))
    assert mmt.step_ratio(bench, "MGDA-UB")[0] == mgda["time_ratio_vs_plain"], "the example's MGDA-UB is on z"
    assert mmt.step_ratio(bench, "STL") == (None, "—")


def test_the_committed_results_render_and_the_balancing_page_includes_them(tmp_path):
    text = mmt.write(tmp_path / "table.inc")
    assert "Multi-MNIST\n^^^^^^^^^^^" in text and "**Multi-MNIST.**" in text
    assert ".. include:: results/multi_mnist_table.inc" in (ROOT / "docs" / "balancing.rst").read_text()
