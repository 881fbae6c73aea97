"""Shared protocol of the Table 1a / 1b reproductions of Belharbi et al. (2016).

One *job* is one cell of Table 1: a network NN_K trained with a weight schedule on ``l`` labeled and
``u`` unlabeled MNIST images (Alg. 1 of the paper), compared with the baseline — the same network,
from the very same initial weights, trained on the ``l`` labeled images with the supervised
criterion only. The row of a cell holds ``error(schedule) - error(baseline)`` in points of %,
averaged over the seeds run so far (per-seed values in ``per_seed``, so a restart skips them).
"""

from __future__ import annotations

import copy
import csv
import math
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from evolving_weights_paper import paper_baseline, paper_difference
from torch.nn import functional as F

from mtlkit import (
    MLP,
    DenoisingAutoencoders,
    LinearHead,
    MaskingNoise,
    MultiTaskModel,
    Phase,
    Trainer,
    WithReconstruction,
    schedule_from_name,
)
from mtlkit.data import SemiSupervised, mnist_semi_supervised
from mtlkit.experiments import RunContext
from mtlkit.lr_schedules import tail_linear_decay
from mtlkit.results import ResultsFile
from mtlkit.schedules import PAPER_EPOCHS, PAPER_SCHEDULE_NAMES

NETWORKS = {"NN1": (50,), "NN2": (60, 50), "NN3": (70, 60, 50), "NN4": (80, 70, 60, 50)}
TASK = "label"  # the supervised task's name in mtlkit.data.mnist_semi_supervised
POOL = 50_000  # l + u are drawn from the first 50 000 training images
#: Choices the paper leaves open (Crino's defaults of the time, see docs/schedules.rst).
ACTIVATION = "sigmoid"
MASKING = 0.25
DAE_COST = "bce"
#: Supervised-only training on the Alg. 1 data stream (labeled + unlabeled batches): a control
#: that separates the DAE's effect from the extra supervised steps that unlabeled rows bring.
SAME_STREAM = "supervised-only"
METRIC = "test_error_diff_pct"


@dataclass(frozen=True)
class Budget:
    """How long and on what a mode trains.

    ``lr`` is the constant rate; it decreases linearly over the last ``epochs // 10`` epochs (the
    paper: the last 500 of 5000). Schedules count optimiser iterations with ``t1``/``σ`` scaled by
    ``iterations / (5000 epochs)``, so the fraction of the run they span is the paper's.
    """

    epochs: int
    lr: float
    n_test: int | None = None  # None: the 10 000 test images
    batch_size: int = 600

    @property
    def decay_epochs(self) -> int:
        return self.epochs // 10

    def describe(self) -> str:
        return (
            f"{self.epochs} epochs (paper: {PAPER_EPOCHS}), lr {self.lr:g} (paper: 0.01) decreased linearly over "
            f"the last {self.decay_epochs} epochs, batch {self.batch_size}"
        )


@dataclass(frozen=True)
class Job:
    """One cell of Table 1, for one seed."""

    network: str
    labeled: int
    unlabeled: int
    schedule: str  # a paper name, or SAME_STREAM
    seed: int
    weighted_sum: bool = False  # one step on λs·Js + λr·Jr instead of Alg. 1's two steps

    @property
    def setting(self) -> str:
        variant = " (weighted sum)" if self.weighted_sum else ""
        return f"{self.network} l={self.labeled} u={self.unlabeled} {self.schedule}{variant}"

    @property
    def folder(self) -> tuple[str, ...]:
        variant = "wsum" if self.weighted_sum else "alg1"
        return (
            self.network, f"l{self.labeled}", f"u{self.unlabeled}", f"{self.schedule}-{variant}", f"seed{self.seed}"
        )


def unlabeled_sizes(labeled: int, sizes: tuple[int | None, ...]) -> tuple[int, ...]:
    """The grid's ``u`` values for ``labeled`` (``None`` is ``50 000 - l``), without repeats."""
    out: list[int] = []
    for u in sizes:
        value = POOL - labeled if u is None else u
        if value not in out and labeled + value <= POOL:
            out.append(value)
    return tuple(out)


def build_model(widths: tuple[int, ...]) -> WithReconstruction:
    """NN_K (sigmoid MLP + linear softmax layer) with one masking-noise DAE per hidden layer."""
    trunk = MLP(28 * 28, list(widths), activation=ACTIVATION)
    model = MultiTaskModel(trunk, {TASK: LinearHead(widths[-1], 10)})
    daes = DenoisingAutoencoders.for_trunk(trunk, noise=MaskingNoise(MASKING), cost=DAE_COST)
    return WithReconstruction(model, daes)


