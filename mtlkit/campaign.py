"""A campaign: every pending configuration of several experiments, run in worker processes.

``mtlkit reproduce --all --mode reduced --jobs 2`` runs each named experiment in its own worker
process (``mtlkit reproduce NAME``, one torch thread by default), at most ``jobs`` at a time. It
survives being killed at any point, because every piece it stands on does:

* each experiment skips configurations its results file already holds, and writes the file
  atomically as each one finishes (:class:`~mtlkit.results.ResultsFile`);
* each training run resumes from its last atomic checkpoint (:class:`~mtlkit.Trainer`);
* an experiment that finished leaves a marker (``runs/campaign/<mode>/<name>.done``), so a
  restarted campaign does not even start it again.

Re-running the same command after a kill therefore continues where it stopped and ends with the
results an uninterrupted campaign gives. Each worker's output goes to
``runs/campaign/<mode>/<name>.log``; a terminal gets one tqdm bar for the whole campaign.

Progress per experiment (:func:`experiment_status`) comes from the results files alone:
configurations done of those planned (:meth:`~mtlkit.results.ResultsFile.plan`), CPU time spent,
an ETA from the measured per-configuration times, and the sanity gates.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtlkit.results import results_path

__all__ = ["Campaign", "ExperimentStatus", "experiment_status", "format_status"]


@dataclass(frozen=True)
class Campaign:
    """What to run and where; :meth:`run` runs it.

    Args:
        experiments: registered experiment names, run in this order.
        mode: ``quick`` / ``reduced`` / ``full``.
        jobs: worker processes at once.
        threads: torch threads per worker.
        results_dir, runs_dir: as for ``mtlkit reproduce``.
        extra_args: passed to every worker (e.g. ``["--data", root]``).
        rerun: start experiments that left a done marker again (they still skip finished
            configurations).
    """

    experiments: tuple[str, ...]
    mode: str
    jobs: int = 1
    threads: int = 1
    results_dir: Path = Path("results")
    runs_dir: Path = Path("runs")
    extra_args: tuple[str, ...] = ()
    rerun: bool = False

    def __post_init__(self) -> None:
        if not self.experiments:
            raise ValueError("a campaign needs at least one experiment")
        if self.jobs < 1:
            raise ValueError(f"jobs must be >= 1, got {self.jobs}")
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")

    @property
    def state_dir(self) -> Path:
        return self.runs_dir / "campaign" / self.mode

    def done_marker(self, name: str) -> Path:
        return self.state_dir / f"{name}.done"

    def pending(self) -> list[str]:
        return [name for name in self.experiments if self.rerun or not self.done_marker(name).is_file()]

    def _command(self, name: str) -> list[str]:
        return [
            sys.executable, "-m", "mtlkit.cli", "reproduce", name, "--mode", self.mode,
            "--results-dir", str(self.results_dir), "--runs-dir", str(self.runs_dir),
            "--threads", str(self.threads), "--no-progress", *self.extra_args,
        ]  # fmt: skip

    def run(self, progress: bool | None = None) -> dict[str, int]:
        """Run every pending experiment; returns each one's exit code (0 for skipped ones)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        pending = self.pending()
        codes = {name: 0 for name in self.experiments if name not in pending}
        bar = _bar(len(self.experiments), len(codes), progress)
        env = {**os.environ, "OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads)}
        running: dict[str, tuple[subprocess.Popen[bytes], Any]] = {}
        queue = list(pending)
        try:
            while queue or running:
                while queue and len(running) < self.jobs:
                    name = queue.pop(0)
                    log = (self.state_dir / f"{name}.log").open("ab")
                    log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(self._command(name))}\n".encode())
                    log.flush()
                    running[name] = (subprocess.Popen(self._command(name), stdout=log, stderr=log, env=env), log)
                    _say(bar, f"started {name} (log: {self.state_dir / (name + '.log')})")
                for name, (proc, log) in list(running.items()):
                    if proc.poll() is None:
                        continue
                    log.close()
                    del running[name]
                    codes[name] = proc.returncode
                    if proc.returncode == 0:
                        self.done_marker(name).write_text(time.strftime("%Y-%m-%d %H:%M:%S\n"))
                        _say(bar, f"finished {name}")
                    else:
                        _say(bar, f"FAILED {name} (exit {proc.returncode}); see its log")
                    if bar is not None:
                        bar.update(1)
                time.sleep(0.2)
        finally:
            for proc, log in running.values():  # an interrupted campaign leaves no orphan workers
                proc.terminate()
                proc.wait()
                log.close()
            if bar is not None:
                bar.close()
        return codes


