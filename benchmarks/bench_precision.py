"""bf16 autocast vs fp32: one Trainer epoch of the coursework CNN and of the DMTRL LeNet.

Both sides train the same model from the same initial weights on the same pre-built batches;
only ``Trainer(precision=...)`` differs, so the ratio is what bf16 autocast buys on this machine
(AVX-512 BF16 / AMX CPUs run bf16 matrix multiplies several times faster than fp32). Target: < 1.
On a CPU without native bf16 the Trainer falls back to fp32 and the entry says so.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from benchmarks._timing import compare
from mtlkit import LinearHead, MultiTaskModel, Trainer
from mtlkit.nn import Conv, ConvNet, Dense, Flatten, MaxPool
from mtlkit.precision import bf16_supported


def _coursework_cnn() -> MultiTaskModel:
    trunk = ConvNet(
        (1, 28, 28), [Conv(32, 3, padding=1), MaxPool(2), Conv(64, 3, padding=1), MaxPool(2), Flatten(), Dense(128)]
    )
    return MultiTaskModel(trunk, {"item": LinearHead(128, 10), "group": LinearHead(128, 3)})


def _dmtrl_lenet() -> MultiTaskModel:
    # DMTRL Sec. 4.1's per-task network at the paper's width: 32@5×5, 64@4×4, FC 512, FC 1.
    trunk = ConvNet((1, 28, 28), [Conv(32, 5), MaxPool(2), Conv(64, 4), MaxPool(2), Flatten(), Dense(512)])
    return MultiTaskModel(trunk, {"digit": LinearHead(512, 1)})


def _hinge(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - output.squeeze(-1) * target).mean()


def _epoch(model: nn.Module, batches: list, losses: dict, precision: str) -> Callable[[], None]:
    def run() -> None:
        copy_ = copy.deepcopy(model)
        trainer = Trainer(
            copy_, torch.optim.Adam(copy_.parameters(), 1e-3), losses, metrics={}, progress=False, precision=precision
        )
        trainer.fit(batches, epochs=1)

    return run


def run(quick: bool = False) -> list[dict[str, object]]:
    n_batches, batch_size = (4, 64) if quick else (30, 128)
    g = torch.Generator().manual_seed(0)
    x = [torch.randn(batch_size, 1, 28, 28, generator=g) for _ in range(n_batches)]
    cases = {
        "coursework CNN (2 tasks)": (
            _coursework_cnn,
            {"item": F.cross_entropy, "group": F.cross_entropy},
            lambda: {
                "item": torch.randint(0, 10, (batch_size,), generator=g),
                "group": torch.randint(0, 3, (batch_size,), generator=g),
            },
        ),
        "DMTRL LeNet (one task, paper width)": (
            _dmtrl_lenet,
            {"digit": _hinge},
            lambda: {"digit": torch.randint(0, 2, (batch_size,), generator=g).float() * 2 - 1},
        ),
    }
    native = bf16_supported(torch.device("cpu"))
    entries = []
    for name, (make, losses, targets) in cases.items():
        torch.manual_seed(0)
        model = make()
        batches = [(xb, targets()) for xb in x]
        result = compare(
            _epoch(model, batches, losses, "fp32"), _epoch(model, batches, losses, "bf16"), repeats=2 if quick else 5
        )
        entries.append(
            {
                "name": f"bf16 vs fp32 Trainer epoch, {name}, {n_batches}×{batch_size}"
                + ("" if native else " (no native bf16: both fp32)"),
                "target": "< 1 (bf16 faster)",
                **result,
            }
        )
    return entries


if __name__ == "__main__":
    for entry in run():
        print(entry)
