"""Generate the coursework report page (``docs/results/coursework_report.rst``) from ``results/coursework_task*.json``.

Run by ``docs/conf.py`` at every build. The brief asks for a report with one section per task (at
most 3 000 words, tables and figure legends excluded); every number and conclusion here comes from
the results files the coursework experiments wrote, and rows a failed sanity gate covers are shown
as uninformative (:func:`mtlkit.results.failed_gates`), never as results.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import generate_results

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
PAGE = Path(__file__).resolve().parent / "results" / "coursework_report.rst"
WORD_LIMIT = 3000

SECTIONS = {
    1: (
        "Task 1 — PCA",
        "Two principal components of the 784-pixel MNIST images and how well each digit pair separates in them.",
    ),
    2: (
        "Task 2 — Perceptron",
        "A numpy perceptron (diagram below) on pairs of digits: training error per pass, "
        "the learned weights as images, and test accuracy.",
    ),
    3: (
        "Task 3 — Multi-layer perceptrons",
        "The [784, 1000, 1000, 10] MLP's curves and four deeper MLPs: parameters, accuracy and time.",
    ),
    4: ("Task 4 — Convolutional networks", "The [32, 64, 128] CNN's curves, four other CNNs, and CNN vs MLP."),
    5: (
        "Task 5 — Visualising the CNN",
        "Filters and activations of the Task-4.1 CNN and DeepDream images for 2 and 9, fed back to the network.",
    ),
    6: (
        "Task 6 — Multi-task learning",
        "Fashion-MNIST items and groups: the brief's and capacity-matched "
        "single-task CNNs against the λ-weighted MTL network, three seeds.",
    ),
}


def _load(task: int) -> dict[str, Any] | None:
    path = RESULTS / f"coursework_task{task}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _row_cells(result: dict[str, Any], row: dict[str, Any]) -> list[str]:
    brief = row.get("brief_says")
    return [
        row["setting"],
        row["metric"],
        generate_results._ours(result, row),
        "—" if brief is None else f"{brief:g} (illustration)",
    ]


def section(task: int, result: dict[str, Any] | None) -> list[str]:
    title, intro = SECTIONS[task]
    out = [title, "-" * len(title), "", intro, ""]
    if result is None:
        return [*out, "Not run yet.", ""]
    status = f"*{result['mode']} mode, mtlkit commit {result.get('mtlkit_commit')}*"
    if task == 6:
        status += f"; protocol: {result.get('protocol', 'previous (before v2)')}"
    out += [status, ""]
    failed = [c["name"] for c in result.get("checks", []) if not c["passed"]]
    if failed:
        out += [f"Failed sanity gates (their rows are uninformative): {', '.join(failed)}.", ""]
    rows = [r for r in result["rows"] if task != 6 or "seed" not in r["setting"]]
    out.append(
        generate_results._rst_table(["setting", "metric", "ours", "brief"], [_row_cells(result, r) for r in rows])
    )
    selection = result.get("adam_selection")
    if selection:
        out += [f"Adam selection: {selection['procedure']}. Selected and used: {selection['selected']}.", ""]
    for key in ("lambda_interpretation", "conclusions"):
        if result.get(key):
            out += [result[key], ""]
    for figure in result.get("figures", []):
        out += [f".. image:: ../../results/{figure}", "   :width: 80%", ""]
    return out


def report() -> str:
    """The report page as reStructuredText."""
    results = {task: _load(task) for task in SECTIONS}
    modes = sorted({r["mode"] for r in results.values() if r is not None})
    out = [
        "Coursework report",
        "=================",
        "",
        "Generated from ``results/coursework_task*.json`` at every docs build (the brief's report, one section "
        f"per task, at most {WORD_LIMIT} words of prose). Modes of the results shown: {', '.join(modes) or 'none'}. "
        "Protocols, deviations and costs are on the :doc:`../coursework` page; the brief's accuracies are "
        "illustrations and are marked as such.",
        "",
    ]
    for task, result in results.items():
        out += section(task, result)
    return "\n".join(out) + "\n"


def prose_words(text: str) -> int:
    """Words outside tables, directives and their options (what the brief's limit counts)."""
    words = 0
    in_table = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(".. list-table::"):
            in_table = True
            continue
        if in_table and (not stripped or line.startswith("   ")):
            continue
        in_table = False
        if stripped.startswith(".. ") or stripped.startswith(":") or re.fullmatch(r"[-=~]+", stripped):
            continue
        words += len(stripped.split())
    return words


def write_report() -> Path:
    text = report()
    if prose_words(text) > WORD_LIMIT:
        raise ValueError(f"coursework report has {prose_words(text)} words of prose, over the {WORD_LIMIT} limit")
    PAGE.parent.mkdir(exist_ok=True)
    PAGE.write_text(text)
    return PAGE


if __name__ == "__main__":
    print(write_report())
