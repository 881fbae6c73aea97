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
        torch.optim.Adam(model.parameters(), lr=lr, betas=betas, fused=True),  # fused: see task6_mtl.make_trainer
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
    trainer: Trainer,
    train: Iterable,
    epochs: int,
    evals: Mapping[str, Iterable],
    *,
    min_epochs: int | None = None,
    patience: int | None = None,
    monitor: str = "val/acc",
) -> list[dict[str, float]]:
    """Train epoch by epoch, evaluating every set in ``evals`` after each epoch.

    Returns one record per epoch with ``train_time_s`` (the epoch's training only), the epoch's
    mean training loss per task (``train_loss/<task>``) and, for each name in ``evals``,
    ``<name>/<metric>`` and ``<name>_eval_time_s``. With ``patience``, training stops early once
    ``monitor`` (a validation metric; higher is better) has not improved on its best for
    ``patience`` epochs and at least ``min_epochs`` are done; ``epochs`` is then a cap.

    Records are saved to ``curves.json`` next to the checkpoint, so a killed run resumes (the
    Trainer restores the model of the last finished epoch, which is exactly what the missing
    record needs), and a finished run is only read back.
    """
    if trainer.checkpoint_dir is None:
        raise ValueError("fit_with_curves needs a Trainer with a checkpoint_dir")
    if patience is not None and patience < 1:
        raise ValueError(f"patience must be >= 1, got {patience}")
    path = Path(trainer.checkpoint_dir) / "curves.json"
    curves: list[dict[str, float]] = json.loads(path.read_text()) if path.is_file() else []
    if curves:
        # Epochs recorded by an earlier (possibly killed) run are read back, not retrained; the model
        # must still be the one they describe, so load the last checkpoint (fit trains no epoch here).
        trainer.fit(train, epochs=len(curves))
    for epoch in range(1, epochs + 1):
        if stopped(curves[: epoch - 1], min_epochs or 0, patience, monitor):
            return curves[: epoch - 1]
        if len(curves) >= epoch:
            continue
        history = trainer.fit(train, epochs=epoch)
        record = {"epoch": float(epoch), "train_time_s": history[epoch - 1]["time_s"]}
        record.update(
            {
                f"train_loss/{key.split('/')[1]}": value
                for key, value in history[epoch - 1].items()
                if key.startswith("train/") and key.endswith("/loss")
            }
        )
        for name, data in evals.items():
            metrics, seconds = timed_evaluate(trainer, data)
            record.update({f"{name}/{key.split('/', 1)[1]}": value for key, value in metrics.items()})
            record[f"{name}_eval_time_s"] = seconds
        curves.append(record)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(curves))
        os.replace(tmp, path)
    return curves[:epochs]


def stopped(curves: list[dict[str, float]], min_epochs: int, patience: int | None, monitor: str) -> bool:
    """Whether ``monitor`` has not beaten its best for ``patience`` epochs (after ``min_epochs``).

    >>> stopped([{"val/acc": a} for a in (0.9, 0.95, 0.94, 0.95)], min_epochs=3, patience=2, monitor="val/acc")
    True
    >>> stopped([{"val/acc": a} for a in (0.9, 0.95, 0.96)], min_epochs=3, patience=2, monitor="val/acc")
    False
    """
    if patience is None or len(curves) < max(min_epochs, 1):
        return False
    values = [r[monitor] for r in curves]
    best_epoch = values.index(max(values))  # the first epoch that reached the best value
    return len(values) - 1 - best_epoch >= patience


def seeded(seed: int) -> int:
    """Seed every generator (before building a model, so its initialisation is reproducible)."""
    seed_everything(seed)
    return seed
