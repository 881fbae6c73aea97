"""Table 3 of seed 000 and its claims, claim by claim, for ``docs/hard_sharing.rst``, generated from the results.

Run by ``docs/conf.py`` at every build: writes ``docs/results/pooled_mnist_table.inc``, which the
hard-sharing page includes. Every number comes from ``results/pooled_mnist.json``, so the page
follows the campaign as configurations finish.

A cell is *pending* until all the planned seeds have run, and *uninformative* when a failed gate of
the results file covers its row (:func:`mtlkit.results.failed_gates`; the convergence gates are
per row, the baseline gate covers every row). The paper's claim for a (pool, dataset) cell is that
pre-training on the pool beats the single-task network; we call it *reproduced* when the same-seed
gain is positive beyond two standard errors, and say separately whether it is also beyond two
standard errors of the equal-steps control, i.e. more than extra training.

Example:
    >>> row = {"ours": 0.31, "standard_error": 0.05, "n": 3, "beyond_2_standard_errors": True}
    >>> verdict(row, planned=3, failed=[])
    'gain beyond 2 SE'
    >>> verdict({**row, "n": 1}, planned=3, failed=[])
    'pending (n=1 of 3)'
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

RESULTS = ROOT / "results" / "pooled_mnist.json"
OUT = Path(__file__).resolve().parent / "results" / "pooled_mnist_table.inc"
DATASETS = {"mnist": "MNIST", "notmnist": "notMNIST", "fashion_mnist": "Fashion-MNIST"}
POOLS = ("F+N", "M+F", "M+N", "F+N+M")
NETWORKS = ("single-task", *POOLS, "equal-steps control (bi-task)", "equal-steps control (tri-task)")
SHORT = {"F": "fashion_mnist", "N": "notmnist", "M": "mnist"}
#: The verdicts of a judged cell; the others (pending, uninformative, one seed) keep it out of the count.
JUDGED = ("gain beyond 2 SE", "loss beyond 2 SE", "within 2 SE")


def verdict(row: dict[str, Any] | None, planned: int, failed: list[str]) -> str:
    """What a gain row says: pending, uninformative, or the sign of the gain against two standard errors."""
    if row is None:
        return "pending (n=0)"
    if failed:
        return f"uninformative ({', '.join(failed)})"
    if row["n"] < planned:
        return f"pending (n={row['n']} of {planned})"
    if row["beyond_2_standard_errors"] is None:
        return "one seed: no spread to judge against"
    if not row["beyond_2_standard_errors"]:
        return "within 2 SE"
    return "gain beyond 2 SE" if row["ours"] > 0 else "loss beyond 2 SE"


def _accuracy(result: dict[str, Any], row: dict[str, Any] | None) -> str:
    if row is None:
        return "—"
    spread = f" ± {row['ours_std']:.2f}" if row.get("ours_std") is not None else ""
    text = f"{row['ours']:.2f}{spread} (n={row['n']})"
    failed = failed_gates(result, row)
    return f"uninformative: {', '.join(failed)} [{text}]" if failed else text


def _gain(row: dict[str, Any] | None) -> str:
    if row is None:
        return "—"
    se = row.get("standard_error")
    return f"{row['ours']:+.2f}" + (f" ± {se:.2f}" if se is not None else "") + f" (n={row['n']})"


def section(result: dict[str, Any]) -> str:
    rows = {(r["setting"], r["metric"]): r for r in result["rows"]}
    planned = len(result.get("seeds") or [])
    out = [
        f"*Generated from* ``results/pooled_mnist.json`` (*mode* {result['mode']}, protocol "
        f"``{result.get('protocol', '—')}``; {len(result.get('progress', {}))} of {len(result.get('planned', []))} "
        f"networks trained). Accuracies in %, mean ± std over seeds (n); the paper's single runs in brackets "
        "(its notMNIST is another sample of the dataset, see the deviations).",
        "",
    ]
    table = []
    for network in NETWORKS:
        cells = []
        for d in DATASETS:
            row = rows.get((network, f"test_acc_{d}"))
            paper = f" [{row['paper']:.2f}]" if row is not None and row.get("paper") is not None else ""
            cells.append(_accuracy(result, row) + paper)
        table.append([network, *cells, _accuracy(result, rows.get((network, "pooled_test_acc")))])
    out += [_rst_table(["network", *DATASETS.values(), "pooled test set"], table)]
    out += [
        "Each claim: the same-seed gain of the pre-trained, retrained network over the single-task "
        "network (the paper's comparison; its gain in brackets) and over the equal-steps control, "
        "mean ± standard error (n), in points.",
        "",
    ]
    claims, judged, reproduced, beyond_control = [], 0, 0, 0
    for pool in POOLS:
        for d in (SHORT[letter] for letter in pool.split("+")):
            against = rows.get((f"{pool} − single-task", f"gain_test_acc_{d}"))
            control = rows.get((f"{pool} − equal-steps control", f"gain_test_acc_{d}"))
            said = [verdict(r, planned, failed_gates(result, r) if r else []) for r in (against, control)]
            paper = f" [{against['paper']:+.2f}]" if against is not None and against.get("paper") is not None else ""
            claims.append([f"{pool} → {DATASETS[d]}", _gain(against) + paper, said[0], _gain(control), said[1]])
            if all(s in JUDGED for s in said):
                judged += 1
                reproduced += said[0] == "gain beyond 2 SE"
                beyond_control += said[0] == said[1] == "gain beyond 2 SE"
    header = ["pool → dataset", "vs single-task", "verdict", "vs equal-steps control", "verdict"]
    out += [_rst_table(header, claims)]
    if judged:
        out += [
            f"**Of the {judged} judged cells (of {len(claims)}), the paper's gain is reproduced (positive beyond "
            f"2 SE) in {reproduced}, and is also beyond 2 SE of the equal-steps control in {beyond_control}.**",
            "",
        ]
    else:
        out += ["**No cell is judged yet:** every claim waits for its three seeds.", ""]
    return "\n".join(out)


def write() -> None:
    """Write the include file (a placeholder when the results file is missing)."""
    write_include(OUT, RESULTS, section)


if __name__ == "__main__":
    print(section(json.loads(RESULTS.read_text())))
