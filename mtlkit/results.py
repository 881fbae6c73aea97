"""Results files: ``results/<experiment>.json``, written incrementally and atomically.

A reproduction adds rows as configurations finish, so a restarted run can skip what is done
(:meth:`ResultsFile.has`) and a killed run loses at most the configuration in progress.
The format (schema v2, ``DESIGN.md``)::

    {"schema": 2, "experiment", "seed_file", "origin", "command", "mode", "deviations", "checks", "hardware",
     "precision", "wall_time_s", "mtlkit_commit", "seeds",
     "rows": [{"setting", "metric", "ours", "ours_std", "n", "paper", "comparable", "mtlkit_commit", ...}],
     "per_run": {configuration: {..., "cpu_s", "mtlkit_commit"}}}   # long runs only: ResultsFile.kept

``seed_file`` names the seed document an experiment reproduces; an experiment that reproduces none
(a benchmark an issue asked for) has ``seed_file: null`` and says where it comes from in ``origin``
(e.g. ``"issue 18"``). Exactly one of the two is set; a file without ``origin`` is a seed experiment's.

``n`` is the number of runs behind ``ours`` (and its ``ours_std``); ``paper`` holds only a number the
seed *measured*; ``comparable`` is ``true`` or the reason the paper's number measures something
else. ``checks`` are the experiment's sanity gates (:mod:`mtlkit.gates`), re-evaluated on every
save. Every row records the commit of the code that wrote it, and every kept per-run record the
commit of the code that finished it. :func:`validate` checks a file.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from mtlkit._atomic import replacing
from mtlkit._version import __version__
from mtlkit.gates import Gate, covers

__all__ = [
    "SCHEMA_VERSION",
    "ResultsFile",
    "failed_gates",
    "hardware_description",
    "record_commits",
    "refresh_checks",
    "results_path",
    "unfinished",
    "validate",
]

SCHEMA_VERSION = 2
_MODES = ("quick", "reduced", "full")
_PRECISIONS = ("fp32", "bf16")


def hardware_description() -> str:
    """E.g. ``"2 CPU cores (x86_64), torch 2.13.0"`` or the CUDA device name."""
    if torch.cuda.is_available():
        device = torch.cuda.get_device_name(0)
    else:
        device = f"{os.cpu_count()} CPU cores ({platform.machine()})"
    return f"{device}, torch {torch.__version__.split('+')[0]}"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
            check=False,  # outside a git checkout there is no commit: returncode says so below
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0 or not out.stdout.strip():
        return None
    # A number from uncommitted code says so: the commit alone would name code that did not run.
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "--", "mtlkit", "examples"],
        capture_output=True,
        text=True,
        timeout=5,
        cwd=Path(__file__).parent.parent,
        check=False,  # a failed status leaves stdout empty: the commit is then reported as clean
    )
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


class ResultsFile:
    """One experiment's results, kept on disk after every change.

    Opening a file that already holds results of the same ``mode`` continues it (rows and
    wall time are kept); a file of another mode is replaced.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "demo.json"
        >>> results = ResultsFile(path, experiment="demo", seed_file="004_x.txt",
        ...                       command="mtlkit reproduce demo --mode quick", mode="quick")
        >>> results.add_row("MTL λ=0.5", "test_acc_item", 0.91, ours_std=0.01, n=3, paper=0.9,
        ...                 comparable="brief's hypothetical number")
        >>> results.has("MTL λ=0.5", "test_acc_item")
        True
        >>> validate(results.data)
        []
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        experiment: str,
        seed_file: str | None,
        command: str,
        mode: str,
        deviations: Sequence[str] = (),
        seeds: Sequence[int] = (),
        gates: Sequence[Gate] = (),
        precision: str = "fp32",
        origin: str | None = None,
    ) -> None:
        problem = _origin_problem(seed_file, origin)
        if problem:
            raise ValueError(problem)
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        if precision not in _PRECISIONS:
            raise ValueError(f"precision must be one of {_PRECISIONS}, got {precision!r}")
        self.path = Path(path)
        self.gates = tuple(gates)
        self._opened = time.perf_counter()
        self.data: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "experiment": experiment,
            "seed_file": seed_file,
            "origin": origin,
            "command": command,
            "mode": mode,
            "deviations": list(deviations),
            "checks": [],
            "hardware": hardware_description(),
            "precision": precision,
            "wall_time_s": 0.0,
            "mtlkit_version": __version__,
            "mtlkit_commit": _git_commit(),
            "seeds": list(seeds),
            "rows": [],
        }
        if self.path.is_file():
            previous = json.loads(self.path.read_text())
            if previous.get("mode") == mode and previous.get("experiment") == experiment:
                self.data["rows"] = previous.get("rows", [])
                self.data["wall_time_s"] = float(previous.get("wall_time_s", 0.0))
                # What the experiment stored beside the rows (conclusions, figures, progress, per-run
                # records) carries over; what describes this opening (deviations, commit, ...) is new.
                for key, value in previous.items():
                    self.data.setdefault(key, value)
        self._base_wall = self.data["wall_time_s"]

    @property
    def rows(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.data["rows"]
        return rows

    def has(self, setting: str, metric: str | None = None) -> bool:
        """Whether a row for ``setting`` (and ``metric``, if given) exists."""
        return any(r["setting"] == setting and metric in (None, r["metric"]) for r in self.rows)

    def get(self, setting: str, metric: str) -> dict[str, Any] | None:
        return next((r for r in self.rows if r["setting"] == setting and r["metric"] == metric), None)

    def add_row(
        self,
        setting: str,
        metric: str,
        ours: float | None,
        *,
        ours_std: float | None = None,
        n: int | None = None,
        paper: float | None = None,
        comparable: bool | str = True,
        **extra: Any,
    ) -> None:
        """Add or replace the row ``(setting, metric)`` and save.

        ``n`` (runs behind the number) defaults to the length of a ``per_repeat`` / ``per_seed`` extra
        (or ``n_seeds``), and to 1 for a single number; a spread without its ``n`` is refused.
        """
        if n is None:
            per_run = next((extra[k] for k in ("per_repeat", "per_seed") if k in extra), None)
            if per_run is not None:
                n = len(per_run)
            elif "n_seeds" in extra:
                n = int(extra["n_seeds"])
            elif ours_std is None:
                n = 1
            else:
                raise ValueError(f"row {setting!r}/{metric!r}: ours_std={ours_std} needs n (the number of runs)")
        row = {
            "setting": setting,
            "metric": metric,
            "ours": ours,
            "ours_std": ours_std,
            "n": n,
            "paper": paper,
            "comparable": comparable,
            "mtlkit_commit": self.data["mtlkit_commit"],
            **extra,
        }
        problems = _row_problems(row)
        if problems:
            raise ValueError(f"row {setting!r}/{metric!r}: " + "; ".join(problems))
        self.data["rows"] = [r for r in self.rows if (r["setting"], r["metric"]) != (setting, metric)]
        self.rows.append(row)
        self.save()

    def plan(self, configurations: Sequence[str]) -> None:
        """Declare the configurations this run will train, so progress can be told (``mtlkit status``)."""
        planned = list(self.data.get("planned", []))
        planned += [c for c in configurations if c not in planned]
        self.data["planned"] = planned
        self.data.setdefault("progress", {})
        self.save()

    def is_done(self, configuration: str) -> bool:
        """Whether ``configuration`` was recorded as finished by :meth:`record_done`."""
        return configuration in self.data.get("progress", {})

    def record_done(self, configuration: str, cpu_s: float) -> None:
        """Record that ``configuration`` finished after ``cpu_s`` CPU seconds, and save."""
        self.data.setdefault("progress", {})[configuration] = round(float(cpu_s), 2)
        self.save()

    def kept(self, configuration: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The record of ``configuration``: computed once, then kept in the file's ``per_run``.

        A results file is committed as configurations finish and checkpoints are not, so a run
        restarted where its checkpoints are gone still skips every finished configuration, and the
        rows are built from these records. A new record is stamped with the ``mtlkit_commit`` of the
        code that finished it (a configuration resumed from checkpoints may have begun under older
        code; a row rebuilt from records by later code names that later code), and the
        configuration is marked done with the record's ``cpu_s``.

        Example:
            >>> import tempfile, pathlib
            >>> path = pathlib.Path(tempfile.mkdtemp()) / "demo.json"
            >>> results = ResultsFile(path, experiment="demo", seed_file="004_x.txt", command="c", mode="quick")
            >>> results.kept("STL/seed0", lambda: {"acc": 0.8, "cpu_s": 1.5})["acc"]
            0.8
            >>> results.kept("STL/seed0", lambda: 1 / 0)["acc"]  # kept: not computed again
            0.8
            >>> results.is_done("STL/seed0"), "mtlkit_commit" in results.data["per_run"]["STL/seed0"]
            (True, True)
        """
        records: dict[str, dict[str, Any]] = self.data.setdefault("per_run", {})
        if configuration not in records:
            computed = compute()
            if "cpu_s" not in computed:
                raise ValueError(f"kept({configuration!r}): the record needs its 'cpu_s', got keys {sorted(computed)}")
            records[configuration] = {**computed, "mtlkit_commit": self.data["mtlkit_commit"]}
        record = records[configuration]
        self.record_done(configuration, record["cpu_s"])
        return record

    def start_protocol(self, tag: str, derived: Sequence[str] = ()) -> None:
        """Continue only the results of protocol ``tag``; a file of another protocol starts afresh.

        A continued file keeps its rows and per-run records, so a run whose protocol changed
        (budget, rank rule, width) would otherwise mix the old rows with the new ones. Rows, the
        ``per_run`` records, the plan, the progress, figures, conclusions and the experiment's own
        ``derived`` top-level fields of another ``tag`` (or of none) are dropped, and ``tag`` is
        stored as ``"protocol"``.

        Example:
            >>> import tempfile, pathlib
            >>> path = pathlib.Path(tempfile.mkdtemp()) / "demo.json"
            >>> def opened():
            ...     return ResultsFile(path, experiment="demo", seed_file="004_x.txt", command="c", mode="quick")
            >>> old = opened(); old.start_protocol("v1"); old.add_row("STL", "acc", 0.8)
            >>> new = opened(); new.start_protocol("v2"); new.rows
            []
            >>> again = opened(); again.start_protocol("v2"); again.data["protocol"]
            'v2'
        """
        if self.data.get("protocol") == tag:
            return
        for stale in ("per_run", "planned", "progress", "figures", "conclusions", *derived):
            self.data.pop(stale, None)
        self.rows.clear()
        self.set("protocol", tag)

    def set(self, key: str, value: Any) -> None:
        """Set a top-level field (e.g. ``"conclusions"``, ``"figures"``) and save."""
        self.data[key] = value
        self.save()

    @property
    def checks(self) -> list[dict[str, Any]]:
        """The gates evaluated on the rows so far (see :mod:`mtlkit.gates`)."""
        return [gate.evaluate(self.rows) for gate in self.gates]

    def save(self) -> None:
        if self.gates:
            self.data["checks"] = self.checks
        self.data["wall_time_s"] = round(self._base_wall + time.perf_counter() - self._opened, 1)
        _write_atomically(self.path, self.data)


def results_path(results_dir: str | os.PathLike[str], experiment: str) -> Path:
    """Where an experiment's results file lives: ``<results_dir>/<name with _ for ->.json``.

    Example:
        >>> results_path("results", "dmtrl-mnist").as_posix()
        'results/dmtrl_mnist.json'
    """
    return Path(results_dir) / f"{experiment.replace('-', '_')}.json"


def _write_atomically(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` with ``data`` as JSON in one rename, from a temporary file no other writer shares."""
    with replacing(path) as out:
        out.write((json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode())


def unfinished(data: dict[str, Any]) -> int:
    """How many planned configurations of a parsed results file have not finished (0 without a plan).

    Example:
        >>> unfinished({"planned": ["a", "b", "c"], "progress": {"a": 1.0}}), unfinished({"rows": []})
        (2, 0)
    """
    return len(set(data.get("planned") or ()) - set(data.get("progress") or {}))


def record_commits(data: dict[str, Any]) -> list[str]:
    """The commits stamped on a results file's ``per_run`` records (see :meth:`ResultsFile.kept`), sorted.

    >>> record_commits({"per_run": {"a": {"mtlkit_commit": "b2"}, "b": {"mtlkit_commit": "a1"}, "c": {}}})
    ['a1', 'b2']
    """
    records = data.get("per_run", {}).values()
    return sorted({str(r["mtlkit_commit"]) for r in records if isinstance(r, dict) and r.get("mtlkit_commit")})


def refresh_checks(path: str | os.PathLike[str], gates: Sequence[Gate]) -> list[dict[str, Any]]:
    """Re-evaluate ``gates`` on the rows of the results file at ``path`` and rewrite its ``checks``.

    For a finished file whose experiment's gates changed: the rows stay as they are (no training,
    nothing else in the file touched), and the file is replaced atomically only if a check changed.
    Returns the failed checks. A file a campaign is still writing must be left to it (it re-evaluates
    its gates on every save; a second writer could undo one of its saves): see :func:`unfinished`.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "demo.json"
        >>> _ = path.write_text(json.dumps({"checks": [], "rows": [{"setting": "STL", "metric": "e", "ours": 60.0}]}))
        >>> [c["name"] for c in refresh_checks(path, [Gate("STL trains", key="ours", below=50.0)])]
        ['STL trains']
        >>> json.loads(path.read_text())["checks"][0]["value"]
        60.0
    """
    path = Path(path)
    data = json.loads(path.read_text())
    checks = [gate.evaluate(data.get("rows", [])) for gate in gates]
    if checks != data.get("checks"):
        data["checks"] = checks
        _write_atomically(path, data)
    return [c for c in checks if not c["passed"]]


_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "schema": int,
    "experiment": str,
    "seed_file": (str, type(None)),
    "command": str,
    "mode": str,
    "deviations": list,
    "checks": list,
    "hardware": str,
    "wall_time_s": (int, float),
    "seeds": list,
    "rows": list,
}


def _origin_problem(seed_file: object, origin: object) -> str | None:
    """Why ``seed_file`` / ``origin`` do not say where an experiment comes from, or None."""
    given = [name for name, value in (("seed_file", seed_file), ("origin", origin)) if value is not None]
    if len(given) != 1:
        return f"give exactly one of seed_file / origin, got seed_file={seed_file!r}, origin={origin!r}"
    value = seed_file if seed_file is not None else origin
    if not isinstance(value, str) or not value.strip():
        return f"{given[0]} must be a non-empty string, got {value!r}"
    return None


def _row_problems(row: dict[str, Any]) -> list[str]:
    problems = []
    for key in ("setting", "metric"):
        if not isinstance(row.get(key), str) or not row[key]:
            problems.append(f"{key} must be a non-empty string")
    n = row.get("n")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        problems.append(f"n must be a positive integer, got {n!r}")
    elif row.get("ours_std") is not None and n < 2:
        problems.append(f"ours_std={row['ours_std']} with n={n}: a spread needs at least 2 runs")
    comparable = row.get("comparable")
    if comparable is not True and not (isinstance(comparable, str) and comparable.strip()):
        problems.append(f"comparable must be true or a reason, got {comparable!r}")
    for key in ("ours", "ours_std", "paper"):
        value = row.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            problems.append(f"{key} must be a number or null, got {value!r}")
    return problems


def validate(data: dict[str, Any]) -> list[str]:
    """Every way ``data`` (a parsed results file) breaks schema v2; empty when it is valid.

    Example:
        >>> validate({"schema": 1})[:2]
        ['schema must be 2, got 1', "missing 'experiment'"]
    """
    problems = []
    if data.get("schema") != SCHEMA_VERSION:
        problems.append(f"schema must be {SCHEMA_VERSION}, got {data.get('schema')!r}")
    for key, kind in _REQUIRED.items():
        if key == "schema":
            continue
        if key not in data:
            problems.append(f"missing {key!r}")
        elif not isinstance(data[key], kind):
            problems.append(f"{key!r} has the wrong type ({type(data[key]).__name__})")
    if "seed_file" in data:  # a missing seed_file is reported above
        problems += [p for p in [_origin_problem(data["seed_file"], data.get("origin"))] if p]
    if data.get("mode") not in _MODES:
        problems.append(f"mode must be one of {_MODES}, got {data.get('mode')!r}")
    if data.get("precision", "fp32") not in _PRECISIONS:
        problems.append(f"precision must be one of {_PRECISIONS}, got {data.get('precision')!r}")
    for i, check in enumerate(data.get("checks", [])):
        missing = {"name", "threshold", "value", "passed"} - set(check)
        if missing:
            problems.append(f"checks[{i}] lacks {sorted(missing)}")
    seen: set[tuple[object, object]] = set()
    for i, row in enumerate(data.get("rows", [])):
        problems += [f"rows[{i}] ({row.get('setting')!r}): {p}" for p in _row_problems(row)]
        row_key = (row.get("setting"), row.get("metric"))
        if row_key in seen:
            problems.append(f"rows[{i}]: duplicate row {row_key}")
        seen.add(row_key)
    return problems


def failed_gates(data: dict[str, Any], row: dict[str, Any]) -> list[str]:
    """Names of the failed checks in ``data`` that cover ``row``: if any, the row is uninformative.

    Example:
        >>> data = {"checks": [{"name": "baseline trains", "passed": False, "settings": "STL*", "metric": "*"}]}
        >>> failed_gates(data, {"setting": "STL @ 1%", "metric": "error"}), failed_gates(data, {"setting": "MTL"})
        (['baseline trains'], [])
    """
    return [c["name"] for c in data.get("checks", []) if not c.get("passed") and covers(c, row)]
