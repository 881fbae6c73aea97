"""Strong scaling of DistributedDataParallel on CPU: the same global batches on 1 vs 2 processes (gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _time(processes: int, n_batches: int, batch: int) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env["PYTHONPATH"] = str(ROOT)
    worker = ["-m", "benchmarks.ddp_scaling_worker", str(n_batches), str(batch)]
    if processes == 1:
        cmd = [sys.executable, *worker]
    else:
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            f"--nproc_per_node={processes}",
            "--standalone",  # torchrun binds a free local port itself: no pick-then-release race
            "--no-python",
            sys.executable,
            *worker,
        ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600, check=True)
    line = next(line for line in out.stdout.splitlines() if line.startswith("{"))
    return float(json.loads(line)["seconds"])


def run(quick: bool = False) -> list[dict[str, object]]:
    n_batches, batch = (4, 64) if quick else (30, 128)
    one = min(_time(1, n_batches, batch) for _ in range(1 if quick else 2))
    two = min(_time(2, n_batches, batch) for _ in range(1 if quick else 2))
    return [
        {
            "name": f"DDP strong scaling, coursework CNN, {n_batches}×{batch} global batches: 2 vs 1 CPU processes",
            "ratio": two / one,
            "speedup": one / two,
            "baseline_s": one,
            "ours_s": two,
            "target": "report (ideal 0.5 on 2 free cores)",
        }
    ]


if __name__ == "__main__":
    for entry in run():
        print(entry)
