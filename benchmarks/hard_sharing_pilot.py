"""Pilots for the hard-sharing re-runs (issue #16).

``python -m benchmarks.hard_sharing_pilot [--steps N]``: CPU seconds per optimiser step of their
networks (forward + backward + Adam on random inputs of the real shapes, after 3 warm-up steps,
one torch thread; bf16 under CPU autocast as the Trainer does), which ``docs/hard_sharing.rst``
turns into the CPU-hour estimates of the reduced campaign (steps x seconds per step).

``--stage2`` instead asks whether the paper's second learning-rate stage moves the training loss
at the reduced width: a width-64 All-CNN on 3,000 Fashion-MNIST images, 10 epochs at 1e-3, then
3 epochs at 1e-5 and, from the same checkpoint, 3 at 1e-4 (needs ``MTLKIT_DATA``; about 2 CPU-minutes).
Both write JSON to ``--out``.
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


def stage2_pilot(folder: Path) -> dict[str, dict[str, object]]:
    """Relative fall of the epoch-mean training loss over a 3-epoch second stage at 1e-5 and at 1e-4."""
    import shutil

    sys.path.insert(0, str(EXAMPLES / "pooled_mnist"))
    from pooled_mnist_data import digit_splits

    from mtlkit import Trainer, seed_everything
    from mtlkit.lr_schedules import staged_time_decay

    task = "fashion_mnist"
    split = digit_splits(None, 3000, None)[task]

    def trainer(run_dir: Path, second: float) -> Trainer:
        seed_everything(0)
        net = MultiTaskModel(all_conv_trunk((1, 28, 28), 64), {task: LinearHead(64, 10)})
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
        return Trainer(net, optimizer, {task: F.cross_entropy}, checkpoint_dir=run_dir, seed=0, progress=False,
                       lr_scheduler=staged_time_decay(optimizer, ((1e-3, 10), (second, 3))))  # fmt: skip

    shutil.rmtree(folder, ignore_errors=True)
    trainer(folder / "1e-05", 1e-5).fit(split.train.batches(100, seed=0), 10)
    shutil.copytree(folder / "1e-05", folder / "0.0001")  # both second stages start from the same checkpoint
    out: dict[str, dict[str, object]] = {}
    for second in (1e-5, 1e-4):
        t = trainer(folder / f"{second:g}", second)
        curve = [r[f"train/{task}/loss"] for r in t.fit(split.train.batches(100, seed=0), 13)]
        accuracy = t.evaluate(split.test.batches(1000, shuffle=False))[f"{task}/acc"]
        out[f"{second:g}"] = {
            "train_loss": [round(c, 4) for c in curve],
            "stage2_fall": (curve[9] - curve[-1]) / curve[9],
            "test_acc": accuracy,
        }
        print(f"second stage {second:g}: training loss {curve[9]:.4f} -> {curve[-1]:.4f}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hard_sharing_pilot")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per network (default 40)")
    parser.add_argument("--stage2", action="store_true", help="the second-stage pilot instead of the step timings")
    parser.add_argument("--out", default="runs/hard_sharing_pilot.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.stage2:
        result = stage2_pilot(Path("runs/hard_sharing_stage2_pilot"))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
        return 0
    sys.path.insert(0, str(EXAMPLES / "cifar100_coarse_fine"))
    from cifar100_coarse_fine import BUDGETS
    from coarse_fine_architectures import build

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
