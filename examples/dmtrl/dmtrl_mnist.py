"""Seed 002, Sec. 4.1 / Fig. 2 / App. B: homogeneous MTL on MNIST, ten one-vs-all tasks.

STL (ten independent modified LeNets, hinge loss), the "STL + more epochs" control, UD-MTL (first
N parametrised layers hard-shared, N ∈ {1, 2, 3} chosen by k-fold cross-validation on the training
fraction), UD-MTL-Large (App. B's capacity control) and DMTRL-LAF / Tucker / TT (every layer softly
shared, initialised from the trained STL nets at the ranks of :data:`dmtrl_common.MAIN_RULE`, then
trained end-to-end), over training fractions with repeats.

Metrics: the mean error of the ten binary tasks on all test images (≈ 90 % negatives), the same
on class-balanced test sets (each task's positives and as many negatives), and the multi-class
error of ranking the ten outputs. Every (fraction, repeat, method) is one declared configuration
(``mtlkit status`` shows done/total); a restarted run skips the finished ones.
"""

from __future__ import annotations

import copy
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from dmtrl_common import (
    DMTRL_METHODS,
    FACTORIZATIONS,
    LABEL,
    MAIN_RULE,
    MAIN_RULE_LABEL,
    SEED_FILE,
    build_seeded,
    cv_split,
    mean_std,
    select_num_shared,
    sharing_gates,
)
from dmtrl_figures import figure_mnist
from dmtrl_nets import lenet
from dmtrl_params import UD_SHARED, layer_report, ud_large_hidden
from mnist_setup import (
    BUDGETS,
    LOSSES,
    NAME,
    PAPER_1PCT,
    RUNS_VERSION,
    TASKS,
    Budget,
    evaluate,
    stl_run_dir,
    test_set,
)
from torch import nn

from mtlkit import Trainer
from mtlkit.data import ImageDataset, mnist_one_vs_all
from mtlkit.experiments import RunContext, register_experiment
from mtlkit.gates import Gate, last_fraction_change
from mtlkit.nn import DMTRLNet, UserDefinedSharing, count_parameters
from mtlkit.results import ResultsFile
from mtlkit.sharing import sharing_report

METHODS = ("stl", "stl_ft", "ud", "ud_large", *DMTRL_METHODS)
METRICS = ("binary_error_pct", "balanced_binary_error_pct", "multiclass_error_pct")
NOT_COMPARABLE = {
    "binary_error_pct": "all 10,000 test images per task are ≈ 90 % negatives (a constant 'no' scores ≈ 10 %); the "
    "paper's STL 11.52 % at 1 % is above that floor, so it cannot be on this scale",
    "multiclass_error_pct": "the paper gives this metric only as a plot (Fig. 2)",
}


