"""Seed 003's three conclusions, claim by claim, for ``docs/hard_sharing.rst``, generated from the results.

Run by ``docs/conf.py`` at every build: writes ``docs/results/cifar100_claims.inc``, which the
hard-sharing page includes. Every number comes from the comparison rows of
``results/cifar100_coarse_fine.json`` (``"<architecture> − Independent"``, each carrying its
``claim``, the same-seed difference, its standard error and ``beyond_2_standard_errors``).

Each comparison is read in the direction its claim states: concatenating *improves* fine accuracy
(a gain), reusing coarse *hurts* coarse accuracy (a loss), shared convolutions *regularise* (a
smaller generalisation gap, without a loss of accuracy). A claim is *reproduced* when every one of
its comparisons goes the stated way beyond two standard errors, *contradicted* when any goes the
other way beyond two standard errors, and *not shown* otherwise; it is *not judged* while a
comparison is pending (fewer seeds than planned) or a failed gate covers it.

Example:
    >>> reading("reusing coarse hurts coarse", {"metric": "gain_test_acc_coarse", "ours": -1.2,
    ...                                          "beyond_2_standard_errors": True})
    1
    >>> reading("shared conv regularises", {"metric": "gain_test_acc_fine", "ours": -1.2,
    ...                                     "beyond_2_standard_errors": True})
    -1
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the docs build from a checkout: render with this checkout's mtlkit

from generate_results import _rst_table, write_include  # noqa: E402

from mtlkit.results import failed_gates  # noqa: E402

RESULTS = ROOT / "results" / "cifar100_coarse_fine.json"
OUT = Path(__file__).resolve().parent / "results" / "cifar100_claims.inc"
#: The sign a comparison must have for its claim, by the start of its metric.
DIRECTION = {
    ("concatenating improves fine", "gain_test_acc"): 1,
    ("reusing coarse hurts coarse", "gain_test_acc"): -1,
    ("shared conv regularises", "gain_test_acc"): 1,
    ("shared conv regularises", "change_generalisation_gap"): -1,
}


def reading(claim: str, row: dict[str, Any]) -> int:
    """+1 the stated way beyond 2 SE, -1 the other way beyond 2 SE, 0 within."""
    if not row["beyond_2_standard_errors"]:
        return 0
    sign = 1 if row["ours"] > 0 else -1
    expected = next(d for (c, prefix), d in DIRECTION.items() if c == claim and row["metric"].startswith(prefix))
    return 1 if sign == expected else -1


def verdict(readings: list[int | None]) -> str:
    if None in readings:
        return "not judged"
    if -1 in readings:
        return "contradicted"
    return "reproduced" if all(r == 1 for r in readings) else "not shown"


def section(result: dict[str, Any]) -> str:
    if result.get("protocol") is None:
        return (
            "*No verdict yet:* ``results/cifar100_coarse_fine.json`` predates the protocol now in the code "
            f"(``{result['command']}`` rewrites it).\n"
        )
    planned = len(result.get("seeds") or [])
    comparisons = [r for r in result["rows"] if r.get("claim")]
    out, body = [], []
    for claim in dict.fromkeys(r["claim"] for r in comparisons):
        mine = [r for r in comparisons if r["claim"] == claim]
        readings: list[int | None] = []
        for row in mine:
            failed = failed_gates(result, row)
            se = row.get("standard_error")
            text = f"{row['ours']:+.2f}" + (f" ± {se:.2f}" if se is not None else "") + f" (n={row['n']})"
            if row.get("paper") is not None:
                text += f" [slides {row['paper']:+.2f}]"
            if failed:
                readings.append(None)
                text = f"uninformative: {', '.join(failed)} [{text}]"
            elif row["n"] < planned or se is None:
                readings.append(None)
                text = f"pending [{text}]"
            else:
                readings.append(reading(claim, row))
                text += " " + {1: "as stated", -1: "the other way", 0: "within 2 SE"}[readings[-1]]
            body.append([claim, f"{row['setting']}, {row['metric']}", text])
        out.append(f"* *{claim}*: **{verdict(readings)}**")
    if not body:
        return f"*No comparison has finished yet* (protocol ``{result['protocol']}``).\n"
    header = ["claim", "comparison", "same-seed difference ± SE (n), in points"]
    note = (
        f"*Generated from* ``results/cifar100_coarse_fine.json`` (*mode* {result['mode']}, protocol "
        f"``{result['protocol']}``). A claim is reproduced when each of its comparisons goes the stated way "
        "beyond two standard errors."
    )
    return "\n".join([note, "", _rst_table(header, body), *out, ""])


def write() -> None:
    """Write the include file (a placeholder when the results file is missing)."""
    write_include(OUT, RESULTS, section)


if __name__ == "__main__":
    print(section(json.loads(RESULTS.read_text())))