def _bar(total: int, done: int, progress: bool | None) -> Any:
    if progress is False or (progress is None and not sys.stderr.isatty()):
        return None
    from tqdm import tqdm  # noqa: PLC0415 - only a terminal needs it

    return tqdm(total=total, initial=done, desc="campaign", unit="experiment")


def _say(bar: Any, text: str) -> None:
    if bar is not None:
        bar.write(text)
    else:
        print(text, flush=True)


@dataclass(frozen=True)
class ExperimentStatus:
    """One experiment's progress, read from its results file."""

    experiment: str
    mode: str | None
    done: int
    total: int | None
    cpu_s: float
    eta_s: float | None
    gates: tuple[tuple[str, bool], ...]
    finished: bool


def experiment_status(name: str, mode: str, results_dir: Path, runs_dir: Path) -> ExperimentStatus:
    """Progress of ``name`` in ``mode``: from ``results_dir/<name>.json`` and the campaign markers."""
    path = results_path(results_dir, name)
    finished = (runs_dir / "campaign" / mode / f"{name}.done").is_file()
    data: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    if data.get("mode") != mode:
        return ExperimentStatus(name, data.get("mode"), 0, None, 0.0, None, (), finished)
    planned = data.get("planned")
    progress: dict[str, float] = data.get("progress", {})
    done = len(progress) if planned is not None else len({r["setting"] for r in data.get("rows", [])})
    cpu = sum(progress.values()) if progress else float(data.get("wall_time_s", 0.0))
    total = len(planned) if planned is not None else None
    eta = None
    if total is not None and done:
        eta = (total - done) * cpu / done
    # A per-row gate that fails says on how many rows: the others are still results. A file without
    # rows (a protocol just started) has nothing for its gates to judge, not failed gates.
    gates = tuple(
        (c["name"] + (f" ({c['note']})" if c.get("failed_rows") and c.get("note") else ""), bool(c["passed"]))
        for c in (data.get("checks", []) if data.get("rows") or finished else [])
    )
    return ExperimentStatus(name, mode, done, total, cpu, eta, gates, finished)


def _hours(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return f"{seconds / 3600:.2f} h" if seconds >= 360 else f"{seconds:.0f} s"


def format_status(statuses: Sequence[ExperimentStatus]) -> str:
    """A table of :func:`experiment_status` records, as ``mtlkit status`` prints it.

    Example:
        >>> print(format_status([ExperimentStatus("demo", "reduced", 3, 12, 7200.0, 21600.0,
        ...                                       (("baseline trains", True), ("converged", False)), False)]))
        experiment   done   cpu      eta      gates
        demo         3/12   2.00 h   6.00 h   baseline trains ✓, converged ✗
    """
    rows = [("experiment", "done", "cpu", "eta", "gates")]
    for s in statuses:
        done = f"{s.done}/{s.total if s.total is not None else '?'}" + (" (finished)" if s.finished else "")
        if s.mode is None:
            done = "not started"
        gates = ", ".join(f"{name} {'✓' if ok else '✗'}" for name, ok in s.gates) or "—"
        rows.append((s.experiment, done, _hours(s.cpu_s), "—" if s.finished else _hours(s.eta_s), gates))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(widths[i] + 1) if i < 4 else cell for i, cell in enumerate(r)).rstrip() for r in rows
    )
