"""Seed 002, App. B (Table 2): parameter counts of STL, UD-MTL and the DMTRL nets on MNIST.

The factorised counts depend on the ranks that ε = 0.1 picks on *trained* STL weights, so this
experiment trains the ten paper-width LeNets on 1 % of MNIST (as in App. B), factorises them with
LAF, Tucker and TT, and counts every learnable parameter (factors and per-task biases).
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass

import torch
from dmtrl_common import DMTRL_METHODS, LABEL, SEED_FILE, dmtrl_from_stl, ranks_of, stack_task_weights
from dmtrl_nets import lenet
from mnist_setup import TASKS, fit_stl
from mnist_setup import Budget as MnistBudget

from mtlkit.data import mnist_one_vs_all
from mtlkit.decomp import relative_error
from mtlkit.experiments import RunContext, register_experiment
from mtlkit.nn import UserDefinedSharing, count_parameters, leaf_layers

NAME = "dmtrl-params"
PAPER_K = {"stl": 4351, "laf": 1632, "tucker": 1740, "tt": 2187, "ud": 436}
UD_SHARED = 3  # the paper's UD-MTL: conv1, conv2 and FC1 shared
# How the ten STL nets are initialised before training: the paper does not say, and the ranks that
# ε = 0.1 picks depend on it (independent draws keep the stacked weights close to full rank).
INITS = {"independent": False, "common": True}
# ε = 0.1 as a Frobenius bound on the whole stacked tensor (mtlkit's from_dense), or as the authors'
# code reads it: per flattening, relative to the largest singular value (decomp.spectral_eps_ranks).
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
        "UD-MTL-Large (App. B's wider UD-MTL) is not reproduced.",
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


@register_experiment(NAME, seed_file=SEED_FILE, description="DMTRL App. B: parameter counts after the ε=0.1 init",
                     threads=1)
def run(ctx: RunContext) -> None:
    b = BUDGETS[ctx.mode]
    results = ctx.results(deviations=_deviations(ctx.mode, b), seeds=[0])
    data = mnist_one_vs_all("train", b.fraction, seed=0, root=ctx.data_root)
    setup = MnistBudget(b.width, (b.fraction,), 1, None, None, b.epochs, b.epochs, (UD_SHARED,), 1, False)
    ud_count = count_parameters(UserDefinedSharing(lenet(b.width), UD_SHARED, TASKS))
    ratios = {}
    for (init, common), criterion in itertools.product(INITS.items(), CRITERIA):
        stl = fit_stl(ctx, setup, data, 0, ctx.run_dir("stl", init), common_init=common)
        counts, details = {"stl": count_parameters(stl), "ud": ud_count}, {}
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
        for method in ("stl", *DMTRL_METHODS, "ud"):
            setting = f"{LABEL[method]} ({suffix})"
            extra = {"parameters": counts[method], **details.get(method, {})}
            results.add_row(setting, "parameters_K", round(counts[method] / 1000, 1), paper=PAPER_K[method],
                            headline=method == "laf" and criterion == "spectral", **extra)  # fmt: skip
            results.add_row(setting, "ratio_to_STL", round(counts[method] / counts["stl"], 3),
                            paper=round(PAPER_K[method] / PAPER_K["stl"], 2))  # fmt: skip
        ratios[suffix] = ", ".join(f"{LABEL[m]} {counts[m] / counts['stl']:.2f}" for m in DMTRL_METHODS)
    results.set(
        "conclusions",
        "Parameter ratios to STL after the ε = 0.1 init — "
        + "; ".join(f"{suffix}: {text}" for suffix, text in ratios.items())
        + " (paper: LAF 0.38, Tucker 0.40, TT 0.50; UD-MTL 0.10 here and in the paper). Independently initialised "
        "STL nets give (near) full ranks under either reading of ε; the paper's ratios lie between those of a "
        "common initialisation read with the Frobenius bound and with the authors' spectral rule.",
    )


def _is_weighted(module: torch.nn.Module) -> bool:
    return isinstance(module, torch.nn.Conv2d | torch.nn.Linear)


if __name__ == "__main__":
    from mtlkit.cli import main

    sys.exit(main(["reproduce", NAME, *sys.argv[1:]]))
