"""Seed 002, Sec. 4.1 / Fig. 2: homogeneous MTL on MNIST, ten one-vs-all tasks.

STL (ten independent modified LeNets, hinge loss) vs UD-MTL (first N parametrised layers
hard-shared, N chosen by cross-validation) vs DMTRL-LAF / Tucker / TT (every layer softly shared,
initialised from the trained STL nets with ε = 0.1, then trained end-to-end), over training
fractions with repeats. Two metrics: the mean error of the ten binary tasks, and the multi-class
error of ranking the ten one-vs-all outputs.
"""

from __future__ import annotations

import sys

from dmtrl_common import (
    ALL_METHODS,
    DMTRL_METHODS,
    LABEL,
    METHODS,
    SEED_FILE,
    build_seeded,
    cached,
    compare_methods,
    cv_split,
    mean_std,
    select_num_shared,
    train,
)
from dmtrl_nets import lenet
from mnist_setup import BUDGETS, LOSSES, NAME, PAPER_1PCT, TASKS, Budget, evaluate, test_set

from mtlkit.data import mnist_one_vs_all
from mtlkit.experiments import RunContext, register_experiment
from mtlkit.gates import Gate
from mtlkit.nn import UserDefinedSharing


def _deviations(mode: str, b: Budget) -> list[str]:
    out = [
        "The paper states no optimiser, learning rate, batch size or number of epochs; we use Adam "
        f"(lr {b.lr:g}), batch {b.batch_size}, the sum of the ten hinge losses, for STL, UD-MTL and the DMTRL "
        "end-to-end phase alike. Pixels are standardised with the dataset's mean and std (ImageDataset's default).",
        "The ten training fractions of Fig. 2 are not listed in the paper; full mode uses 1, 2, 5, 10, 20, 30, 50, "
        "70, 90 and 100 %. Training subsets are class-stratified draws (seed = repeat index).",
        "Every layer of the DMTRL nets, including the 512→1 output layer, is factorised (the paper: 'all four "
        "parametrised layers are softly shared'); ε = 0.1 on the trained STL weights picks all ranks, read as "
        "mtlkit's Frobenius bound ‖W − Ŵ‖_F ≤ ε‖W‖_F. At "
        + (", ".join(f"{f:.0%}" for f in b.spectral_fractions) or "no fraction")
        + " the three DMTRL variants are also run with the ranks of the authors' code ('spectral ε', "
        "mtlkit.factorized.SpectralError), which are much lower (see dmtrl-params).",
        "'STL + more epochs (control)' is not in the paper: the trained STL nets trained as many more epochs as "
        "DMTRL gets after its STL initialisation, without sharing, to separate sharing from extra training.",
        "UD-MTL's N is chosen among N ∈ {"
        + ", ".join(map(str, b.ud_candidates))
        + "} by "
        + (f"{b.ud_folds}-fold cross-validation" if b.ud_folds > 1 else "one 80/20 holdout split")
        + (
            " at every training fraction"
            if b.ud_cv_every_fraction
            else f" on the first repeat of the smallest fraction ({b.fractions[0]:.0%}), and used for all fractions"
        ),
    ]
    if mode != "full":
        out += [
            f"Network width ×{b.width:g}: conv {round(32 * b.width)}@5×5, conv {round(64 * b.width)}@4×4, "
            f"FC {round(512 * b.width)} (paper: 32, 64, 512), to fit a 1-thread CPU budget.",
            f"Fractions {', '.join(f'{f:.1%}' for f in b.fractions)} with {b.repeats} repeat(s) instead of ten "
            "fractions × 5 repeats.",
            f"Each training run gets max(2, min({b.max_epochs}, round({b.passes}/n_train))) epochs"
            if b.passes
            else f"{b.epochs} epoch(s) per training run.",
        ]
    if b.n_test is not None:
        out.append(f"Test error on a fixed class-stratified subset of {b.n_test} of the 10,000 test images.")
    if mode == "quick":
        out.append("quick mode: smoke test only; numbers are meaningless.")
    return out


def _select_ud(ctx: RunContext, b: Budget, fraction: float) -> dict:
    """Choose UD-MTL's N on the first repeat's training set (cached)."""
    data = mnist_one_vs_all("train", fraction, seed=0, root=ctx.data_root)
    epochs = b.epochs_for(len(data))

    def fit_and_score(n_shared: int, fold: int) -> float:
        fit_idx, val_idx = cv_split(len(data), b.ud_folds, fold, seed=0)
        run_dir = ctx.run_dir(f"f{fraction:g}", "ud-cv", f"N{n_shared}", f"fold{fold}")
        model = build_seeded(0, lambda: UserDefinedSharing(lenet(b.width), n_shared, TASKS))
        train(ctx, model, data.subset(fit_idx).batches(b.batch_size, seed=0), LOSSES, epochs, b.lr, run_dir, 0)
        return evaluate(model, data.subset(val_idx))["binary_error_pct"]

    def compute() -> dict:
        best, scores = select_num_shared(b.ud_candidates, fit_and_score, b.ud_folds)
        return {"best": best, "val_binary_error_pct": {str(n): s for n, s in scores.items()}}

    return cached(ctx.run_dir(f"f{fraction:g}", "ud-cv") / "choice.json", compute)


def _run_repeat(ctx: RunContext, b: Budget, fraction: float, seed: int, n_shared: int, test) -> dict[str, dict]:
    """All five methods on one training draw (the STL checkpoints are the ones App. A reuses)."""
    data = mnist_one_vs_all("train", fraction, seed=seed, root=ctx.data_root)
    epochs = b.epochs_for(len(data))
    results = compare_methods(
        ctx, (f"f{fraction:g}", f"seed{seed}"), lambda: lenet(b.width), TASKS, data.batches(b.batch_size, seed=seed),
        LOSSES, epochs, b.lr, seed, n_shared, lambda model: evaluate(model, test), fraction in b.spectral_fractions,
    )  # fmt: skip
    return {method: {**r, "n_train": len(data)} for method, r in results.items()}


