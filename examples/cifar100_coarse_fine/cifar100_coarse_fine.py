"""Seed 003: CIFAR-100 fine + coarse labels with six architectures of about equal size.

Independent towers, shared convolutions, and label reuse (one task's softmax prediction
concatenated into the other task's output layer) in both directions, alone and with shared
convolutions. All six are trained with the same optimiser, learning rate, batch size and
epochs (the seed's first rule) at parameter counts within a few percent (its second).

Protocol: one selection run (Independent, seed 0) trains on 45,000 training images and watches
the other 5,000 (a validation split carved from the training set) to choose the number of
epochs — the epoch of best validation fine accuracy, at least ``min_epochs``. Every architecture
and seed then trains on all 50,000 images for that many epochs (random crop + flip) and meets
the CIFAR-100 test set once, at the end. The seed's three conclusions are judged by paired
(same-seed) differences against two standard errors.

    mtlkit reproduce cifar100-coarse-fine --mode reduced
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from coarse_fine_architectures import ARCHITECTURES, Widths, build, parameter_count
from torch.nn import functional as F

from mtlkit import Trainer, seed_everything
from mtlkit.data import CropFlipBatches, ImageDataset, InMemoryBatches, balanced_sample, cifar100_tasks
from mtlkit.experiments import RunContext, register_experiment
from mtlkit.gates import Gate, last_fraction_change
from mtlkit.metrics import paired_gain
from mtlkit.results import ResultsFile

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
SELECTION = "epoch selection (Independent, seed 0, validation split of train)"
# The seed's conclusions, each as the comparisons that test it: (claim, architecture, reference, quantity, task).
# "gap" is the generalisation gap, train accuracy minus test accuracy: regularising means a smaller gap.
CLAIMS = (
    ("concatenating improves fine", "Reuse Coarse", "Independent", "acc", "fine"),
    ("concatenating improves fine", "Reuse Fine", "Independent", "acc", "fine"),
    ("concatenating improves fine", "Shared Conv & Reuse Coarse", "Independent", "acc", "fine"),
    ("concatenating improves fine", "Shared Conv & Reuse Fine", "Independent", "acc", "fine"),
    ("reusing coarse hurts coarse", "Reuse Coarse", "Independent", "acc", "coarse"),
    ("reusing coarse hurts coarse", "Shared Conv & Reuse Coarse", "Independent", "acc", "coarse"),
    ("shared conv regularises", "Shared Conv", "Independent", "acc", "fine"),
    ("shared conv regularises", "Shared Conv", "Independent", "acc", "coarse"),
    ("shared conv regularises", "Shared Conv", "Independent", "gap", "fine"),
    ("shared conv regularises", "Shared Conv", "Independent", "gap", "coarse"),
)


@dataclass(frozen=True)
class Budget:
    widths: Widths
    n_val: int  # carved, class-balanced, from the training images for the epoch choice
    max_epochs: int  # of the selection run
    min_epochs: int
    seeds: tuple[int, ...]
    lr: float = 1e-3
    batch_size: int = 128
    augment: bool = True
    precision: str = "fp32"
    quick_images: int | None = None  # quick mode: train+val+test drawn from the test split only


REDUCED_WIDTHS = Widths(conv=(48, 96, 96), shared_conv=(54, 108, 108), fc=256)
BUDGETS = {
    "quick": Budget(Widths(conv=(16, 32, 32), shared_conv=(18, 36, 36), fc=64), n_val=200, max_epochs=3,
                    min_epochs=2, seeds=(0,), quick_images=1000),
    # bf16: 0.54–0.58× fp32's step time here, and precision-check finds it within 2 SE of fp32.
    "reduced": Budget(REDUCED_WIDTHS, n_val=5000, max_epochs=30, min_epochs=20, seeds=(0, 1, 2), precision="bf16"),
    "full": Budget(Widths(conv=(64, 128, 128), shared_conv=(72, 144, 144), fc=256), n_val=5000, max_epochs=60,
                   min_epochs=20, seeds=(0, 1, 2)),
}  # fmt: skip


def protocol_tag(b: Budget) -> str:
    """A short name of the budget, so that checkpoints of another protocol are never resumed.

    >>> protocol_tag(BUDGETS["reduced"])
    'c48-96-96-fc256-e30-aug-bf16'
    >>> from dataclasses import replace
    >>> protocol_tag(replace(BUDGETS["reduced"], precision="fp32"))
    'c48-96-96-fc256-e30-aug'
    """
    tag = f"c{'-'.join(map(str, b.widths.conv))}-fc{b.widths.fc}-e{b.max_epochs}" + ("-aug" if b.augment else "")
    return tag + ("" if b.precision == "fp32" else f"-{b.precision}")  # a bf16 run never resumes fp32 results


def _deviations(mode: str, b: Budget) -> list[str]:
    out = [
        "The seed (slides) gives no layer sizes, optimiser, learning rate, batch size or epoch count, only that they "
        f"were equal across models: ours are 3 conv blocks (3x3 conv + ReLU + 2x2 max-pool) with channels "
        f"{list(b.widths.conv)} per task ({list(b.widths.shared_conv)} when shared) and one {b.widths.fc}-unit fc "
        f"layer per task; Adam, lr {b.lr:g}, batch {b.batch_size}, both task losses weighted 1 (our choices).",
        "Reuse heads concatenate the source task's softmax prediction to the fc features and apply one linear layer; "
        "the gradient flows back into the source task (no detach), the seed's 'backprop issue'.",
        f"Epochs (the same for all six): chosen on a validation split of {b.n_val} class-balanced training images by "
        f"one Independent run (seed 0) trained on the rest for {b.max_epochs} epochs: the epoch of best validation "
        f"fine accuracy, at least {b.min_epochs}. Then every model trains on all training images for that many "
        "epochs and is evaluated once on the CIFAR-100 test set; the slides report 'validation' accuracy of "
        "unknown origin.",
        f"Seeds {list(b.seeds)} (init, batch order, augmentation); the seed reports single runs.",
        "The seed's conclusions are judged by paired (same-seed) differences against Independent: 'beyond 2 SE' "
        "means |mean| > 2 std(differences)/sqrt(n). 'Regularises' is measured as a smaller generalisation gap "
        "(train accuracy on the un-augmented training images minus test accuracy), our reading of the slide.",
    ]
    if b.augment:
        out.append("Augmentation (not stated by the seed): 4-pixel zero padding, random 32x32 crop, horizontal flip "
                   "with probability 1/2, drawn per image and epoch (mtlkit.data.CropFlipBatches).")  # fmt: skip
    if b.precision != "fp32":
        out.append(f"Trained under {b.precision} autocast (fp32 weights and optimiser state); see precision-check.")
    if mode == "quick":
        out.append("quick mode: train, validation and test images are disjoint subsets of the CIFAR-100 test split "
                   "(to skip decompressing the training file), tiny towers; smoke test only, numbers are "
                   "meaningless.")  # fmt: skip
    return out


def _data(ctx: RunContext, b: Budget) -> tuple[ImageDataset, ImageDataset, ImageDataset, ImageDataset]:
    """(all training images, selection-train, selection-validation, test)."""
    if b.quick_images is not None:
        pool = cifar100_tasks("test", root=ctx.data_root)
        rows = torch.as_tensor(balanced_sample(pool.labels["fine"].numpy(), b.quick_images, seed=0))
        rows = rows[torch.randperm(len(rows), generator=torch.Generator().manual_seed(0))]
        n_test = b.quick_images // 5
        train, test = pool.subset(rows[n_test:]), pool.subset(rows[:n_test])
    else:
        train, test = cifar100_tasks("train", root=ctx.data_root), cifar100_tasks("test", root=ctx.data_root)
    val_rows = torch.as_tensor(balanced_sample(train.labels["fine"].numpy(), b.n_val, seed=0))
    keep = torch.ones(len(train), dtype=torch.bool)
    keep[val_rows] = False
    return train, train.subset(torch.nonzero(keep).squeeze(1)), train.subset(val_rows), test


def _batches(ds: ImageDataset, b: Budget, seed: int) -> InMemoryBatches:
    if not b.augment:
        return ds.batches(b.batch_size, shuffle=True, seed=seed)
    return CropFlipBatches(ds.images, ds.labels, b.batch_size, seed=seed, mean=ds.mean, std=ds.std, padding=4)


def _fit(ctx: RunContext, b: Budget, arch: str, seed: int, train: ImageDataset, epochs: int, run_dir,
         val: ImageDataset | None = None) -> tuple[Trainer, list[dict[str, float]], float]:  # fmt: skip
    seed_everything(seed)
    model = build(arch, b.widths)
    trainer = Trainer(model, torch.optim.Adam(model.parameters(), lr=b.lr), {t: F.cross_entropy for t in TASKS},
                      device=ctx.device, checkpoint_dir=run_dir, log_dir=run_dir, progress=ctx.progress, seed=seed,
                      precision=b.precision)  # fmt: skip
    start = time.process_time()
    history = trainer.fit(_batches(train, b, seed), epochs,
                          val_data=None if val is None else val.batches(1000, shuffle=False))  # fmt: skip
    return trainer, history, time.process_time() - start


def _select_epochs(ctx: RunContext, b: Budget, select_train: ImageDataset, select_val: ImageDataset) -> dict:
    run_dir = ctx.run_dir(protocol_tag(b), "selection")
    _, history, cpu_s = _fit(ctx, b, "Independent", 0, select_train, b.max_epochs, run_dir, select_val)
    curve = [100 * r["val/fine/acc"] for r in history]
    best = max(range(len(curve)), key=curve.__getitem__) + 1  # first epoch of the best accuracy, 1-based
    return {"val_acc_fine": curve, "best_epoch": best, "epochs": max(best, b.min_epochs), "cpu_s": cpu_s}


def _train_final(ctx: RunContext, b: Budget, arch: str, seed: int, train: ImageDataset, test: ImageDataset,
                 epochs: int) -> dict:  # fmt: skip
    run_dir = ctx.run_dir(protocol_tag(b), arch.replace(" & ", "+").replace(" ", "_"), f"seed{seed}")
    trainer, history, cpu_s = _fit(ctx, b, arch, seed, train, epochs, run_dir)
    m = trainer.evaluate(test.batches(1000, shuffle=False))
    fit = trainer.evaluate(train.batches(1000, shuffle=False))  # un-augmented: for the generalisation gap
    curve = [sum(r[f"train/{t}/loss"] for t in TASKS) for r in history]
    out: dict[str, Any] = {"cpu_s": cpu_s, "epochs": len(history), "train_loss": [round(x, 5) for x in curve],
                           "train_loss_change_last10pct": last_fraction_change(curve)}  # fmt: skip
    for t in TASKS:
        out[f"acc_{t}"], out[f"loss_{t}"], out[f"train_acc_{t}"] = m[f"{t}/acc"], m[f"{t}/loss"], fit[f"{t}/acc"]
        out[f"gap_{t}"] = fit[f"{t}/acc"] - m[f"{t}/acc"]
    return out


def configurations(b: Budget) -> list[str]:
    return [SELECTION, *(f"{arch} seed{seed}" for seed in b.seeds for arch in ARCHITECTURES)]


def write_rows(results: ResultsFile, b: Budget, runs: dict[str, dict], counts: dict[str, int]) -> list[str]:
    """Every row whose runs have finished, from the per-run records; returns the conclusions."""
    if SELECTION in runs:
        s = runs[SELECTION]
        results.add_row(SELECTION, "val_acc_fine_best", round(max(s["val_acc_fine"]), 3), unit="%",
                        comparable="our validation split, not a paper quantity", best_epoch=s["best_epoch"],
                        chosen_epochs=s["epochs"], epochs_after_best=len(s["val_acc_fine"]) - s["best_epoch"],
                        val_acc_fine_curve=[round(v, 2) for v in s["val_acc_fine"]])  # fmt: skip
    for arch in ARCHITECTURES:
        seeds = [s for s in b.seeds if f"{arch} seed{s}" in runs]
        if not seeds:
            continue
        records = [runs[f"{arch} seed{s}"] for s in seeds]
        common = {"n": len(seeds), "parameters": counts[arch], "epochs": records[0]["epochs"],
                  "train_loss_change_last10pct": round(max(r["train_loss_change_last10pct"] for r in records), 5),
                  "cpu_s": [round(r["cpu_s"], 1) for r in records]}  # fmt: skip
        for i, t in enumerate(TASKS):
            for quantity, scale, paper in (("acc", 100, PAPER_ACC[arch][i]), ("loss", 1, PAPER_LOSS[arch][i]),
                                           ("gap", 100, None)):  # fmt: skip
                values = [scale * r[f"{quantity}_{t}"] for r in records]
                metric = {"acc": f"test_acc_{t}", "loss": f"test_loss_{t}", "gap": f"generalisation_gap_{t}"}[quantity]
                results.add_row(arch, metric, round(statistics.fmean(values), 4),
                                ours_std=round(statistics.stdev(values), 4) if len(values) > 1 else None,
                                paper=paper, unit="%" if scale == 100 else None, headline=quantity == "acc",
                                per_seed=[round(v, 4) for v in values], **common)  # fmt: skip
    conclusions = []
    gate = GATES[0].evaluate(results.rows)
    if not gate["passed"]:
        # The gate marks every row uninformative; say so first, so that no sentence below reads as an answer.
        value = "not measured" if gate["value"] is None else f"{gate['value']:.1f} %"
        conclusions.append(f"Not judged: Independent fine test accuracy is {value}, not above 40 %, so the reuse "
                           "comparisons below are uninformative.")  # fmt: skip
    for claim, arch, reference, quantity, t in CLAIMS:
        seeds = [s for s in b.seeds if f"{arch} seed{s}" in runs and f"{reference} seed{s}" in runs]
        if not seeds:
            continue
        g = paired_gain([100 * runs[f"{arch} seed{s}"][f"{quantity}_{t}"] for s in seeds],
                        [100 * runs[f"{reference} seed{s}"][f"{quantity}_{t}"] for s in seeds])  # fmt: skip
        i = TASKS.index(t)
        paper = round(PAPER_ACC[arch][i] - PAPER_ACC[reference][i], 3) if quantity == "acc" else None
        metric = f"gain_test_acc_{t}" if quantity == "acc" else f"change_generalisation_gap_{t}"
        se = g["standard_error"]
        results.add_row(f"{arch} − {reference}", metric, round(g["gain"], 3), n=len(seeds), paper=paper,
                        unit="points", claim=claim, standard_error=None if se is None else round(se, 3),
                        beyond_2_standard_errors=g["beyond_2_standard_errors"])  # fmt: skip
        verdict = (
            "one seed: no spread"
            if se is None
            else (("beyond" if g["beyond_2_standard_errors"] else "within") + f" 2 SE ({2 * se:.2f})")
        )
        what = "test accuracy" if quantity == "acc" else "generalisation gap"
        paper_part = f"; slides {paper:+.2f}" if paper is not None else ""
        conclusions.append(f"'{claim}': {arch} − {reference}, {t} {what} {g['gain']:+.2f} pt "
                           f"(n = {len(seeds)}{paper_part}), {verdict}.")  # fmt: skip
    return conclusions


GATES = [
    # Reuse Fine can only help the coarse task if the fine prediction it reuses is mostly right.
    Gate("fine predictor trains", key="ours", above=40.0, settings="Independent", metric="test_acc_fine", marks="*"),
    # Trained until the validation accuracy stopped improving: the best epoch is not among the last three.
    Gate("validation accuracy peaked", key="epochs_after_best", above=2, settings=SELECTION,
         marks="*"),
]  # fmt: skip


@register_experiment(NAME, seed_file="003_5d21279641f4ebc0.txt",
                     description="CIFAR-100 fine + coarse: independent, shared conv, label reuse (6 archs)",
                     threads=1, gates=GATES)  # fmt: skip
def run(ctx: RunContext) -> None:
    b = BUDGETS[ctx.mode]
    results = ctx.results(deviations=_deviations(ctx.mode, b), seeds=list(b.seeds), precision=b.precision)
    results.start_protocol(protocol_tag(b), derived=("parameter_counts",))
    results.plan(configurations(b))
    counts = {arch: parameter_count(build(arch, b.widths)) for arch in ARCHITECTURES}
    results.set("parameter_counts", counts)
    train, select_train, select_val, test = _data(ctx, b)
    runs: dict[str, dict] = results.data.setdefault("per_run", {})

    def finish(configuration: str, compute: Callable[[], dict]) -> dict:
        if configuration not in runs:
            results.kept(configuration, compute)
            results.set("conclusions", write_rows(results, b, runs, counts))
        return runs[configuration]

    epochs = finish(SELECTION, partial(_select_epochs, ctx, b, select_train, select_val))["epochs"]
    for seed in b.seeds:
        for arch in ARCHITECTURES:
            finish(f"{arch} seed{seed}", partial(_train_final, ctx, b, arch, seed, train, test, epochs))
    results.set("conclusions", write_rows(results, b, runs, counts))


if __name__ == "__main__":
    from mtlkit.cli import main

    sys.exit(main(["reproduce", NAME, *sys.argv[1:]]))
