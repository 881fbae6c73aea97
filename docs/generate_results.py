"""Generate the docs' results pages and the README's headline tables from ``results/*.json``.

Run by ``docs/conf.py`` at every build, and by hand as ``python docs/generate_results.py --readme``
to refresh the README between its ``<!-- results:begin -->`` / ``<!-- results:end -->`` markers.
Numbers are never typed by hand: they come from the results files the reproductions wrote.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the docs build from a checkout: render with this checkout's mtlkit

from mtlkit.results import failed_gates, record_commits  # noqa: E402

RESULTS = ROOT / "results"
PAGES = Path(__file__).resolve().parent / "results"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _ours(result: dict[str, Any], row: dict[str, Any]) -> str:
    """The measured number with its spread and n, or why the row is no result."""
    text = _fmt(row.get("ours"))
    if row.get("ours_std") is not None:
        text += f" ± {_fmt(row['ours_std'])}"
    text += f" (n={row.get('n', '?')})"
    failed = failed_gates(result, row)
    return f"uninformative: {', '.join(failed)} [{text}]" if failed else text


def _paper(row: dict[str, Any]) -> str:
    """The paper's number only beside a row that measures the same thing."""
    if row.get("paper") is None:
        return "—"
    comparable = row.get("comparable", True)
    return _fmt(row["paper"]) if comparable is True else f"not comparable: {comparable}"


def _provenance(result: dict[str, Any]) -> str:
    """Where an experiment comes from: its seed document, or the issue (``origin``) of one that has none."""
    if result.get("seed_file") is None:
        return f"*Origin:* {result['origin']} (no seed document)"
    return f"*Seed document:* ``{result['seed_file']}``"


def _group(result: dict[str, Any]) -> str:
    seed = result.get("seed_file")
    return f"Seed {seed}" if seed is not None else f"From {result['origin']}"


def load_results() -> list[dict[str, Any]]:
    files = sorted(p for p in RESULTS.glob("*.json") if not p.name.startswith("benchmarks"))
    return [json.loads(p.read_text()) for p in files]


def _rst_table(header: list[str], rows: list[list[str]]) -> str:
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        lines.append("   * - " + _cell(row[0]))
        lines.extend("     - " + _cell(c) for c in row[1:])
    return "\n".join(lines) + "\n"


