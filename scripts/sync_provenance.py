"""Set ``seed_file`` / ``origin`` of committed results files from the experiments' registrations.

A run writes both fields when it opens its results file, so a file only needs this when its
experiment's provenance changed since it was last written (multi-mnist and precision-check moved
from a seed document to ``origin: "issue …"``) or when a process still running older code rewrote
it. Files whose experiment is not registered under their name are left alone and listed.

Run from the repository root: ``PYTHONPATH=. python scripts/sync_provenance.py [results_dir]``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from mtlkit.experiments import Experiment, discover


def synced(data: dict, experiment: Experiment) -> dict:
    """``data`` with the registration's ``seed_file`` / ``origin``, ``origin`` right after ``seed_file``."""
    out = {}
    for key, value in data.items():
        if key == "origin":
            continue
        out[key] = value
        if key == "seed_file":
            out["seed_file"] = experiment.seed_file
            if experiment.origin is not None or "origin" in data:
                out["origin"] = experiment.origin
    return out


def main(results_dir: Path) -> int:
    by_file_name = {exp.name.replace("-", "_"): exp for exp in discover().values()}
    for path in sorted(results_dir.glob("*.json")):
        if path.name.startswith("benchmarks"):
            continue
        data = json.loads(path.read_text())
        experiment = by_file_name.get(data.get("experiment", ""))
        if experiment is None:
            print(f"{path.name}: no experiment registered as {data.get('experiment')!r}; left alone")
            continue
        new = synced(data, experiment)
        if new != data or list(new) != list(data):
            tmp = path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(new, indent=1, ensure_ascii=False) + "\n")
            os.replace(tmp, path)
            print(f"{path.name}: seed_file={new['seed_file']!r}, origin={new.get('origin')!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("results")))
