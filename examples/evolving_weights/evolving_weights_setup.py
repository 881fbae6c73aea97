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
import json
import math
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from evolving_weights_claim import Cell
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
from mtlkit.gates import last_fraction_change, relative_fall
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
#: Per-example DAE cost summed over the units (Vincent et al. 2010; the Theano dA tutorial), not
#: averaged: with the per-unit mean, the gradient-flow time that exp40/lin100 give the DAEs (0.4 at
#: u = 0 up to 34 at u = 49 900, the paper's) moved their cost by about 2 % at u <= 1000 (pilot).
DAE_SUM_OVER_UNITS = True
#: Glorot-uniform bound gain for every linear layer (trunk, softmax layer, DAE decoders): the
#: Theano-era default for sigmoid units (Glorot & Bengio 2010; the Theano
#: tutorials take 4x the tanh bound for sigmoids). PyTorch's default U(±1/sqrt(fan_in)) leaves
#: NN2–NN4's sigmoid layers with gradients too small to train 500 one-batch epochs (Table 1b baselines
#: ended at 38–89 % error with it).
INIT_GAIN = 4.0
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
            f"the last {self.decay_epochs} epochs, batch {self.batch_size}, Glorot-uniform init gain {INIT_GAIN:g}, "
            f"DAE cost {'summed' if DAE_SUM_OVER_UNITS else 'averaged'} over units"
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
            self.network,
            f"l{self.labeled}",
            f"u{self.unlabeled}",
            f"{self.schedule}-{variant}",
            f"seed{self.seed}",
        )


def unlabeled_sizes(labeled: int, sizes: tuple[int | None, ...]) -> tuple[int, ...]:
    """The grid's ``u`` values for ``labeled`` (``None`` is ``50 000 - l``), without repeats."""
    out: list[int] = []
    for u in sizes:
        value = POOL - labeled if u is None else u
        if value not in out and labeled + value <= POOL:
            out.append(value)
    return tuple(out)


