"""Seed 001, Table 1a: NN1 (784-50-10) with four weight schedules vs its supervised-only baseline.

Belharbi et al., "Deep Multi-Task Learning with evolving weights" (ESANN 2016). Each cell is
``error(schedule) - error(baseline)`` in points of % on the 10 000 MNIST test images (negative =
better), after training with Alg. 1: per shuffled minibatch, one SGD step on λr·Jr (DAE
reconstruction, all rows) then one on λs·Js (cross-entropy, labeled rows). Also run (reduced mode):
two controls — supervised-only training on the same labeled + unlabeled stream (λr ≡ 0), which gives
the supervised task as many updates as Alg. 1 does, and the weighted-sum variant of exp40.
"""

from __future__ import annotations

import sys

from evolving_weights_choices import UNSTATED, budget_deviations
from evolving_weights_claim import claim
from evolving_weights_figure import plot_differences
from evolving_weights_paper import LABELED, UNLABELED, paper_difference
from evolving_weights_setup import METRIC, SAME_STREAM, Budget, Job, Table1, jobs, plot_paper_schedules

from mtlkit.experiments import RunContext, register_experiment
from mtlkit.gates import Gate
from mtlkit.schedules import PAPER_SCHEDULE_NAMES

NAME = "evolving-weights-table1a"
BUDGETS = {
    "quick": Budget(epochs=2, lr=0.5, n_test=500),
    "reduced": Budget(epochs=500, lr=0.1),
    "full": Budget(epochs=5000, lr=0.01),
}
REDUCED_U = (0, 1_000, 10_000, None)  # None = 50 000 - l: the cells of the claim, run first
OTHER_U = (2_000, 5_000, 20_000, 40_000)
MAIN = ("exp40", "lin100")  # the schedules of the paper's main claim, run first
REDUCED_SEEDS = (0, 1, 2)


def plan(mode: str) -> list[Job]:
    """The jobs of a mode, most important first (a run cut short keeps the main claim)."""
    if mode == "quick":
        return [
            *jobs(("NN1",), (20,), (0, 40), MAIN, (0,)),
            *jobs(("NN1",), (20,), (40,), (SAME_STREAM,), (0,)),
            *jobs(("NN1",), (20,), (40,), ("exp40",), (0,), weighted_sum=True),
        ]
    if mode == "full":
        return list(jobs(("NN1",), LABELED, UNLABELED, PAPER_SCHEDULE_NAMES, (0,)))
    claim = (*MAIN, SAME_STREAM)
    others = ("stairs100", "lin")
    return [
        *jobs(("NN1",), (100,), REDUCED_U, claim, REDUCED_SEEDS),
        *jobs(("NN1",), (100,), REDUCED_U, others, REDUCED_SEEDS),
        *jobs(("NN1",), (100,), OTHER_U, claim, REDUCED_SEEDS),
        *jobs(("NN1",), (100,), OTHER_U, others, REDUCED_SEEDS),
        *jobs(("NN1",), (1_000,), REDUCED_U, claim, REDUCED_SEEDS),
        *jobs(("NN1",), (100,), REDUCED_U, ("exp40",), (0,), weighted_sum=True),
    ]


def conclusion(table: Table1) -> str:
    """The paper's main claim, cell by cell with spreads, from the l = 100 rows (and l = 1000 if run)."""
    texts = []
    for labeled in (100, 1_000):
        cells = table.cells("NN1", labeled)
        if not cells:
            continue
        control = {u: d for (name, u), d in cells.items() if name == SAME_STREAM}
        main = {key: d for key, d in cells.items() if key[0] in MAIN}
        _, text = claim(main, control, schedules=MAIN, paired=table.paired_with_control("NN1", labeled))
        texts.append(f"l={labeled}, {table.ctx.mode} run: {text}")
    return " ".join(texts) or "No cell finished."


