"""Trainer overhead: one epoch through ``Trainer.fit`` vs a hand-written PyTorch loop.

Both train the same two-task CNN from the same initial weights on the same pre-built batches,
so the ratio isolates what the Trainer adds (per-task loss dispatch, weighting, checks, metrics
bookkeeping). Target: ratio ≤ 1.05.
"""

from __future__ import annotations

import copy

import torch
from torch.nn import functional as F

from benchmarks._timing import compare
from mtlkit import LinearHead, MultiTaskModel, Trainer
from mtlkit.nn import Conv, ConvNet, Dense, Flatten, MaxPool


def _model() -> MultiTaskModel:
    torch.manual_seed(0)
    trunk = ConvNet(
        (1, 28, 28), [Conv(32, 3, padding=1), MaxPool(2), Conv(64, 3, padding=1), MaxPool(2), Flatten(), Dense(128)]
    )
    return MultiTaskModel(trunk, {"item": LinearHead(128, 10), "group": LinearHead(128, 3)})


def run(quick: bool = False) -> list[dict[str, object]]:
    n_batches, batch_size = (8, 64) if quick else (40, 64)
    g = torch.Generator().manual_seed(0)
    batches = [
        (
            torch.randn(batch_size, 1, 28, 28, generator=g),
            {
                "item": torch.randint(0, 10, (batch_size,), generator=g),
                "group": torch.randint(0, 3, (batch_size,), generator=g),
            },
        )
        for _ in range(n_batches)
    ]
    lam = 0.5
    base_model = _model()

    def hand_loop() -> None:
        model = copy.deepcopy(base_model)
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        model.train()
        for x, y in batches:
            out = model(x)
            loss = lam * F.cross_entropy(out["item"], y["item"]) + (1 - lam) * F.cross_entropy(out["group"], y["group"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    def trainer_epoch() -> None:
        model = copy.deepcopy(base_model)
        trainer = Trainer(
            model,
            torch.optim.Adam(model.parameters(), 1e-3),
            {"item": F.cross_entropy, "group": F.cross_entropy},
            weights={"item": lam, "group": 1 - lam},
            progress=False,
        )
        trainer.fit(batches, epochs=1)

    result = compare(hand_loop, trainer_epoch, repeats=3 if quick else 7)
    return [
        {
            "name": f"Trainer.fit vs hand-written loop (2-task CNN, {n_batches}×{batch_size})",
            "target": "<= 1.05",
            **result,
        }
    ]


if __name__ == "__main__":
    for entry in run():
        print(entry)