def build_model(widths: tuple[int, ...], gain: float = INIT_GAIN) -> WithReconstruction:
    """NN_K (sigmoid MLP + linear softmax layer) with one masking-noise DAE per hidden layer.

    Every weight matrix is drawn from :math:`U(\\pm g\\sqrt{6/(n_\\text{in} + n_\\text{out})})` with
    ``g = gain`` and every bias is 0 (``gain=0`` keeps PyTorch's default initialisation).
    """
    trunk = MLP(28 * 28, list(widths), activation=ACTIVATION)
    model = MultiTaskModel(trunk, {TASK: LinearHead(widths[-1], 10)})
    daes = DenoisingAutoencoders.for_trunk(
        trunk, noise=MaskingNoise(MASKING), cost=DAE_COST, sum_over_units=DAE_SUM_OVER_UNITS
    )
    full = WithReconstruction(model, daes)
    if gain:
        for layer in full.modules():
            if isinstance(layer, torch.nn.Linear):
                torch.nn.init.xavier_uniform_(layer.weight, gain=gain)
                torch.nn.init.zeros_(layer.bias)
    return full


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
    def _finished(self, setting: str, metric: str, seed: int) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """The row of ``setting`` (if it was made by this protocol) and its per-seed records."""
        row = self.results.get(setting, metric)
        if row is None or row.get("protocol") != self.budget.describe():
            return None, {}
        return row, dict(row["per_seed"])

    def baseline_error(self, network: str, labeled: int, seed: int) -> float:
        """Test error (%) of ``network`` trained on the labeled images alone (one row per (net, l))."""
        setting = f"{network} l={labeled} baseline"
        _, per_seed = self._finished(setting, "test_error_pct", seed)
        if str(seed) in per_seed:
            return float(per_seed[str(seed)]["error_pct"])
        split = self.data(labeled, 0, seed)
        full = build_model(NETWORKS[network])
        full.load_state_dict(self.initial_state(network, seed))
        model = full.model  # the DAE-less network: the baseline never sees J_r
        run_dir = self.ctx.run_dir(network, f"l{labeled}", "baseline", f"seed{seed}")
        trainer = self._trainer(model, {TASK: F.cross_entropy}, run_dir, seed)
        history = trainer.fit(
            split.labeled.batches(self.budget.batch_size, seed=seed, normalize=False), self.budget.epochs
        )
        error = 100.0 * (1.0 - trainer.evaluate(self.test_batches(split))[f"{TASK}/acc"])
        per_seed[str(seed)] = {"error_pct": error, **convergence(history)}
        errors = [v["error_pct"] for v in per_seed.values()]
        paper = paper_baseline(network, labeled)
        self.results.add_row(
            setting,
            "test_error_pct",
            statistics.fmean(errors),
            ours_std=_std(errors),
            n=len(errors),
            paper=paper,
            per_seed=per_seed,
            network=network,
            labeled=labeled,
            protocol=self.budget.describe(),
            **({} if paper is None else {"baseline_vs_paper_ratio": statistics.fmean(errors) / paper}),
            **_worst(per_seed.values()),
        )
        return error

    # ---------------------------------------------------------------- one cell
    def run(self, job: Job, headline: bool = False) -> None:
        _, per_seed = self._finished(job.setting, METRIC, job.seed)
        if str(job.seed) in per_seed:
            self._backfill_initial(job, per_seed, headline)
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
            model,
            {TASK: F.cross_entropy, "reconstruction": None},
            self.ctx.run_dir(*job.folder),
            job.seed,
            weights=schedule,
            phases=phases,
        )
        # Before training: the epoch-1 mean already holds (l + u)/600 updates, a large fall at big u.
        initial = None if job.schedule == SAME_STREAM else self.initial_reconstruction(job)
        history = trainer.fit(train, self.budget.epochs)
        error = 100.0 * (1.0 - trainer.evaluate(self.test_batches(split))[f"{TASK}/acc"])
        per_seed[str(job.seed)] = {
            "error_pct": error,
            "baseline_error_pct": baseline,
            **convergence(history),
            # The control never trains its DAEs (λr ≡ 0, so their phase never runs): no DAE gate applies to it.
            **({} if initial is None else reconstruction_fall(history, initial)),
        }
        self._add_cell_row(job, per_seed, headline)

    def initial_reconstruction(self, job: Job) -> float:
        """Mean :math:`\\mathcal J_r` of the untrained model over one pass of the job's stream (no update).

        Its own batches object and a forked RNG, so the run's shuffling and noise are untouched.
        """
        model = build_model(NETWORKS[job.network])
        model.load_state_dict(self.initial_state(job.network, job.seed))
        model.train()
        data = self.data(job.labeled, job.unlabeled, job.seed).combined()
        total, count = 0.0, 0
        with torch.random.fork_rng(), torch.no_grad():
            torch.manual_seed(job.seed)
            for x, _ in data.batches(self.budget.batch_size, seed=job.seed, normalize=False):
                total += float(model(x, tasks=["reconstruction"])["reconstruction"])
                count += 1
        return total / count

    def _backfill_initial(self, job: Job, per_seed: dict[str, Any], headline: bool) -> None:
        """Give a cell finished before the initial DAE cost was measured its true fall (from its log)."""
        record = per_seed[str(job.seed)]
        if job.schedule == SAME_STREAM or "reconstruction_loss_initial" in record:
            return
        log = self.ctx.run_dir(*job.folder) / "metrics.jsonl"
        history = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        record.update(reconstruction_fall(history, self.initial_reconstruction(job)))
        self._add_cell_row(job, per_seed, headline)

    def _add_cell_row(self, job: Job, per_seed: dict[str, Any], headline: bool) -> None:
        diffs = [v["error_pct"] - v["baseline_error_pct"] for v in per_seed.values()]
        cell = Cell.of(diffs)
        paper = None if job.weighted_sum else paper_difference(job.network, job.labeled, job.unlabeled, job.schedule)
        self.results.add_row(
            job.setting,
            METRIC,
            cell.mean,
            ours_std=cell.std,
            n=cell.n,
            paper=paper,
            error_pct=statistics.fmean(v["error_pct"] for v in per_seed.values()),
            baseline_error_pct=statistics.fmean(v["baseline_error_pct"] for v in per_seed.values()),
            diff_se=cell.se,
            beyond_2se=cell.beyond_2se,
            per_seed=per_seed,
            n_seeds=cell.n,
            network=job.network,
            labeled=job.labeled,
            unlabeled=job.unlabeled,
            schedule=job.schedule,
            variant="weighted sum" if job.weighted_sum else "Alg. 1",
            protocol=self.budget.describe(),
            **_worst(per_seed.values()),
            **({"headline": True} if headline else {}),
        )
        self.write_csv()

    def cells(self, network: str, labeled: int, variant: str = "Alg. 1") -> dict[tuple[str, int], list[float]]:
        """(schedule, u) -> per-seed differences of the finished cells of one (network, l)."""
        return {
            (r["schedule"], r["unlabeled"]): [v["error_pct"] - v["baseline_error_pct"] for v in r["per_seed"].values()]
            for r in self.results.rows
            if r["metric"] == METRIC
            and r["network"] == network
            and r["labeled"] == labeled
            and r["variant"] == variant
            and r.get("protocol") == self.budget.describe()
        }

    def paired_with_control(self, network: str, labeled: int) -> dict[tuple[str, int], list[float]]:
        """(schedule, u) -> per-seed ``error(schedule) - error(control)`` over the seeds both ran."""
        rows = {
            (r["schedule"], r["unlabeled"]): r["per_seed"]
            for r in self.results.rows
            if r["metric"] == METRIC
            and r["network"] == network
            and r["labeled"] == labeled
            and r["variant"] == "Alg. 1"
            and r.get("protocol") == self.budget.describe()
        }
        out = {}
        for (name, u), runs in rows.items():
            control = rows.get((SAME_STREAM, u))
            if name != SAME_STREAM and control:
                seeds = sorted(set(runs) & set(control))
                out[name, u] = [runs[s]["error_pct"] - control[s]["error_pct"] for s in seeds]
        return out

    def write_csv(self) -> None:
        """``results/<experiment>.csv``: the rows as a table for the docs (paper beside ours)."""
        path = self.results.path.with_suffix(".csv")
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(
                ["network", "l", "u", "schedule", "ours Δ", "± (seeds)", "paper Δ", "ours error", "baseline"]
            )
            for r in sorted((r for r in self.results.rows if r["metric"] == METRIC), key=_order):
                writer.writerow(
                    [
                        r["network"],
                        r["labeled"],
                        r["unlabeled"],
                        r["setting"].split(" ", 3)[3],
                        f"{r['ours']:+.2f}",
                        f"{'–' if r['ours_std'] is None else format(r['ours_std'], '.2f')} ({r['n_seeds']})",
                        "–" if r["paper"] is None else f"{r['paper']:+.2f}",
                        f"{r['error_pct']:.2f}",
                        f"{r['baseline_error_pct']:.2f}",
                    ]
                )


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