def _plot(ctx: RunContext, b: Budget, table: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, metric, title in zip(
        axes,
        ("binary_error_pct", "multiclass_error_pct"),
        ("mean binary (one-vs-all) error", "multi-class error (ranking)"),
        strict=True,
    ):
        for method in ALL_METHODS:
            xs = [f for f in b.fractions if (f, method) in table]
            if not xs:
                continue
            means = [table[f, method][metric][0] for f in xs]
            stds = [table[f, method][metric][1] or 0.0 for f in xs]
            ax.errorbar([100 * x for x in xs], means, yerr=stds, marker="o", capsize=3, label=LABEL[method])
        ax.set_xscale("log")
        ax.set_xticks([100 * f for f in b.fractions], [f"{100 * f:g}" for f in b.fractions])
        ax.minorticks_off()
        ax.set_xlabel("training data (% of 60k)")
        ax.set_ylabel("error (%)")
        ax.set_title(title)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"DMTRL MNIST one-vs-all ({ctx.mode} mode)")
    fig.tight_layout()
    return ctx.save_figure(fig, f"dmtrl_mnist_{ctx.mode}")


GATES = [
    Gate("STL trains", key="ours", below=50.0, settings="STL @*", metric="multiclass_error_pct"),
    Gate(
        "DMTRL shares",
        key="parameters_vs_stl",
        below=0.6,
        settings="DMTRL-*",
        metric="binary_error_pct",
        marks="DMTRL-*",
    ),
    Gate("training converged", key="train_loss_change_last10pct", below=0.02, metric="binary_error_pct", marks="*"),
]


@register_experiment(
    NAME, seed_file=SEED_FILE, description="DMTRL Sec. 4.1: MNIST one-vs-all, STL/UD-MTL/DMTRL", threads=1, gates=GATES
)
def run(ctx: RunContext) -> None:
    b = BUDGETS[ctx.mode]
    results = ctx.results(deviations=_deviations(ctx.mode, b), seeds=list(range(b.repeats)))
    test = test_set(ctx, b)
    choice = None
    table: dict = {}
    for fraction in b.fractions:
        if choice is None or b.ud_cv_every_fraction:
            choice = _select_ud(ctx, b, fraction)
        per_seed = [_run_repeat(ctx, b, fraction, seed, choice["best"], test) for seed in range(b.repeats)]
        for method in [m for m in ALL_METHODS if m in per_seed[0]]:
            runs = [r[method] for r in per_seed]
            table[fraction, method] = {}
            for metric in ("binary_error_pct", "balanced_error_pct", "multiclass_error_pct"):
                mean, std = mean_std([r[metric] for r in runs])
                table[fraction, method][metric] = (mean, std)
                paper = PAPER_1PCT.get(method) if metric == "binary_error_pct" and fraction == 0.01 else None
                extra = {"per_repeat": [round(r[metric], 3) for r in runs], "epochs": runs[0]["epochs"],
                         "n_train": runs[0]["n_train"], "parameters": runs[0]["parameters"],
                         "cpu_s": [r["cpu_s"] for r in runs]}  # fmt: skip
                if method == "ud":
                    extra["num_shared"] = choice["best"]
                    extra["cv_val_binary_error_pct"] = choice["val_binary_error_pct"]
                if method not in ("stl", "stl_ft", "ud"):
                    extra["ranks_repeat0"] = runs[0]["ranks"]
                    extra["rho_repeat0"] = runs[0]["rho"]
                    extra["init_error_pct"] = [round(r.get(f"init_{metric}", float("nan")), 3) for r in runs]
                # STL, the extra-epochs control and one DMTRL variant: the comparison the conclusions rest on.
                headline = (
                    fraction == b.fractions[0] and metric == "binary_error_pct" and method in ("stl", "stl_ft", "laf")
                )
                results.add_row(f"{LABEL[method]} @ {fraction:.1%}", metric, round(mean, 3),
                                ours_std=None if std is None else round(std, 3), paper=paper, headline=headline,
                                **extra)  # fmt: skip
    results.set("figures", [_plot(ctx, b, table)])
    first = b.fractions[0]
    summary = ", ".join(f"{LABEL[m]} {table[first, m]['binary_error_pct'][0]:.2f}" for m in METHODS)

    def err(fraction: float, method: str) -> float:
        return table[fraction, method]["binary_error_pct"][0]

    beats_stl = sum(min(err(f, m) for m in DMTRL_METHODS) < err(f, "stl") for f in b.fractions)
    beats_ctrl = sum(min(err(f, m) for m in DMTRL_METHODS) < err(f, "stl_ft") for f in b.fractions)
    results.set(
        "conclusions",
        [
            f"At {first:.1%} training data the mean binary error (%) is {summary} (paper at 1 %: STL 11.52, "
            "UD-MTL 9.34, LAF 8.25, Tucker 9.24, TT 7.31; our one-vs-all test sets are 90 % negatives, so absolute "
            "numbers are not comparable).",
            f"The best DMTRL variant beats STL at {beats_stl} of {len(b.fractions)} fractions, but beats the "
            f"'STL + more epochs' control at only {beats_ctrl} of {len(b.fractions)}: in this budget the gain over "
            "STL is mostly the extra training DMTRL gets after its STL initialisation.",
        ],
    )


if __name__ == "__main__":
    from mtlkit.cli import main

    sys.exit(main(["reproduce", NAME, *sys.argv[1:]]))
