"""Training loops shared by the coursework tasks: per-epoch train/test curves and timings."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch.nn import functional as F

from mtlkit import SingleTaskModels, Trainer, seed_everything
from mtlkit.experiments import RunContext


def classifier(
    ctx: RunContext,
    net: torch.nn.Module,
    run: tuple[str, ...],
    *,
    task: str = "digit",
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
) -> Trainer:
    """A Trainer for one cross-entropy classification task with Adam, checkpointing in ``ctx.run_dir(*run)``."""
    model = SingleTaskModels({task: net})
    run_dir = ctx.run_dir(*run)
    return Trainer(
        model,
        torch.optim.Adam(model.parameters(), lr=lr, betas=betas),
        {task: F.cross_entropy},
        device=ctx.device,
        checkpoint_dir=run_dir,
        log_dir=run_dir,
        progress=ctx.progress,
    )


def timed_evaluate(trainer: Trainer, data: Iterable) -> tuple[dict[str, float], float]:
    """``trainer.evaluate(data)`` and its wall time in seconds."""
    start = time.perf_counter()
    metrics = trainer.evaluate(data)
    return metrics, time.perf_counter() - start


def fit_with_curves(
    trainer: Trainer, train: Iterable, epochs: int, evals: Mapping[str, Iterable]
) -> list[dict[str, float]]:
    """Train epoch by epoch, evaluating every set in ``evals`` after each epoch.

    Returns one record per epoch with ``train_time_s`` (the epoch's training only) and, for each
    name in ``evals``, ``<name>/<metric>`` and ``<name>_eval_time_s``. Records are saved to
    ``curves.json`` next to the checkpoint, so a killed run resumes (the Trainer restores the
    model of the last finished epoch, which is exactly what the missing record needs).
    """
    if trainer.checkpoint_dir is None:
        raise ValueError("fit_with_curves needs a Trainer with a checkpoint_dir")
    path = Path(trainer.checkpoint_dir) / "curves.json"
    curves: list[dict[str, float]] = json.loads(path.read_text()) if path.is_file() else []
    for epoch in range(1, epochs + 1):
        history = trainer.fit(train, epochs=epoch)
        if len(curves) >= epoch:
            continue
        record = {"epoch": float(epoch), "train_time_s": history[epoch - 1]["time_s"]}
        for name, data in evals.items():
            metrics, seconds = timed_evaluate(trainer, data)
            record.update({f"{name}/{key.split('/', 1)[1]}": value for key, value in metrics.items()})
            record[f"{name}_eval_time_s"] = seconds
        curves.append(record)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(curves))
        os.replace(tmp, path)
    return curves[:epochs]


def seeded(seed: int) -> int:
    """Seed every generator (before building a model, so its initialisation is reproducible)."""
    seed_everything(seed)
    return seed
