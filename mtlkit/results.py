"""Results files: ``results/<experiment>.json``, written incrementally and atomically.

A reproduction adds rows as configurations finish, so a restarted run can skip what is done
(:meth:`ResultsFile.has`) and a killed run loses at most the configuration in progress.
The format is the one in ``DESIGN.md``::

    {"experiment", "seed_file", "command", "mode", "deviations", "hardware", "wall_time_s",
     "mtlkit_commit", "seeds", "rows": [{"setting", "metric", "ours", "ours_std", "paper", ...}]}
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from mtlkit._version import __version__

__all__ = ["ResultsFile", "hardware_description"]


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
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


class ResultsFile:
    """One experiment's results, kept on disk after every change.

    Opening a file that already holds results of the same ``mode`` continues it (rows and
    wall time are kept); a file of another mode is replaced.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "demo.json"
        >>> results = ResultsFile(path, experiment="demo", seed_file="004_x.txt",
        ...                       command="mtlkit reproduce demo --mode quick", mode="quick")
        >>> results.add_row("MTL λ=0.5", "test_acc_item", 0.91, ours_std=0.01, paper=None)
        >>> results.has("MTL λ=0.5", "test_acc_item")
        True
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        experiment: str,
        seed_file: str,
        command: str,
        mode: str,
        deviations: Sequence[str] = (),
        seeds: Sequence[int] = (),
    ) -> None:
        self.path = Path(path)
        self._opened = time.perf_counter()
        self.data: dict[str, Any] = {
            "experiment": experiment,
            "seed_file": seed_file,
            "command": command,
            "mode": mode,
            "deviations": list(deviations),
            "hardware": hardware_description(),
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
                for key in ("conclusions", "figures"):
                    if key in previous:
                        self.data[key] = previous[key]
        self._base_wall = self.data["wall_time_s"]

    @property
    def rows(self) -> list[dict[str, Any]]:
        return self.data["rows"]

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
        paper: float | None = None,
        **extra: Any,
    ) -> None:
        """Add or replace the row ``(setting, metric)`` and save."""
        row = {"setting": setting, "metric": metric, "ours": ours, "ours_std": ours_std, "paper": paper, **extra}
        self.data["rows"] = [r for r in self.rows if (r["setting"], r["metric"]) != (setting, metric)]
        self.rows.append(row)
        self.save()

    def set(self, key: str, value: Any) -> None:
        """Set a top-level field (e.g. ``"conclusions"``, ``"figures"``) and save."""
        self.data[key] = value
        self.save()

    def save(self) -> None:
        self.data["wall_time_s"] = round(self._base_wall + time.perf_counter() - self._opened, 1)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.data, indent=1, ensure_ascii=False) + "\n")
        os.replace(tmp, self.path)
