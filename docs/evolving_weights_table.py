"""Table 1a / 1b of the evolving-weights paper, cell by cell with the control, for ``docs/schedules.rst``.

Run by ``docs/conf.py`` at every build: writes ``docs/results/evolving_weights_cells.inc``, which the
schedules page includes. Every number comes from ``results/evolving_weights_table1a.json`` and
``…table1b.json`` (per-seed test errors of each cell, its baseline and the supervised-only control),
so the page follows the campaign as cells finish; the verdict sentences are the results files'
``conclusions``, written by the examples' verdict rule (``examples/evolving_weights/evolving_weights_claim.py``).

For each network and ``l``, one line per ``u``: every schedule's difference to the baseline
(``error − baseline`` in points, mean ± std over seeds (n), the paper's number in brackets), the
control's, and each schedule's same-seed difference to the control (± its standard error; ``*``
marks a difference beyond two standard errors). A cell a failed gate covers shows its value as
uninformative (:func:`mtlkit.results.failed_gates`).

Example:
    >>> cell({"ours": -0.72, "ours_std": 0.69, "n": 3, "paper": -0.85}, [])
    '−0.72 ± 0.69 (3) [−0.85]'
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the docs build from a checkout: render with this checkout's mtlkit

from generate_results import _rst_table  # noqa: E402

from mtlkit.metrics import paired_gain  # noqa: E402
from mtlkit.results import failed_gates  # noqa: E402

TABLES = ("evolving_weights_table1a", "evolving_weights_table1b")
OUT = Path(__file__).resolve().parent / "results" / "evolving_weights_cells.inc"
METRIC = "test_error_diff_pct"
CONTROL = "supervised-only"


def _signed(value: float) -> str:
    return f"{value:+.2f}".replace("-", "−")


def cell(row: dict[str, Any], failed: list[str]) -> str:
    """One schedule's difference to the baseline: mean ± std (n) [paper]."""
    spread = f" ± {row['ours_std']:.2f}" if row.get("ours_std") is not None else ""
    paper = f" [{_signed(row['paper'])}]" if row.get("paper") is not None else ""
    text = f"{_signed(row['ours'])}{spread} ({row['n']}){paper}"
    return f"uninformative: {', '.join(failed)} [{text}]" if failed else text


def against_control(result: dict[str, Any], row: dict[str, Any], control: dict[str, Any] | None) -> str:
    """The same-seed difference ``error(schedule) − error(control)``, ± its standard error (n)."""
    if control is None:
        return "—"
    failed = failed_gates(result, row) + failed_gates(result, control)
    if failed:
        return f"uninformative: {', '.join(dict.fromkeys(failed))}"
    seeds = sorted(set(row["per_seed"]) & set(control["per_seed"]))
    if not seeds:
        return "—"
    g = paired_gain([row["per_seed"][s]["error_pct"] for s in seeds],
                    [control["per_seed"][s]["error_pct"] for s in seeds])  # fmt: skip
    if g["standard_error"] is None:
        return f"{_signed(g['gain'])} (1)"
    star = " *" if g["beyond_2_standard_errors"] else ""
    return f"{_signed(g['gain'])} ± {g['standard_error']:.2f} ({len(seeds)}){star}"


def section(result: dict[str, Any]) -> str:
    rows = [r for r in result["rows"] if r["metric"] == METRIC and r.get("variant") == "Alg. 1"]
    if not rows:
        return f"*{result['experiment']}*: no finished cell yet.\n"
    out = []
    for network, labeled in dict.fromkeys((r["network"], r["labeled"]) for r in rows):
        mine = [r for r in rows if (r["network"], r["labeled"]) == (network, labeled)]
        by = {(r["schedule"], r["unlabeled"]): r for r in mine}
        schedules = [s for s in dict.fromkeys(r["schedule"] for r in mine) if s != CONTROL]
        header = ["u", *schedules, "control", *[f"{s} − control" for s in schedules]]
        body = []
        for u in sorted({r["unlabeled"] for r in mine}):
            control = by.get((CONTROL, u))
            line = [f"{u:,}".replace(",", " ")]
            line += [cell(by[s, u], failed_gates(result, by[s, u])) if (s, u) in by else "—" for s in schedules]
            line.append(cell(control, failed_gates(result, control)) if control else "—")
            line += [against_control(result, by[s, u], control) if (s, u) in by else "—" for s in schedules]
            body.append(line)
        out += [f"**{network}, l = {labeled}** ({result['mode']} mode):", "", _rst_table(header, body)]
    conclusions = result.get("conclusions") or []
    for sentence in [conclusions] if isinstance(conclusions, str) else conclusions:
        out += [f"*Verdict as the results file states it:* {sentence}", ""]
    return "\n".join(out)


def write() -> None:
    """Write the include file from whichever of the two results files exist."""
    OUT.parent.mkdir(parents=True, exist_ok=True)
    parts = []
    for name in TABLES:
        path = ROOT / "results" / f"{name}.json"
        parts.append(section(json.loads(path.read_text())) if path.is_file() else f"*{name}*: no results file yet.\n")
    OUT.write_text("\n".join(parts) + "\n")


if __name__ == "__main__":
    write()
    print(OUT.read_text())
