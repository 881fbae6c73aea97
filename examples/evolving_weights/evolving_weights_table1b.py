"""Seed 001, Table 1b: deeper networks NN2–NN4 with the exp40 schedule vs their baselines.

Belharbi et al., "Deep Multi-Task Learning with evolving weights" (ESANN 2016). Same protocol as
Table 1a (see ``evolving_weights_table1a.py``): one DAE per hidden layer, Alg. 1, and the
difference of test error to the same network trained from the same initial weights on the labeled
images alone.
"""

from __future__ import annotations

import sys

from evolving_weights_choices import UNSTATED, budget_deviations
from evolving_weights_paper import LABELED, UNLABELED
from evolving_weights_setup import METRIC, SAME_STREAM, Job, Table1, jobs
from evolving_weights_table1a import BUDGETS, REDUCED_U

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
    return [*jobs(DEEP, (1_000,), REDUCED_U, ("exp40",), (0,)), *jobs(DEEP, (1_000,), REDUCED_U, (SAME_STREAM,), (0,))]


def conclusion(table: Table1) -> str:
    rows = [r for r in table.results.rows if r["metric"] == METRIC and r["schedule"] == "exp40"]
    with_u = [r for r in rows if r["unlabeled"] >= 1_000]
    if not with_u:
        return "No cell with unlabeled data finished."
    better = sum(r["ours"] < 0 for r in with_u)
    mean = sum(r["ours"] for r in with_u) / len(with_u)
    paper = [r["paper"] for r in with_u if r["paper"] is not None]
    paper_mean = sum(paper) / len(paper) if paper else float("nan")
    text = (
        f"exp40 on NN2-NN4 with u >= 1000 unlabeled images: better than the baseline in {better} of {len(with_u)} "
        f"cells, mean difference {mean:+.2f} points (paper, same cells: {paper_mean:+.2f}); {table.ctx.mode} run."
    )
    controls = {(r["network"], r["unlabeled"]): r["ours"] for r in table.results.rows
                if r["metric"] == METRIC and r["schedule"] == SAME_STREAM}
    paired = [(r["ours"], controls[r["network"], r["unlabeled"]]) for r in with_u
              if (r["network"], r["unlabeled"]) in controls]
    if paired:
        gap = sum(ours - control for ours, control in paired) / len(paired)
        text += (
            f" Supervised-only training on the same stream, same {len(paired)} cells: mean difference "
            f"{sum(c for _, c in paired) / len(paired):+.2f}, so exp40's own effect is {gap:+.2f} points."
        )
    return text


# exp40's λr(t) = e^{-t/σ} and saturated sigmoids/softmaxes give float32 denormals, which make
# CPU arithmetic 10-100x slower; flushing them to zero changes no value above 1e-38.
# One thread: the CPU machine is shared, one core per training process.
GATES = [
    Gate("baselines train", key="ours", below=40.0, settings="NN? l=* baseline", metric="test_error_pct"),
    Gate("DAE reconstruction falls", key="reconstruction_fall", above=0.3,
         settings="*u=* exp*|*u=* lin*|*u=* stairs*"),
    Gate("training converged", key="train_loss_change_last10pct", below=0.02),
]


@register_experiment(NAME, seed_file="001_9bc79a8a3513fb16.txt",
                     description="Evolving weights (ESANN 2016), Table 1b: NN2-NN4 with exp40",
                     threads=1, flush_denormal=True, gates=GATES)
def run(ctx: RunContext) -> None:
    budget = BUDGETS[ctx.mode]
    todo = plan(ctx.mode)
    grid = {
        "quick": ["Quick smoke run: NN2 only, l = 20, u in {0, 40}, 1 epoch, 500 test images; "
                  "numbers are meaningless."],
        "reduced": ["Grid subset: l = 1000 only, u in {0, 1000, 10000, 49000} (paper: also l = 100 and 10000, "
                    "u = 2000, 5000, 20000, 40000); one seed (0). Added control: supervised-only training on "
                    "the same labeled + unlabeled stream (not in the paper)."],
        "full": [],
    }[ctx.mode]
    results = ctx.results(deviations=[*UNSTATED, *budget_deviations(budget), *grid], seeds=[0])
    table = Table1(ctx, budget, results)
    for job in todo:
        table.run(job, headline=job.network == "NN4" and job.unlabeled == 49_000)
        results.set("conclusions", conclusion(table))


if __name__ == "__main__":
    from mtlkit.cli import main

    sys.exit(main(["reproduce", NAME, *sys.argv[1:]]))
