"""Deviations shared by both tables: what the paper leaves open, and what a budget changes."""

from __future__ import annotations

from evolving_weights_setup import ACTIVATION, DAE_COST, MASKING, Budget

#: Choices the paper does not state (they hold in every mode, `full` included).
UNSTATED = [
    f"Not stated in the paper, our choice: {ACTIVATION} hidden units, linear softmax output with cross-entropy, "
    f"binomial masking noise p={MASKING} on every DAE input, DAE cost = mean per-unit {DAE_COST.upper()} "
    "(Crino's CrossEntropy criterion), untied decoders, DAE k sees the detached clean x_{k-1}, plain SGD "
    "(no momentum, no weight decay), PyTorch default initialisation, lr decreased linearly towards 0.",
    "stairs100 pre-trains the DAEs with the same learning rate as everything else (paper: a DAE learning rate "
    "tuned on a validation set).",
    "The paper trains one baseline per (network, l); we train one per seed, from the same initial weights "
    "as that seed's schedule runs, on that seed's class-balanced labeled draw (mnist_semi_supervised(l, u, seed)).",
]


def budget_deviations(budget: Budget) -> list[str]:
    """What a shortened run changes, stated with its numbers."""
    if budget.epochs == 5000:
        return []
    scale = budget.epochs / 5000
    return [
        f"Reduced budget: {budget.describe()}.",
        f"Learning rate raised from 0.01 to {budget.lr:g} = 0.01 x 5000/{budget.epochs}, so that lr x number of "
        "updates (the gradient-flow time) equals the paper's.",
        f"Schedule shapes kept: t counts optimiser iterations and t1, sigma are scaled by iterations/5000 epochs, "
        f"i.e. stairs100 and lin100 end after {100 * scale:g} epochs and exp40 has sigma = {40 * scale:g} epochs.",
    ]
