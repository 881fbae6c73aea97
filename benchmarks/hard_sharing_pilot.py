"""Pilot for the hard-sharing re-runs (issue #16): CPU seconds per optimiser step of their networks.

``python -m benchmarks.hard_sharing_pilot [--steps N]`` prints and writes ``runs/hard_sharing_pilot.json``;
``docs/hard_sharing.rst`` turns these into the CPU-hour estimates of the reduced campaign
(steps per configuration x seconds per step). Forward + backward + Adam on random inputs of the
real shapes, after 3 warm-up steps, with one torch thread; bf16 under CPU autocast as the Trainer does.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from mtlkit import MultiTaskModel
from mtlkit.nn import LinearHead, all_conv_trunk

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def seconds_per_step(model: nn.Module, x: torch.Tensor, targets: dict[str, torch.Tensor], steps: int,
                     precision: str) -> float:  # fmt: skip
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)

    def step() -> None:
        optimizer.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = model(x)
            loss = sum(F.cross_entropy(out[t], y) for t, y in targets.items())
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    start = time.process_time()
    for _ in range(steps):
        step()
    return (time.process_time() - start) / steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hard_sharing_pilot")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per network (default 40)")
    parser.add_argument("--out", default="runs/hard_sharing_pilot.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    sys.path.insert(0, str(EXAMPLES / "cifar100_coarse_fine"))
    from cifar100_coarse_fine import BUDGETS  # noqa: PLC0415 - an example folder, importable only via sys.path
    from coarse_fine_architectures import build  # noqa: PLC0415

    torch.manual_seed(0)
    cases = {
        "All-CNN width 64, batch 100": (
            lambda: MultiTaskModel(all_conv_trunk((1, 28, 28), 64), {"t": LinearHead(64, 10)}),
            torch.rand(100, 1, 28, 28), {"t": torch.randint(0, 10, (100,))}),
    }  # fmt: skip
    x = torch.rand(128, 3, 32, 32)
    ys = {"fine": torch.randint(0, 100, (128,)), "coarse": torch.randint(0, 20, (128,))}
    widths = BUDGETS["reduced"].widths
    for arch in ("Independent", "Shared Conv & Reuse Fine"):
        cases[f"{arch} {widths.conv}, batch 128"] = (lambda arch=arch: build(arch, widths), x, ys)
    out = {}
    for name, (make, inputs, targets) in cases.items():
        for precision in ("fp32", "bf16"):
            out[f"{name} {precision}"] = seconds_per_step(make(), inputs, targets, args.steps, precision)
            print(f"{out[f'{name} {precision}']:.3f} s/step  {name} {precision}", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
