"""Seed 002, App. B (Table 2): parameter counts of STL, UD-MTL and the DMTRL nets on MNIST.

The factorised counts depend on the ranks that ε = 0.1 picks on *trained* STL weights, so this
experiment trains the ten paper-width LeNets on 1 % of MNIST (as in App. B), factorises them with
LAF, Tucker and TT, and counts every learnable parameter (factors and per-task biases).

App. B's capacity control, UD-MTL-Large (UD-MTL with a wider FC1, sized like the DMTRL nets), is
counted too and trained beside UD-MTL with dmtrl-mnist's protocol at 1 %, so their errors compare.
"""

from __future__ import annotations

import itertools
import math
import sys
from dataclasses import dataclass

import torch
from dmtrl_common import (
    DMTRL_METHODS,
    LABEL,
    SEED_FILE,
    build_seeded,
    dmtrl_from_stl,
    mean_std,
    ranks_of,
    stack_task_weights,
    train,
)
from dmtrl_nets import lenet
from mnist_setup import BUDGETS as MNIST_BUDGETS
from mnist_setup import LOSSES, TASKS, evaluate, fit_stl, test_set
from mnist_setup import Budget as MnistBudget

from mtlkit.data import mnist_one_vs_all
from mtlkit.decomp import relative_error
from mtlkit.experiments import RunContext, register_experiment
from mtlkit.nn import UserDefinedSharing, count_parameters, leaf_layers
from mtlkit.results import ResultsFile

NAME = "dmtrl-params"
PAPER_K = {"stl": 4351, "laf": 1632, "tucker": 1740, "tt": 2187, "ud": 436, "ud_large": 1644}
PAPER_ERROR_1PCT = {"ud": 9.34, "ud_large": 9.39}
UD_SHARED = 3  # the paper's UD-MTL: conv1, conv2 and FC1 shared
UD_LARGE_RATIO = PAPER_K["ud_large"] / PAPER_K["stl"]  # App. B sizes UD-MTL-Large like the DMTRL nets
# How the ten STL nets are initialised before training: the paper does not say, and the ranks that
# ε = 0.1 picks depend on it (independent draws keep the stacked weights close to full rank).
INITS = {"independent": False, "common": True}
# ε = 0.1 as a Frobenius bound on the whole stacked tensor (mtlkit's from_dense), or as the authors'
# code reads it: per flattening, relative to the largest singular value (mtlkit.factorized.SpectralError).
CRITERIA = ("frobenius", "spectral")


@dataclass(frozen=True)
class Budget:
    width: float
    epochs: int
    fraction: float = 0.01


BUDGETS = {"quick": Budget(0.125, 1, 0.002), "reduced": Budget(1.0, 10), "full": Budget(1.0, 100)}


def _deviations(mode: str, b: Budget) -> list[str]:
    out = [
        "Counts are for the network as described in Sec. 4.1 (28×28 input, 'valid' 5×5 and 4×4 convolutions, "
        "2×2 max-pooling, so FC1 has 64·4·4 = 1024 inputs): STL = 10 × 558,977. The paper's 4351K STL figure "
        "(≈ 435K per task) does not follow from that description (it fits an FC1 input of ≈ 784), so the ratios "
        "to STL are the comparable quantity.",
        f"STL nets trained on {b.fraction:.0%} of MNIST (seed 0) with Adam (lr 1e-3, batch 50, {b.epochs} epochs) — "
        "the paper states no optimiser or epochs; ranks come from ε = 0.1 on these weights.",
        "Every parametrised layer (including the 512→1 output layer) is factorised; biases stay per task.",
        f"UD-MTL-Large: the paper gives only its size (≈ {UD_LARGE_RATIO:.2f} × STL) and that hidden neurons were "
        "added; here FC1 is widened until UD-MTL (conv1, conv2, FC1 tied) reaches that ratio of STL. Its error is "
        "measured with dmtrl-mnist's protocol in this mode (same width, data fractions, epochs, test subset), "
        f"beside UD-MTL with N = {UD_SHARED} tied layers (the paper's design; dmtrl-mnist picks N by holdout).",
        "Two STL initialisations are reported, because the paper does not specify it and the ε-ranks depend on "
        "it: ten independent random draws ('independent', as in dmtrl-mnist) and one draw copied to all ten nets "
        "before independent training ('common').",
        "Two readings of ε = 0.1 are reported: mtlkit's Frobenius bound ‖W − Ŵ‖_F ≤ ε‖W‖_F on each stacked tensor "
        "(the paper's words, 'relative error'), and 'spectral ε', the rule of the authors' released code "
        "(scipy.linalg.interpolative.svd per flattening: keep σ_i > ε σ_1, full ε at every Tucker mode / TT step).",
    ]
    if mode != "full":
        out.append("One training run (seed 0); ranks and hence counts vary slightly with the trained weights.")
    if b.width != 1.0:
        out.append(f"Network width ×{b.width:g} (quick mode only).")
    if mode == "quick":
        out.append("quick mode: smoke test only; numbers are meaningless.")
    return out