class Table1:
    """Runs jobs of one mode and keeps their rows (and a CSV view of them) up to date."""

    def __init__(self, ctx: RunContext, budget: Budget, results: ResultsFile) -> None:
        self.ctx = ctx
        self.budget = budget
        self.results = results
        self._initial: dict[tuple[str, int], dict[str, torch.Tensor]] = {}
        self._data: tuple[tuple[int, int, int], SemiSupervised] | None = None

    # ---------------------------------------------------------------- pieces
    def initial_state(self, network: str, seed: int) -> dict[str, torch.Tensor]:
        """The initial weights of ``network`` for ``seed``, shared by the baseline and all schedules."""
        key = (network, seed)
        if key not in self._initial:
            torch.manual_seed(seed)
            self._initial[key] = copy.deepcopy(build_model(NETWORKS[network]).state_dict())
        return self._initial[key]

    def data(self, labeled: int, unlabeled: int, seed: int) -> SemiSupervised:
        key = (labeled, unlabeled, seed)
        if self._data is None or self._data[0] != key:
            self._data = (key, mnist_semi_supervised(labeled, unlabeled, seed=seed, root=self.ctx.data_root))
        return self._data[1]

    def test_batches(self, split: SemiSupervised) -> Any:
        test = split.test
        if self.budget.n_test is not None:
            test = test.subset(range(self.budget.n_test))
        return test.batches(2_000, shuffle=False, normalize=False)  # pixels in [0, 1] for the BCE

    def _trainer(self, model: torch.nn.Module, losses: dict, run_dir: Path, seed: int, **options: Any) -> Trainer:
        optimizer = torch.optim.SGD(model.parameters(), lr=self.budget.lr)
        decay = tail_linear_decay(self.budget.epochs, self.budget.decay_epochs)
        return Trainer(
            model,
            optimizer,
            losses,
            lr_scheduler=torch.optim.lr_scheduler.LambdaLR(optimizer, decay),
            checkpoint_dir=run_dir,
            log_dir=run_dir,
            progress=self.ctx.progress,
            seed=seed,
            **options,
        )

    # ---------------------------------------------------------------- baseline
    def baseline_error(self, network: str, labeled: int, seed: int) -> float:
        """Test error (%) of ``network`` trained on the labeled images alone (one row per (net, l))."""
        setting = f"{network} l={labeled} baseline"
        row = self.results.get(setting, "test_error_pct")
        if row is not None and str(seed) in row["per_seed"]:
            return row["per_seed"][str(seed)]
        split = self.data(labeled, 0, seed)
        full = build_model(NETWORKS[network])
        full.load_state_dict(self.initial_state(network, seed))
        model = full.model  # the DAE-less network: the baseline never sees J_r
        run_dir = self.ctx.run_dir(network, f"l{labeled}", "baseline", f"seed{seed}")
        trainer = self._trainer(model, {TASK: F.cross_entropy}, run_dir, seed)
        trainer.fit(split.labeled.batches(self.budget.batch_size, seed=seed, normalize=False), self.budget.epochs)
        error = 100.0 * (1.0 - trainer.evaluate(self.test_batches(split))[f"{TASK}/acc"])
        per_seed = {**(row["per_seed"] if row else {}), str(seed): error}
        self.results.add_row(
            setting, "test_error_pct", statistics.fmean(per_seed.values()), ours_std=_std(per_seed.values()),
            paper=paper_baseline(network, labeled), per_seed=per_seed, network=network, labeled=labeled,
        )
        return error

    # ---------------------------------------------------------------- one cell
    def run(self, job: Job, headline: bool = False) -> None:
        row = self.results.get(job.setting, METRIC)
        if row is not None and str(job.seed) in row["per_seed"]:
            return
        baseline = self.baseline_error(job.network, job.labeled, job.seed)
        split = self.data(job.labeled, job.unlabeled, job.seed)
        model = build_model(NETWORKS[job.network])
        model.load_state_dict(self.initial_state(job.network, job.seed))
        train = split.combined().batches(self.budget.batch_size, seed=job.seed, normalize=False)
        iterations = self.budget.epochs * math.ceil((job.labeled + job.unlabeled) / self.budget.batch_size)
        if job.schedule == SAME_STREAM:
            schedule = schedule_from_name("stairs0", supervised=TASK, unit="iteration")  # λr ≡ 0
        else:
            schedule = schedule_from_name(
                job.schedule, total=iterations, time_scale=iterations / PAPER_EPOCHS, supervised=TASK, unit="iteration"
            )
        phases = None if job.weighted_sum else [Phase(("reconstruction",)), Phase((TASK,))]
        trainer = self._trainer(
            model, {TASK: F.cross_entropy, "reconstruction": None}, self.ctx.run_dir(*job.folder), job.seed,
            weights=schedule, phases=phases,
        )
        trainer.fit(train, self.budget.epochs)
        error = 100.0 * (1.0 - trainer.evaluate(self.test_batches(split))[f"{TASK}/acc"])
        this_seed = {"error_pct": error, "baseline_error_pct": baseline}
        per_seed = {**(row["per_seed"] if row else {}), str(job.seed): this_seed}
        diffs = [v["error_pct"] - v["baseline_error_pct"] for v in per_seed.values()]
        self.results.add_row(
            job.setting, METRIC, statistics.fmean(diffs), ours_std=_std(diffs),
            paper=None if job.weighted_sum else paper_difference(job.network, job.labeled, job.unlabeled, job.schedule),
            error_pct=statistics.fmean(v["error_pct"] for v in per_seed.values()),
            baseline_error_pct=statistics.fmean(v["baseline_error_pct"] for v in per_seed.values()),
            per_seed=per_seed, n_seeds=len(per_seed), network=job.network, labeled=job.labeled,
            unlabeled=job.unlabeled, schedule=job.schedule, variant="weighted sum" if job.weighted_sum else "Alg. 1",
            **({"headline": True} if headline else {}),
        )
        self.write_csv()

    def write_csv(self) -> None:
        """``results/<experiment>.csv``: the rows as a table for the docs (paper beside ours)."""
        path = self.results.path.with_suffix(".csv")
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(
                ["network", "l", "u", "schedule", "ours Δ", "± (seeds)", "paper Δ", "ours error", "baseline"]
            )
            for r in sorted((r for r in self.results.rows if r["metric"] == METRIC), key=_order):
                writer.writerow([
                    r["network"], r["labeled"], r["unlabeled"], r["setting"].split(" ", 3)[3],
                    f"{r['ours']:+.2f}",
                    f"{'–' if r['ours_std'] is None else format(r['ours_std'], '.2f')} ({r['n_seeds']})",
                    "–" if r["paper"] is None else f"{r['paper']:+.2f}",
                    f"{r['error_pct']:.2f}", f"{r['baseline_error_pct']:.2f}",
                ])