def _deviations(mode: str, b: Budget) -> list[str]:
    out = [
        "The paper states no optimiser, learning rate, batch size or number of epochs; we use Adam "
        f"(lr {b.lr:g}), batch {b.batch_size}, the sum of the ten hinge losses, for every method. Pixels are "
        "standardised with the dataset's mean and std (ImageDataset's default).",
        f"Ranks: {MAIN_RULE_LABEL} of each layer's dense parameters, applied to the trained STL weights (truncated "
        "HOSVD / TT-SVD / SVD at those ranks), chosen in dmtrl-params as the setting closest to App. B's counts; "
        "the paper's ε = 0.1 on independently trained STL nets keeps task rank T (more parameters than STL).",
        "Every layer of the DMTRL nets, including the 512→1 output layer, is factorised; biases stay per task.",
        "'STL + more epochs (control)' is not in the paper: the trained STL nets trained as many more epochs as "
        "DMTRL gets after its STL initialisation, without sharing, to separate sharing from extra training.",
        f"UD-MTL's N ∈ {{{', '.join(map(str, b.ud_candidates))}}} is chosen by {b.ud_folds}-fold cross-validation "
        "(mean validation binary error) on the first repeat's training draw of "
        + ("every fraction" if b.ud_cv_every_fraction else f"the smallest fraction ({b.fractions[0]:.1%})"),
        f"UD-MTL-Large: UD-MTL with N = {UD_SHARED} tied layers and FC1 widened to {ud_large_hidden(b.width)} units, "
        "so that it has App. B's 0.38 × the STL parameters (the paper only says hidden neurons were added).",
        "Fig. 2's ten fractions are not listed in the paper; full mode uses 1, 2, 5, 10, 20, 30, 50, 70, 90 and "
        "100 %. Training subsets are class-stratified draws (seed = repeat index); App. A / B's '10-fold CV' "
        f"at 1 % is replaced by these {b.repeats} random draws, each tested on the 10k test split.",
        "Binary error is reported twice: on all test images ('binary_error_pct', not comparable, see the rows) "
        "and on class-balanced sets, each task's positives and as many random negatives "
        "('balanced_binary_error_pct'). The paper does not say which; the balanced one is marked comparable "
        "with its 1 % numbers because the paper's STL error (11.52 %) exceeds what a constant 'no' scores on "
        "the unbalanced sets — an inference, not a statement of the paper.",
    ]
    if b.passes:
        out.append(
            f"Each training run gets max(2, min({b.max_epochs}, round({b.passes}/n_train))) epochs (the same image "
            "passes at every fraction); 'training converged' gates every row on the change of its training loss "
            "over the last 10 % of epochs, relative to the loss of the zero predictor (10, one per task), because "
            "the hinge loss reaches 0 on the training set and a change relative to the tail's own value is then "
            "noise (that ratio is kept as train_loss_change_last10pct_of_tail)."
        )
    if mode != "full":
        out.append(
            f"Fractions {', '.join(f'{100 * f:g} %' for f in b.fractions)} with {b.repeats} repeats instead of ten "
            "fractions × 5 repeats."
        )
    if b.width != 1.0:
        out.append(f"Network width ×{b.width:g} (quick mode only).")
    if b.n_test is not None:
        out.append(f"Test error on a fixed class-stratified subset of {b.n_test} of the 10,000 test images.")
    if mode == "quick":
        out.append("quick mode: smoke test only; numbers are meaningless.")
    return out


def configurations(b: Budget) -> list[str]:
    """Every training configuration of the budget, in run order (for ``plan`` / ``record_done``)."""
    out = []
    for fraction in b.fractions:
        out.append(f"f{fraction:g}/ud-cv")
        out += [f"f{fraction:g}/seed{seed}/{method}" for seed in range(b.repeats) for method in METHODS]
    return out


def _fit(ctx: RunContext, b: Budget, model: nn.Module, data: ImageDataset, run_dir: Path, seed: int) -> dict[str, Any]:
    """Adam on the ten hinge losses, resumed from ``run_dir``; the training-loss curve and its convergence."""
    trainer = Trainer(
        model, torch.optim.Adam(model.parameters(), lr=b.lr), dict(LOSSES), checkpoint_dir=run_dir,
        log_dir=run_dir, progress=ctx.progress, seed=seed,
    )  # fmt: skip
    start = time.process_time()
    history = trainer.fit(data.batches(b.batch_size, seed=seed), b.epochs_for(len(data)))
    curve = [sum(r[f"train/{t}/loss"] for t in TASKS) for r in history]
    return {
        "cpu_s": round(time.process_time() - start, 1),
        "epochs": len(curve),
        "train_loss_first_last": [round(curve[0], 5), round(curve[-1], 5)],
        # The hinge loss reaches 0 on the training set, where a change relative to the tail's own value is
        # noise; it is measured against the zero predictor's loss (1 per task) instead.
        "train_loss_change_last10pct": (
            round(last_fraction_change(curve, reference=float(len(TASKS))), 5) if len(curve) > 1 else None
        ),
        "train_loss_change_last10pct_of_tail": round(last_fraction_change(curve), 5) if len(curve) > 1 else None,
    }


def _select_ud(ctx: RunContext, b: Budget, fraction: float, results: ResultsFile) -> dict[str, Any]:
    """UD-MTL's N by k-fold cross-validation on the first repeat's training draw (cached)."""
    data = mnist_one_vs_all("train", fraction, seed=0, root=ctx.data_root)

    def fit_and_score(n_shared: int, fold: int) -> float:
        fit_idx, val_idx = cv_split(len(data), b.ud_folds, fold, seed=0)
        run_dir = ctx.run_dir(RUNS_VERSION, f"f{fraction:g}", "ud-cv", f"N{n_shared}", f"fold{fold}")
        model = build_seeded(0, lambda: UserDefinedSharing(lenet(b.width), n_shared, TASKS))
        _fit(ctx, b, model, data.subset(fit_idx), run_dir, 0)
        return evaluate(model, data.subset(val_idx))["binary_error_pct"]

    def compute() -> dict[str, Any]:
        start = time.process_time()
        best, scores = select_num_shared(b.ud_candidates, fit_and_score, b.ud_folds)
        return {"best": best, "val_binary_error_pct": {str(n): s for n, s in scores.items()},
                "cpu_s": round(time.process_time() - start, 1)}  # fmt: skip

    return results.kept(f"f{fraction:g}/ud-cv", compute)


