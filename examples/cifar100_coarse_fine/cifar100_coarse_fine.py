"""Seed 003: CIFAR-100 fine + coarse labels with six architectures of about equal size.

Independent towers, shared convolutions, and label reuse (one task's softmax prediction
concatenated into the other task's output layer) in both directions, alone and with shared
convolutions. All six are trained with the same optimiser, learning rate, batch size and
epochs, and evaluated on the CIFAR-100 test set (the seed's "validation").
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from coarse_fine_architectures import ARCHITECTURES, Widths, build, parameter_count
from torch.nn import functional as F

from mtlkit import Trainer, seed_everything
from mtlkit.data import ImageDataset, balanced_sample, cifar100_tasks
from mtlkit.experiments import RunContext, register_experiment
from mtlkit.gates import Gate

NAME = "cifar100-coarse-fine"
# The seed's two tables: validation accuracy (%) and loss, fine then coarse.
PAPER_ACC = {
    "Independent": (48.86, 64.16),
    "Shared Conv": (49.09, 64.20),
    "Reuse Coarse": (51.50, 62.29),
    "Reuse Fine": (49.14, 68.38),
    "Shared Conv & Reuse Coarse": (50.34, 63.91),
    "Shared Conv & Reuse Fine": (50.91, 67.11),
}
PAPER_LOSS = {
    "Independent": (1.96, 1.15),
    "Shared Conv": (1.94, 1.16),
    "Reuse Coarse": (1.83, 1.21),
    "Reuse Fine": (1.95, 1.07),
    "Shared Conv & Reuse Coarse": (1.86, 1.16),
    "Shared Conv & Reuse Fine": (1.84, 1.06),
}
TASKS = ("fine", "coarse")


@dataclass(frozen=True)
class Budget:
    widths: Widths
    n_train: int | None  # class-balanced over the 100 fine classes; None = all 50,000
    n_val: int | None
    epochs: int
    seeds: tuple[int, ...]
    lr: float = 1e-3
    batch_size: int = 128


REDUCED_WIDTHS = Widths(conv=(32, 64, 64), shared_conv=(36, 72, 72), fc=128)
BUDGETS = {
    "quick": Budget(REDUCED_WIDTHS, n_train=500, n_val=500, epochs=1, seeds=(0,)),
    "reduced": Budget(REDUCED_WIDTHS, n_train=12000, n_val=None, epochs=5, seeds=(0, 1)),
    "full": Budget(Widths(conv=(64, 128, 128), shared_conv=(72, 144, 144), fc=256), n_train=None, n_val=None,
                   epochs=40, seeds=(0, 1, 2)),
}  # fmt: skip


def _deviations(mode: str, b: Budget) -> list[str]:
    out = [
        "The seed (slides) gives no layer sizes, optimiser, learning rate, batch size or epoch count, only that they "
        f"were equal across models: ours are 3 conv blocks (3x3 conv + ReLU + 2x2 max-pool) with channels "
        f"{list(b.widths.conv)} per task ({list(b.widths.shared_conv)} when shared) and one {b.widths.fc}-unit fc "
        f"layer per task; Adam, lr {b.lr:g}, batch {b.batch_size}, {b.epochs} epochs, both task losses weighted 1.",
        "Reuse heads concatenate the source task's softmax prediction to the fc features and apply one linear layer; "
        "the gradient flows back into the source task (no detach), the seed's 'backprop issue'.",
        "'Validation' is the CIFAR-100 test set, evaluated once after the last epoch; no augmentation.",
        f"Seeds {list(b.seeds)} (init and batch order); the seed reports single runs.",
    ]
    if b.n_train is not None:
        out.append(f"Training set: a class-balanced subset of {b.n_train} of the 50,000 training images "
                   f"({b.n_train // 100} per fine class).")  # fmt: skip
    if mode == "quick":
        out.append("quick mode: train and validation subsets are drawn from the CIFAR-100 test split only (to skip "
                   "decompressing the training file); smoke test only, numbers are meaningless.")  # fmt: skip
    return out


def _data(ctx: RunContext, b: Budget) -> tuple[ImageDataset, ImageDataset]:
    if ctx.mode == "quick":
        test = cifar100_tasks("test", root=ctx.data_root)
        rows = torch.as_tensor(balanced_sample(test.labels["fine"].numpy(), b.n_train + b.n_val, seed=0))
        rows = rows[torch.randperm(len(rows), generator=torch.Generator().manual_seed(0))]
        return test.subset(rows[: b.n_train]), test.subset(rows[b.n_train :])
    train, val = cifar100_tasks("train", root=ctx.data_root), cifar100_tasks("test", root=ctx.data_root)
    if b.n_train is not None:
        train = train.subset(balanced_sample(train.labels["fine"].numpy(), b.n_train, seed=0))
    if b.n_val is not None:
        val = val.subset(balanced_sample(val.labels["fine"].numpy(), b.n_val, seed=0))
    return train, val


def _fit(ctx, b: Budget, arch: str, seed: int, train, val, run_dir: Path, device) -> dict:
    seed_everything(seed)
    model = build(arch, b.widths)
    optimizer = torch.optim.Adam(model.parameters(), lr=b.lr)
    trainer = Trainer(model, optimizer, {t: F.cross_entropy for t in TASKS}, device=device, checkpoint_dir=run_dir,
                      log_dir=run_dir, progress=ctx.progress, seed=seed)  # fmt: skip
    trainer.fit(train.batches(b.batch_size, shuffle=True, seed=seed), b.epochs)
    return trainer.evaluate(val.batches(1000, shuffle=False))


def _conclusion(acc: dict) -> str:
    """One sentence from the per-seed accuracies: the effect of each reuse direction and of sharing."""

    def effect(arch: str, task: str) -> tuple[float, float, float, bool]:
        i = TASKS.index(task)
        seeds = sorted(set(acc[arch]) & set(acc["Independent"]))
        diffs = [100 * (acc[arch][s][i] - acc["Independent"][s][i]) for s in seeds]
        spread = max(
            statistics.stdev(100 * v[i] for v in acc[a].values()) if len(acc[a]) > 1 else float("nan")
            for a in (arch, "Independent")
        )
        paper = PAPER_ACC[arch][i] - PAPER_ACC["Independent"][i]
        return statistics.fmean(diffs), paper, spread, len(seeds) > 1 and abs(statistics.fmean(diffs)) > spread

    parts = []
    for arch, task in (("Reuse Fine", "coarse"), ("Reuse Coarse", "fine"), ("Shared Conv", "fine"),
                       ("Shared Conv", "coarse")):  # fmt: skip
        if arch not in acc:
            continue
        gain, paper, spread, beyond = effect(arch, task)
        if math.isnan(spread):  # one seed, no spread to compare against
            versus = "one seed, spread unknown"
        else:
            versus = f"{'larger' if beyond else 'not larger'} than the seed std {spread:.2f}"
        parts.append(f"{arch} on {task} accuracy {gain:+.2f} pt (paper {paper:+.2f}; {versus})")
    return "Relative to Independent towers: " + "; ".join(parts) + "."


GATES = [
    # Reuse Fine can only help the coarse task if the fine prediction it reuses is mostly right.
    Gate("fine predictor trains", key="ours", above=40.0, settings="Independent", metric="val_acc_fine", marks="*"),
    Gate("training converged", key="train_loss_change_last10pct", below=0.02, metric="val_acc_*", marks="*"),
]


@register_experiment(NAME, seed_file="003_5d21279641f4ebc0.txt",
                     description="CIFAR-100 fine + coarse: independent, shared conv, label reuse (6 archs)",
                     threads=1, gates=GATES)
def run(ctx: RunContext) -> None:
    b = BUDGETS[ctx.mode]
    device = ctx.device
    results = ctx.results(deviations=_deviations(ctx.mode, b), seeds=list(b.seeds))
    counts = {arch: parameter_count(build(arch, b.widths)) for arch in ARCHITECTURES}
    for arch, n in counts.items():
        print(f"{arch:<28} {n:>10,} parameters")
    results.set("parameter_counts", counts)
    train, val = _data(ctx, b)
    acc: dict[str, dict[int, tuple[float, float]]] = {}
    loss: dict[str, dict[int, tuple[float, float]]] = {}
    for seed in b.seeds:
        for arch in ARCHITECTURES:
            run_dir = ctx.run_dir(arch.replace(" & ", "+").replace(" ", "_"), f"seed{seed}")
            final = run_dir / "final.json"
            if final.is_file():
                m = json.loads(final.read_text())
            else:
                m = _fit(ctx, b, arch, seed, train, val, run_dir, device)
                final.write_text(json.dumps(m))
            acc.setdefault(arch, {})[seed] = tuple(m[f"{t}/acc"] for t in TASKS)
            loss.setdefault(arch, {})[seed] = tuple(m[f"{t}/loss"] for t in TASKS)
            for i, task in enumerate(TASKS):
                accs = [100 * v[i] for _, v in sorted(acc[arch].items())]
                losses = [v[i] for _, v in sorted(loss[arch].items())]
                std = (lambda xs: round(statistics.stdev(xs), 4) if len(xs) > 1 else None)  # noqa: E731
                common = {"n_seeds": len(accs), "parameters": counts[arch], "epochs": b.epochs}
                results.add_row(arch, f"val_acc_{task}", round(statistics.fmean(accs), 3), ours_std=std(accs),
                                paper=PAPER_ACC[arch][i], unit="%", per_seed=[round(a, 3) for a in accs], **common)
                results.add_row(arch, f"val_loss_{task}", round(statistics.fmean(losses), 4), ours_std=std(losses),
                                paper=PAPER_LOSS[arch][i], per_seed=[round(x, 4) for x in losses], **common)
        results.set("conclusions", _conclusion(acc))


if __name__ == "__main__":
    from mtlkit.cli import main

    sys.exit(main(["reproduce", NAME, *sys.argv[1:]]))
