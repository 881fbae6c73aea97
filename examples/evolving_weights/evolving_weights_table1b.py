"""Seed 001, Table 1b: deeper networks NN2–NN4 with the exp40 schedule vs their baselines.

Belharbi et al., "Deep Multi-Task Learning with evolving weights" (ESANN 2016). Same protocol as
Table 1a (see ``evolving_weights_table1a.py``): one DAE per hidden layer, Alg. 1, and the
difference of test error to the same network trained from the same initial weights on the labeled
images alone.
"""

from __future__ import annotations

import sys

from evolving_weights_choices import UNSTATED, budget_deviations
from evolving_weights_claim import claim
from evolving_weights_paper import LABELED, UNLABELED
from evolving_weights_setup import METRIC, SAME_STREAM, Job, Table1, jobs
from evolving_weights_table1a import BUDGETS, REDUCED_SEEDS, REDUCED_U

from mtlkit.experiments import RunContext, register_experiment
from mtlkit.gates import Gate

NAME = "evolving-weights-table1b"
DEEP = ("NN2", "NN3", "NN4")


def plan(mode: str) -> list[Job]:
    if mode == "quick":
        return list(jobs(("NN2",), (20,), (0, 40), ("exp40",), (0,)))
    if mode == "full":
        return list(jobs(DEEP, LABELED, UNLABELED, ("exp40",), (0,)))
    # The control separates the DAE's effect from the extra supervised updates of Alg. 1's stream.
    return [
        *jobs(DEEP, (100,), REDUCED_U, ("exp40", SAME_STREAM), REDUCED_SEEDS),
        *jobs(DEEP, (1_000,), REDUCED_U, ("exp40", SAME_STREAM), REDUCED_SEEDS),
    ]


def conclusion(table: Table1) -> str:
    """exp40's difference per (network, l, u) with its spread, the control's beside it."""
    texts = []
    for network in DEEP:
        for labeled in (100, 1_000):
            cells = table.cells(network, labeled)
            if not cells:
                continue
            control = {u: d for (name, u), d in cells.items() if name == SAME_STREAM}
            main = {key: d for key, d in cells.items() if key[0] == "exp40"}
            if not main:
                continue
            _, text = claim(main, control, schedules=("exp40",), paired=table.paired_with_control(network, labeled))
            texts.append(f"{network} l={labeled}: {text}")
    return f"{table.ctx.mode} run. " + (" ".join(texts) or "No exp40 cell finished.")


# Each deep network's own baseline must train before its differences mean anything.
GATES = [
    *(
        Gate(
            f"{net} baseline trains at l=100 (test error < 40 %)",
            key="ours",
            below=40.0,
            settings=f"{net} l=100 baseline",
            metric="test_error_pct",
            marks=f"{net} *",
        )
        for net in DEEP
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
        settings="NN? l=* u=* exp40",
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
    description="Evolving weights (ESANN 2016), Table 1b: NN2-NN4 with exp40",
    threads=1,
    flush_denormal=True,
    gates=GATES,
)
def run(ctx: RunContext) -> None:
    budget = BUDGETS[ctx.mode]
    todo = plan(ctx.mode)
    grid = {
        "quick": [
            "Quick smoke run: NN2 only, l = 20, u in {0, 40}, 2 epochs, 500 test images; numbers are meaningless."
        ],
        "reduced": [
            "Grid subset, in run order: l = 100 then l = 1000, u in {0, 1000, 10000, 50000 - l} (paper: also "
            "l = 10000, u = 2000, 5000, 20000, 40000); seeds 0, 1, 2 (n per row says how many finished). "
            "Added control, not in the paper: supervised-only training on the same labeled + unlabeled "
            "stream (λr ≡ 0)."
        ],
        "full": [],
    }[ctx.mode]
    results = ctx.results(
        deviations=[*UNSTATED, *budget_deviations(budget), *grid], seeds=sorted({job.seed for job in todo})
    )
    table = Table1(ctx, budget, results)
    for job in todo:
        table.run(job, headline=job.network == "NN4" and job.unlabeled == 50_000 - job.labeled)
        results.set("conclusions", conclusion(table))


if __name__ == "__main__":
    from mtlkit.cli import main

    sys.exit(main(["reproduce", NAME, *sys.argv[1:]]))