def _run_repeat(
    ctx: RunContext, b: Budget, fraction: float, seed: int, n_shared: int, test: ImageDataset, results: ResultsFile
) -> dict[str, dict[str, Any]]:
    """All methods on one training draw; finished configurations are read back from the results file, never
    retrained (the STL nets are trained, or restored, only when a configuration still needs them)."""
    data = mnist_one_vs_all("train", fraction, seed=seed, root=ctx.data_root)
    where = (f"f{fraction:g}", f"seed{seed}")  # under RUNS_VERSION
    out: dict[str, dict[str, Any]] = {}
    stl_box: list[tuple[UserDefinedSharing, dict[str, Any]]] = []

    def stl() -> UserDefinedSharing:  # trained (or restored) only when a configuration needs it
        if not stl_box:
            model = build_seeded(seed, lambda: UserDefinedSharing(lenet(b.width), 0, TASKS))
            stl_box.append((model, _fit(ctx, b, model, data, stl_run_dir(ctx, fraction, seed), seed)))  # type: ignore[arg-type]
        return stl_box[0][0]

    def configuration(method: str, build: Callable[[], nn.Module], before: Callable[[nn.Module], dict]) -> None:
        run_dir = stl_run_dir(ctx, fraction, seed) if method == "stl" else ctx.run_dir(RUNS_VERSION, *where, method)

        def compute() -> dict[str, Any]:
            model = build()
            info = before(model)
            fitted = stl_box[0][1] if method == "stl" else _fit(ctx, b, model, data, run_dir, seed)
            if isinstance(model, DMTRLNet):
                info["rho"] = sharing_report(model)
            return {**info, **fitted, **evaluate(model, test), "parameters": count_parameters(model),
                    "n_train": len(data)}  # fmt: skip

        out[method] = results.kept(f"{where[0]}/{where[1]}/{method}", compute)

    configuration("stl", stl, lambda m: {})
    configuration("stl_ft", lambda: copy.deepcopy(stl()), lambda m: {})
    configuration("ud", lambda: build_seeded(seed, lambda: UserDefinedSharing(lenet(b.width), n_shared, TASKS)),
                  lambda m: {"num_shared": n_shared})  # fmt: skip
    hidden = ud_large_hidden(b.width)
    configuration("ud_large", lambda: build_seeded(seed, lambda: UserDefinedSharing(lenet(b.width, hidden), UD_SHARED,
                  TASKS)), lambda m: {"num_shared": UD_SHARED, "fc1_width": hidden})  # fmt: skip

    def before(net: nn.Module) -> dict[str, Any]:
        assert isinstance(net, DMTRLNet)
        return {**layer_report(net), **{f"init_{k}": v for k, v in evaluate(net, test).items()}}

    for method in DMTRL_METHODS:
        factorization = FACTORIZATIONS[method]
        configuration(method, lambda f=factorization: DMTRLNet.from_single_task(dict(stl().towers), f, MAIN_RULE),
                      before)  # fmt: skip
    stl_parameters = out["stl"]["parameters"]
    for record in out.values():
        record["parameters_vs_stl"] = round(record["parameters"] / stl_parameters, 3)
    return out


GATES = [
    Gate("STL trains", key="ours", below=50.0, settings="STL @*", metric="multiclass_error_pct"),
    *sharing_gates("binary_error_pct"),
    Gate("training converged", key="train_loss_change_last10pct", below=0.02, metric="binary_error_pct", per_row=True),
]


