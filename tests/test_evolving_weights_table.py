"""Table 1a/1b cells beside the control in docs/schedules.rst, from the results (docs/evolving_weights_table.py)."""

import doctest
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs"))
import evolving_weights_table as ewt  # noqa: E402 - docs tooling is not a package


def _row(schedule: str, u: int, errors: list[float], baseline: float = 30.0) -> dict:
    diffs = [e - baseline for e in errors]
    return {"setting": f"NN1 l=100 u={u} {schedule}", "metric": "test_error_diff_pct", "ours": sum(diffs) / 3,
            "ours_std": 0.5, "n": 3, "paper": -0.85 if schedule == "exp40" else None, "network": "NN1",
            "labeled": 100, "unlabeled": u, "schedule": schedule, "variant": "Alg. 1",
            "per_seed": {str(s): {"error_pct": e, "baseline_error_pct": baseline}
                         for s, e in enumerate(errors)}}  # fmt: skip


def _result(checks: list[dict]) -> dict:
    rows = [_row("exp40", 1000, [28.0, 28.5, 29.0]), _row("supervised-only", 1000, [29.0, 29.4, 30.1]),
            _row("exp40", 5000, [27.0, 28.0, 29.5])]  # fmt: skip
    return {"experiment": "evolving_weights_table1a", "mode": "reduced", "rows": rows, "checks": checks,
            "conclusions": "l=100, reduced run: Main claim ... does not hold."}  # fmt: skip


def test_each_cell_beside_the_control_with_the_paired_difference():
    text = ewt.section(_result([]))
    assert "**NN1, l = 100** (reduced mode):" in text
    assert "   * - 1 000\n     - −1.50 ± 0.50 (3) [−0.85]\n     - −0.50 ± 0.50 (3)\n" in text
    assert "−1.00 ± 0.06 (3) \\*" in text  # -1.0, -0.9, -1.1: beyond 2 SE
    assert "   * - 5 000\n     - −1.83 ± 0.50 (3) [−0.85]\n     - —\n     - —" in text  # no control yet
    assert "*Verdict as the results file states it:* l=100" in text


def test_a_failed_gate_marks_its_cell_and_the_difference_built_on_it():
    check = {"name": "converged", "passed": False, "failed_rows": [{"setting": "NN1 l=100 u=1000 supervised-only",
             "metric": "test_error_diff_pct"}]}  # fmt: skip
    text = ewt.section(_result([check]))
    assert "uninformative: converged [−0.50 ± 0.50 (3)]" in text and "     - uninformative: converged\n" in text
    assert "no finished cell yet" in ewt.section({"experiment": "x", "rows": []})


def test_doctests():
    assert doctest.testmod(ewt).failed == 0