def jobs(
    networks: tuple[str, ...],
    labeled: tuple[int, ...],
    unlabeled: tuple[int | None, ...],
    schedules: tuple[str, ...],
    seeds: tuple[int, ...],
    weighted_sum: bool = False,
) -> Iterator[Job]:
    """Every cell of a grid, seeds outermost (so a cut-short run has whole tables for early seeds)."""
    for seed in seeds:
        for network in networks:
            for l in labeled:
                for u in unlabeled_sizes(l, unlabeled):
                    for schedule in schedules:
                        yield Job(network, l, u, schedule, seed, weighted_sum)


def plot_paper_schedules(path: Path, epochs: int, batch_size: int = 600) -> None:
    """Fig. 1 of the paper (λr over 5000 epochs) beside the same schedules as our runs of ``epochs``
    epochs count them: in iterations of a run on l + u = 50 000 images."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mtlkit.schedules_plot import plot_schedules

    iterations = epochs * math.ceil(POOL / batch_size)
    panels = (
        ("paper: epochs of a 5000-epoch run", PAPER_EPOCHS, "epoch"),
        (f"ours: iterations of a {epochs}-epoch run, l + u = {POOL}", iterations, "iteration"),
    )
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, (title, total, unit) in zip(axes, panels, strict=True):
        shown = {
            name: schedule_from_name(name, total=total, time_scale=total / PAPER_EPOCHS, unit=unit)
            for name in PAPER_SCHEDULE_NAMES
        }
        plot_schedules(shown, total, ax, tasks=["reconstruction"])
        ax.set_ylabel(r"$\lambda_r(t) = 1 - \lambda_s(t)$")
        ax.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _std(values: Any) -> float | None:
    values = list(values)
    return statistics.stdev(values) if len(values) > 1 else None


def _order(row: dict[str, Any]) -> tuple:
    schedules = (*PAPER_SCHEDULE_NAMES, SAME_STREAM)
    name = row["schedule"]
    return (row["network"], row["labeled"], row["variant"], schedules.index(name) if name in schedules else 9,
            row["unlabeled"])