def convergence(history: list[dict[str, float]]) -> dict[str, float]:
    """How much the supervised training loss still moved over the last 10 % of epochs.

    ``train_loss_change_last10pct`` is :func:`mtlkit.gates.last_fraction_change` (relative to the
    loss where the last 10 % start); ``..._of_fall`` is the same change relative to the loss's whole
    fall since the first epoch that computed it, :math:`|L_{0.9E} - L_E| / (L_1 - L_E)`: a cross-entropy that a
    network drives towards 0 on 100 memorised images keeps a large relative change however flat its
    curve is, so the gate reads the second (see the results' deviations).
    """
    # Epochs in which λs was 0 throughout (stairs pre-training) never computed the supervised loss.
    losses = [record[f"train/{TASK}/loss"] for record in history if f"train/{TASK}/loss" in record]
    if len(losses) < 2:
        return {}
    back = min(len(losses) - 1, max(1, math.ceil(0.1 * len(losses))))
    fall = losses[0] - losses[-1]
    return {
        "train_loss_change_last10pct": last_fraction_change(losses),
        # A loss that never fell has not converged to anything: 1.0 fails the gate, and JSON has no inf.
        "train_loss_change_last10pct_of_fall": abs(losses[-1 - back] - losses[-1]) / fall if fall > 0 else 1.0,
    }


def reconstruction_fall(history: list[dict[str, float]], initial: float) -> dict[str, float]:
    """The DAEs' reconstruction loss: its fall from ``initial`` (before training) to its lowest epoch, and to the
    last epoch that computed it (once a schedule's λr is exactly 0 the reconstruction phase is skipped).

    Under exp40 or stairs the DAEs stop learning early and the shared encoder then moves for the
    supervised task alone, so the last epoch's value can rise again; the gate reads the fall to the
    lowest epoch (the DAEs did learn), the final fall is kept beside it.
    """
    losses = [record["train/reconstruction/loss"] for record in history if "train/reconstruction/loss" in record]
    if not losses:
        return {}
    return {
        "reconstruction_loss_initial": initial,
        "reconstruction_loss_min": min(losses),
        "reconstruction_loss_fall": relative_fall(initial, min(losses)),
        "reconstruction_loss_fall_final": relative_fall(initial, losses[-1]),
    }


def _worst(records: Any) -> dict[str, float]:
    """The gate fields of a row: the worst value over its seeds (largest change, smallest fall)."""
    records = list(records)
    out: dict[str, float] = {}
    for key, pick in (
        ("train_loss_change_last10pct", max),
        ("train_loss_change_last10pct_of_fall", max),
        ("reconstruction_loss_fall", min),
        ("reconstruction_loss_fall_final", min),
    ):
        values = [r[key] for r in records if key in r]
        if values:
            out[key] = pick(values)
    return out


def _std(values: Any) -> float | None:
    values = list(values)
    return statistics.stdev(values) if len(values) > 1 else None


def _order(row: dict[str, Any]) -> tuple:
    schedules = (*PAPER_SCHEDULE_NAMES, SAME_STREAM)
    name = row["schedule"]
    return (
        row["network"],
        row["labeled"],
        row["variant"],
        schedules.index(name) if name in schedules else 9,
        row["unlabeled"],
    )