def plot(table: Table1) -> list[str]:
    """The difference-vs-u figure of every l with finished cells; returns the paths (relative to results/)."""
    out = []
    for labeled in (100, 1_000):
        cells = table.cells("NN1", labeled)
        if cells:
            path = table.ctx.figures_dir / f"evolving_weights_differences_l{labeled}.png"
            paper = {key: paper_difference("NN1", labeled, key[1], key[0]) for key in cells}
            plot_differences(path, cells, paper, f"Table 1a, NN1, l = {labeled} ({table.ctx.mode})")
            out.append(f"figures/{path.name}")
    return out


DAE_SCHEDULES = "|".join(f"NN? l=* u=* {name}*" for name in PAPER_SCHEDULE_NAMES)
GATES = [
    Gate(
        "NN1 baseline trains at l=100 (test error < 40 %)",
        key="ours",
        below=40.0,
        settings="NN1 l=100 baseline",
        metric="test_error_pct",
        marks="*",
    ),
    Gate(
        "baseline within 1.5x the paper's",
        key="baseline_vs_paper_ratio",
        below=1.5,
        settings="NN? l=* baseline",
        metric="test_error_pct",
        marks="*",
    ),
    Gate(
        "DAE reconstruction loss falls >= 30 %",
        key="reconstruction_loss_fall",
        above=0.3,
        per_row=True,
        settings=DAE_SCHEDULES,
        metric=METRIC,
    ),
    Gate(
        "training converged (last 10 % of epochs move the loss < 2 % of its fall)",
        key="train_loss_change_last10pct_of_fall",
        below=0.02,
        per_row=True,
    ),
]


# exp40's λr(t) = e^{-t/σ} and saturated sigmoids/softmaxes give float32 denormals, which make
# CPU arithmetic 10-100x slower; flushing them to zero changes no value above 1e-38.
# One thread: the CPU machine is shared, one core per training process.
@register_experiment(
    NAME,
    seed_file="001_9bc79a8a3513fb16.txt",
    description="Evolving weights (ESANN 2016), Table 1a: NN1, four schedules, l x u grid",
    threads=1,
    flush_denormal=True,
    gates=GATES,
)
def run(ctx: RunContext) -> None:
    budget = BUDGETS[ctx.mode]
    todo = plan(ctx.mode)
    results = ctx.results(
        deviations=[*UNSTATED, *budget_deviations(budget), *grid_deviations(ctx.mode)],
        seeds=sorted({job.seed for job in todo}),
    )
    figure = ctx.figures_dir / "evolving_weights_schedules.png"
    plot_paper_schedules(figure, budget.epochs)
    table = Table1(ctx, budget, results)
    for job in todo:
        table.run(
            job,
            headline=job.labeled == 100
            and job.schedule in MAIN
            and job.unlabeled in (0, 49_900)
            and not job.weighted_sum,
        )
        results.set("figures", [f"figures/{figure.name}", *plot(table)])
        results.set("conclusions", conclusion(table))


def grid_deviations(mode: str) -> list[str]:
    if mode == "full":
        return []
    return [
        "Grid, in run order: l = 100 with u in {0, 1000, 10000, 49900} (exp40, lin100, supervised-only control; then "
        "stairs100, lin), then u in {2000, 5000, 20000, 40000}, then l = 1000 with exp40, lin100 and the control "
        "(paper: also l = 10000), then exp40 as a weighted sum; seeds 0, 1, 2 for every cell (n per row says how "
        "many finished; cells not in the file have not run yet). Added control, not in the paper: supervised-only "
        "training on the same labeled + unlabeled stream (λr ≡ 0), i.e. the same supervised updates without the DAE."
        if mode == "reduced"
        else "Quick smoke run: l = 20, u in {0, 40}, 2 epochs, 500 test images; numbers are meaningless.",
    ]


if __name__ == "__main__":
    from mtlkit.cli import main

    sys.exit(main(["reproduce", NAME, *sys.argv[1:]]))