def write_include(out: Path, results: Path, section: Callable[[dict[str, Any]], str]) -> None:
    """Write the docs include ``out``: ``section`` of the results file ``results``, or a placeholder when
    it is missing (the generated tables of the method pages, run by ``docs/conf.py``)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    text = section(json.loads(results.read_text())) if results.is_file() else "*No results file yet.*\n"
    out.write_text(text + "\n")


def _prose(text: str) -> str:
    """A sentence from a results file as reST text: ``|x|`` and ``*`` are plain characters there."""
    return text.replace("|", r"\|").replace("*", r"\*")


def _cell(text: str) -> str:
    if len(text) > 4 and text.startswith("``") and text.endswith("``"):
        return text  # an inline literal needs no escaping
    return text.replace("*", r"\*").replace("|", r"\|") or " "


def _failure(check: dict[str, Any]) -> str:
    if "failed_rows" in check:
        return f"NO: the {len(check['failed_rows'])} rows that fail are uninformative"
    return "NO: its rows are uninformative"


def results_page(result: dict[str, Any]) -> str:
    name = result["experiment"]
    title = name.replace("_", " ")
    out = [title, "=" * len(title), ""]
    out += [
        f"{_provenance(result)} — *mode:* **{result['mode']}** — *command:* ``{result['command']}``",
        "",
        f"*Hardware:* {result.get('hardware', '—')}; *wall time:* {_fmt(result.get('wall_time_s'))} s; "
        f"*commit:* ``{result.get('mtlkit_commit') or '—'}``; *seeds:* {result.get('seeds') or '—'}",
        "",
    ]
    computed_by = record_commits(result)
    if computed_by:
        # Rows rebuilt from kept records name the code that rebuilt them; the records name their own.
        out += ["*Per-run records computed by commit(s):* " + ", ".join(f"``{c}``" for c in computed_by), ""]
    if result.get("conclusions"):
        conclusions = result["conclusions"]
        if isinstance(conclusions, str):
            conclusions = [conclusions]
        out += ["Conclusions", "-----------", ""]
        failed = sorted({c["name"] for c in result.get("checks", []) if not c.get("passed")})
        if failed:
            out += [
                f".. warning:: These conclusions come from a run whose sanity gates failed ({', '.join(failed)}); "
                "the rows those gates cover are uninformative, and so is any conclusion drawn from them.",
                "",
            ]
        out += [*[f"* {_prose(c)}" for c in conclusions], ""]
    checks = result.get("checks", [])
    out += ["Sanity gates", "------------", ""]
    if checks:
        out.append(
            _rst_table(
                ["gate", "threshold", "measured", "passed"],
                [
                    [
                        c["name"],
                        f"``{c['threshold']}``",
                        _fmt(c.get("value")) + (f" ({c['note']})" if c.get("note") else ""),
                        "yes" if c["passed"] else _failure(c),
                    ]
                    for c in checks
                ],
            )
        )
    else:
        out += ["No gates declared: nothing vouches that the mechanism under test switched on.", ""]
    out += ["Results", "-------", ""]
    header = ["setting", "metric", "ours ± std (n)", "paper", "mode", "commit"]
    rows = [
        [
            str(r["setting"]),
            str(r["metric"]),
            _ours(result, r),
            _paper(r),
            str(r.get("mode", result["mode"])),
            str(r.get("mtlkit_commit") or result.get("mtlkit_commit") or "—"),
        ]
        for r in result["rows"]
    ]
    out.append(_rst_table(header, rows) if rows else "No rows yet.\n")
    out += ["Deviations from the paper's protocol", "------------------------------------", ""]
    out += [f"* {_prose(d)}" for d in result.get("deviations", [])] or ["* none"]
    out.append("")
    for figure in result.get("figures", []):
        # Figure paths in results files are relative to the results folder.
        out += [f".. image:: ../../results/{figure}", "   :width: 90%", ""]
    return "\n".join(out)


def benchmarks_page(path: Path) -> str:
    """One page per ``results/benchmarks*.json``: the CPU run, and one per accelerator kind."""
    data = json.loads(path.read_text())
    machine = data["machine"]
    device = path.stem.removeprefix("benchmarks").lstrip("-")
    title = f"Benchmarks on {device} ({machine.get('device')})" if device else "Benchmarks"
    command = "python -m benchmarks" + (f" --device {device}" if device else "")
    out = [
        title,
        "=" * len(title),
        "",
        f"Generated from ``results/{path.name}`` (``{command}``). Every ratio is",
        "*ours / baseline*, both measured in the same run (median over repeats; below 1 means ours is",
        "faster), because this machine is shared and absolute times drift.",
        "",
        f"*Machine:* {machine.get('hardware')}; torch threads {machine.get('torch_threads')}; "
        f"load average at the start {machine.get('load_average_1_5_15min', '—')}.",
        "",
    ]
    rows = [
        [
            str(e["name"]),
            _fmt(e.get("ratio")),
            _fmt(e.get("flop_ratio")),
            _fmt(e.get("baseline_s")),
            _fmt(e.get("ours_s")),
            str(e.get("target", "—")),
        ]
        for e in data["entries"]
        if "ratio" in e or "seconds" in e
    ]
    for e in data["entries"]:
        if "seconds" in e and "ratio" not in e:
            rows[[r[0] for r in rows].index(str(e["name"]))][4] = _fmt(e["seconds"])
    out.append(
        "*flop ratio* is the same ratio in floating-point operations (``torch.utils.flop_counter``), where"
        " measured: a time ratio near it means the kernels run as fast as the baseline's."
    )
    out.append("")
    out.append(_rst_table(["benchmark", "ratio", "flop ratio", "baseline s", "ours s", "target"], rows))
    return "\n".join(out)


def write_pages() -> list[str]:
    PAGES.mkdir(exist_ok=True)
    for stale in PAGES.glob("*.rst"):  # pages of results files that no longer exist must not linger
        stale.unlink()
    names = []
    # Benchmarks first, then the experiments grouped by the seed document (or issue) they come from.
    groups: dict[str, list[str]] = {}
    for path in sorted(RESULTS.glob("benchmarks*.json"), key=lambda p: p.stem):  # the CPU page first
        (PAGES / f"{path.stem}.rst").write_text(benchmarks_page(path))
        groups.setdefault("Benchmarks", []).append(path.stem)
    for result in sorted(load_results(), key=lambda r: (r.get("seed_file") is None, _group(r))):
        name = result["experiment"]
        (PAGES / f"{name}.rst").write_text(results_page(result))
        groups.setdefault(_group(result), []).append(name)
    index = [
        "Reproduced results",
        "==================",
        "",
        "One page per results file in ``results/``, generated at build time. ``quick`` runs are smoke",
        "tests and never appear here; every row states its mode, and every page lists its deviations.",
        "",
    ]
    for caption, members in groups.items():
        index += [".. toctree::", "   :maxdepth: 1", f"   :caption: {caption}", "", *[f"   {n}" for n in members], ""]
        names += members
    if not names:
        index += ["No results have been committed yet."]
    (PAGES / "index.rst").write_text("\n".join(index) + "\n")
    return names


def readme_section() -> str:
    lines = [
        "| experiment | setting | metric | ours ± std (n) | paper | mode | commit |",
        "|---|---|---|---|---|---|---|",
    ]
    hidden: dict[str, set[str]] = {}
    for result in load_results():
        planned_runs = len(result.get("seeds") or [None])
        for r in result["rows"]:
            if not r.get("headline"):
                continue
            # A row a failed gate covers is no result, and one with seeds still to run is no claim yet.
            if failed_gates(result, r):
                hidden.setdefault(result["experiment"], set()).update(failed_gates(result, r))
            elif r.get("n", 1) < planned_runs:
                hidden.setdefault(result["experiment"], set()).add(f"seeds pending: n < {planned_runs}")
            else:
                commit = r.get("mtlkit_commit") or result.get("mtlkit_commit") or "—"
                lines.append(
                    f"| {result['experiment']} | {r['setting']} | {r['metric']} | {_ours(result, r)} | {_paper(r)} "
                    f"| {r.get('mode', result['mode'])} | {commit} |"
                )
    if hidden:
        lines += [
            "",
            "Not shown: headline rows whose sanity gates failed (uninformative; each results page says why) "
            "or whose seeds have not all run: "
            + "; ".join(f"{name} ({', '.join(sorted(gates))})" for name, gates in sorted(hidden.items()))
            + ".",
        ]
    bench = RESULTS / "benchmarks.json"
    if bench.is_file():
        data = json.loads(bench.read_text())
        lines += [
            "",
            f"Benchmarks ({data['machine']['hardware']}; ratio = ours / baseline, median of repeats):",
            "",
            "| benchmark | ratio | target |",
            "|---|---|---|",
        ]
        for e in data["entries"]:
            if "/" in e["name"].split()[0]:
                continue  # per-layer factorised entries: see the docs' benchmarks page
            value = _fmt(e.get("ratio")) if "ratio" in e else f"{_fmt(e.get('seconds'))} s" if "seconds" in e else None
            if value is not None:
                lines.append(f"| {e['name']} | {value} | {e.get('target', '—')} |")
        lines.append("")
        lines.append("Per-layer DMTRL benchmarks (factorised vs dense, batched vs per-task loop): docs, *Benchmarks*.")
    return "\n".join(lines)


def update_readme(readme: Path = ROOT / "README.md") -> bool:
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{readme} lacks the {BEGIN} / {END} markers")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{BEGIN}\n{readme_section()}\n{END}{tail}"
    changed = new != text
    readme.write_text(new)
    return changed


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--readme", action="store_true", help="also refresh the README's generated tables")
    args = parser.parse_args()
    print("pages:", write_pages())
    if args.readme:
        print("README updated" if update_readme() else "README already current")