@register_experiment(
    NAME, seed_file=SEED_FILE, description="DMTRL App. B: parameter counts after the ε=0.1 init", threads=1
)
def run(ctx: RunContext) -> None:
    b = BUDGETS[ctx.mode]
    results = ctx.results(deviations=_deviations(ctx.mode, b), seeds=[0])
    data = mnist_one_vs_all("train", b.fraction, seed=0, root=ctx.data_root)
    setup = MnistBudget(b.width, (b.fraction,), 1, None, None, b.epochs, b.epochs, (UD_SHARED,), 1, False)
    ud_count = count_parameters(UserDefinedSharing(lenet(b.width), UD_SHARED, TASKS))
    ud_large_count = count_parameters(UserDefinedSharing(lenet(b.width, ud_large_hidden(b.width)), UD_SHARED, TASKS))
    ratios = {}
    for (init, common), criterion in itertools.product(INITS.items(), CRITERIA):
        stl = fit_stl(ctx, setup, data, 0, ctx.run_dir("stl", init), common_init=common)
        counts, details = {"stl": count_parameters(stl), "ud": ud_count, "ud_large": ud_large_count}, {}
        for method in DMTRL_METHODS:
            net = dmtrl_from_stl(stl, method, rule=criterion)
            counts[method] = count_parameters(net)
            weighted = [[m for m in leaf_layers(stl.towers[t]) if _is_weighted(m)] for t in TASKS]
            errors = {}
            for k, (name, layer) in enumerate(net.factorized_layers().items()):
                stacked = stack_task_weights([layers[k] for layers in weighted])
                errors[name] = round(relative_error(stacked, layer.task_weights().detach()), 4)
            details[method] = {"ranks": ranks_of(net), "relative_error": errors}
        suffix = f"{init} init" + (", spectral ε" if criterion == "spectral" else "")
        for method in ("stl", *DMTRL_METHODS, "ud", "ud_large"):
            setting = f"{LABEL[method]} ({suffix})"
            extra = {"parameters": counts[method], **details.get(method, {})}
            results.add_row(setting, "parameters_K", round(counts[method] / 1000, 1), paper=PAPER_K[method],
                            headline=method == "laf" and criterion == "spectral", **extra)  # fmt: skip
            results.add_row(setting, "ratio_to_STL", round(counts[method] / counts["stl"], 3),
                            paper=round(PAPER_K[method] / PAPER_K["stl"], 2))  # fmt: skip
        ratios[suffix] = ", ".join(f"{LABEL[m]} {counts[m] / counts['stl']:.2f}" for m in DMTRL_METHODS)
    errors = _ud_large_rows(ctx, results)
    results.set(
        "conclusions",
        "Parameter ratios to STL after the ε = 0.1 init — "
        + "; ".join(f"{suffix}: {text}" for suffix, text in ratios.items())
        + " (paper: LAF 0.38, Tucker 0.40, TT 0.50; UD-MTL 0.10 here and in the paper). Independently initialised "
        "STL nets give (near) full ranks under either reading of ε; the paper's ratios lie between those of a "
        "common initialisation read with the Frobenius bound and with the authors' spectral rule. Capacity control "
        f"at 1 % (dmtrl-mnist protocol): UD-MTL {errors['ud']:.2f} % vs UD-MTL-Large {errors['ud_large']:.2f} % "
        "binary error; the paper found no gain from the extra capacity (9.34 vs 9.39)"
        + (
            ""
            if errors["ud_large"] >= errors["ud"]
            else ", here the wider UD-MTL is better, so part of DMTRL's "
            "margin over UD-MTL in dmtrl-mnist may be capacity"
        )
        + ".",
    )


def ud_large_hidden(width: float, ratio: float = UD_LARGE_RATIO) -> int:
    """FC1 width that makes UD-MTL (``UD_SHARED`` tied layers) ``ratio`` × the STL parameter count.

    The count is affine in the FC1 width, so two evaluations solve for it.

    >>> ud_large_hidden(1.0) > 512
    True
    """
    stl = count_parameters(UserDefinedSharing(lenet(width), 0, TASKS))

    def count(hidden: int) -> int:
        return count_parameters(UserDefinedSharing(lenet(width, hidden), UD_SHARED, TASKS))

    slope = count(2) - count(1)
    return 1 + max(0, math.ceil((ratio * stl - count(1)) / slope))


def _ud_large_rows(ctx: RunContext, results: ResultsFile) -> dict[str, float]:
    """UD-MTL and UD-MTL-Large trained with dmtrl-mnist's protocol on its first (1 %) fraction."""
    b = MNIST_BUDGETS[ctx.mode]
    fraction, test = b.fractions[0], test_set(ctx, b)
    fc1 = {"ud": max(1, round(512 * b.width)), "ud_large": ud_large_hidden(b.width)}
    stl_count = count_parameters(UserDefinedSharing(lenet(b.width), 0, TASKS))
    means = {}
    for key, hidden in fc1.items():
        layers = lenet(b.width, hidden)
        errors, count = [], 0
        for seed in range(b.repeats):
            data = mnist_one_vs_all("train", fraction, seed=seed, root=ctx.data_root)
            model = build_seeded(seed, lambda layers=layers: UserDefinedSharing(layers, UD_SHARED, TASKS))  # type: ignore[misc]
            run_dir = ctx.run_dir("capacity", f"f{fraction:g}", f"seed{seed}", key)
            train(ctx, model, data.batches(b.batch_size, seed=seed), LOSSES, b.epochs_for(len(data)), b.lr, run_dir,
                  seed)  # fmt: skip
            errors.append(evaluate(model, test)["binary_error_pct"])
            count = count_parameters(model)
        mean, std = mean_std(errors)
        results.add_row(f"{LABEL[key]} @ {fraction:.0%} (dmtrl-mnist protocol)", "binary_error_pct", round(mean, 3),
                        ours_std=None if std is None else round(std, 3), paper=PAPER_ERROR_1PCT[key],
                        per_repeat=[round(e, 3) for e in errors], parameters=count, fc1_width=hidden,
                        width=b.width, ratio_to_STL=round(count / stl_count, 3))  # fmt: skip
        means[key] = mean
    return means


def _is_weighted(module: torch.nn.Module) -> bool:
    return isinstance(module, torch.nn.Conv2d | torch.nn.Linear)


if __name__ == "__main__":
    from mtlkit.cli import main

    sys.exit(main(["reproduce", NAME, *sys.argv[1:]]))