@register_experiment(
    NAME, seed_file=SEED_FILE, description="DMTRL Sec. 4.1: MNIST one-vs-all, STL/UD-MTL/DMTRL", threads=1, gates=GATES
)
def run(ctx: RunContext) -> None:
    b = BUDGETS[ctx.mode]
    results = ctx.results(deviations=_deviations(ctx.mode, b), seeds=list(range(b.repeats)))
    results.start_protocol(RUNS_VERSION)
    results.plan(configurations(b))
    test = test_set(ctx, b)
    choice = None
    table: dict = {}
    for fraction in b.fractions:
        if choice is None or b.ud_cv_every_fraction:
            choice = _select_ud(ctx, b, fraction, results)
        per_seed = [_run_repeat(ctx, b, fraction, seed, choice["best"], test, results) for seed in range(b.repeats)]
        for method in METHODS:
            _add_rows(results, table, fraction, method, [r[method] for r in per_seed], choice, b)
    results.set("figures", [ctx.save_figure(figure_mnist(results.rows, ctx.mode), f"dmtrl_mnist_{ctx.mode}")])
    results.set("conclusions", _conclusions(b, table))


def _add_rows(
    results: ResultsFile, table: dict, fraction: float, method: str, runs: list[dict], choice: dict, b: Budget
) -> None:
    table[fraction, method] = {}
    for metric in METRICS:
        mean, std = mean_std([r[metric] for r in runs])
        table[fraction, method][metric] = (mean, std)
        paper = PAPER_1PCT.get(method) if metric != "multiclass_error_pct" and fraction == 0.01 else None
        comparable: bool | str = NOT_COMPARABLE.get(metric, True) if paper is not None else True
        changes = [r["train_loss_change_last10pct"] for r in runs]
        extra: dict[str, Any] = {
            "per_repeat": [round(r[metric], 3) for r in runs],
            "epochs": runs[0]["epochs"],
            "n_train": runs[0]["n_train"],
            "parameters": runs[0]["parameters"],
            "parameters_vs_stl": runs[0]["parameters_vs_stl"],
            "cpu_s": [r["cpu_s"] for r in runs],
            "train_loss_change_last10pct": None if None in changes else max(changes),
        }
        if method in ("ud", "ud_large"):
            extra["num_shared"] = runs[0]["num_shared"]
        if method == "ud":
            extra["cv_val_binary_error_pct"] = choice["val_binary_error_pct"]
        if method in DMTRL_METHODS:
            extra.update(ranks=runs[0]["ranks"], task_ranks=runs[0]["task_ranks"],
                         conv_task_rank_over_T=max(r["conv_task_rank_over_T"] for r in runs),
                         rho_repeat0=runs[0]["rho"],
                         init_error_pct=[round(r[f"init_{metric}"], 3) for r in runs])  # fmt: skip
        headline = fraction == b.fractions[0] and metric == "balanced_binary_error_pct" and method in ("stl", "tt")
        results.add_row(f"{LABEL[method]} @ {fraction:.1%}", metric, round(mean, 3),
                        ours_std=None if std is None else round(std, 3), paper=paper, comparable=comparable,
                        headline=headline, **extra)  # fmt: skip


def _conclusions(b: Budget, table: dict) -> list[str]:
    first = b.fractions[0]
    metric = "balanced_binary_error_pct"

    def err(fraction: float, method: str) -> float:
        return float(table[fraction, method][metric][0])

    summary = ", ".join(f"{LABEL[m]} {err(first, m):.2f}" for m in METHODS)
    beats_stl = sum(min(err(f, m) for m in DMTRL_METHODS) < err(f, "stl") for f in b.fractions)
    beats_ctrl = sum(min(err(f, m) for m in DMTRL_METHODS) < err(f, "stl_ft") for f in b.fractions)
    beats_ud = sum(min(err(f, m) for m in DMTRL_METHODS) < err(f, "ud") for f in b.fractions)
    return [
        f"At {100 * first:g} % training data the mean binary error on class-balanced test sets (%) is {summary} "
        "(paper at 1 %: STL 11.52, UD-MTL 9.34, UD-MTL-Large 9.39, LAF 8.25, Tucker 9.24, TT 7.31).",
        f"The best DMTRL variant beats STL at {beats_stl}, the 'STL + more epochs' control at {beats_ctrl} and UD-MTL "
        f"at {beats_ud} of {len(b.fractions)} fractions (means; see ours_std for the spread).",
    ]


if __name__ == "__main__":
    from mtlkit.cli import main

    sys.exit(main(["reproduce", NAME, *sys.argv[1:]]))
