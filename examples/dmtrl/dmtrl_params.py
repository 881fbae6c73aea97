"""Seed 002, App. B (Table 2): parameter counts of STL, UD-MTL and the DMTRL nets on MNIST, per rank rule.

The DMTRL counts depend on the ranks, and so on how they are chosen. App. B reports LAF, Tucker
and TT at 0.38, 0.40 and 0.50 × the STL parameters; ε = 0.1 read as a Frobenius bound on ten
*independently* trained STL nets keeps task rank ``T`` and gives *more* parameters than STL. This
experiment counts every learnable parameter (factors and per-task biases) of the paper-width
DMTRL LeNets under each candidate rule (:data:`RANK_SETTINGS`), reports the per-layer ranks, and
names the rule whose ratios are closest to App. B's: the one the MNIST runs (``dmtrl-mnist``) use
is :data:`dmtrl_common.MAIN_RULE`.

Rules read on trained weights (ε) use STL nets trained with dmtrl-mnist's protocol at 1 % (seed 0;
the independent ones are dmtrl-mnist's own); the budget rules depend on the shapes only.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

from dmtrl_common import (
    DMTRL_METHODS,
    FACTORIZATIONS,
    LABEL,
    MAIN_RULE,
    MAIN_RULE_LABEL,
    SEED_FILE,
    ranks_of,
    task_rank_report,
)
from dmtrl_nets import lenet
from mnist_setup import BUDGETS as MNIST_BUDGETS
from mnist_setup import TASKS, fit_stl, stl_run_dir

from mtlkit.data import mnist_one_vs_all
from mtlkit.experiments import RunContext, register_experiment
from mtlkit.factorized import ParameterBudget, RankRule, RelativeError, SpectralError
from mtlkit.gates import Gate
from mtlkit.nn import DMTRLNet, UserDefinedSharing, count_parameters

NAME = "dmtrl-params"
PAPER_K = {"stl": 4351, "laf": 1632, "tucker": 1740, "tt": 2187, "ud": 436, "ud_large": 1644}
PAPER_RATIO = {m: PAPER_K[m] / PAPER_K["stl"] for m in PAPER_K}
UD_SHARED = 3  # the paper's UD-MTL: conv1, conv2 and FC1 shared
UD_LARGE_RATIO = PAPER_RATIO["ud_large"]  # App. B sizes UD-MTL-Large like the DMTRL nets
SHARES_RATIO = 0.6  # the bound: a DMTRL net that shares holds at most 0.6 × the STL parameters


@dataclass(frozen=True)
class RankSetting:
    """One way of choosing the DMTRL ranks: a rank rule and, for rules read on weights, the STL init."""

    label: str
    rule: RankRule
    stl_init: str | None  # "independent" / "common" STL nets are decomposed; None: shapes alone decide


RANK_SETTINGS = (
    RankSetting("ε = 0.1 Frobenius, independent STL", RelativeError(0.1), "independent"),
    RankSetting("(a) spectral ε = 0.1 (authors' code), independent STL", SpectralError(0.1), "independent"),
    RankSetting("(b) ε = 0.1 Frobenius, common-init STL", RelativeError(0.1), "common"),
    RankSetting("(b) spectral ε = 0.1, common-init STL", SpectralError(0.1), "common"),
    RankSetting("(c) ParameterBudget(0.4), uniform rank cap", ParameterBudget(0.4), None),
    RankSetting(MAIN_RULE_LABEL, MAIN_RULE, None),
)

GATES = [
    Gate(
        "DMTRL shares (parameters)",
        key="ours",
        below=0.6,
        settings=f"DMTRL-* · {MAIN_RULE_LABEL}",
        metric="ratio_to_STL",
    ),
    Gate(
        "DMTRL shares (conv task rank < T)",
        key="conv_task_rank_over_T",
        below=1.0,
        settings=f"DMTRL-* · {MAIN_RULE_LABEL}",
        metric="ratio_to_STL",
    ),
]


def _deviations(mode: str) -> list[str]:
    b = MNIST_BUDGETS[mode]
    out = [
        "Counts are for the network as described in Sec. 4.1 (28×28 input, 'valid' 5×5 and 4×4 convolutions, "
        "2×2 max-pooling, so FC1 has 64·4·4 = 1024 inputs): STL = 10 × 558,977. The paper's 4351K STL figure "
        "(≈ 435K per task) does not follow from that description (it fits an FC1 input of ≈ 784), so the ratios "
        "to STL are the comparable quantity.",
        "Every parametrised layer (including the 512→1 output layer) is factorised; biases stay per task.",
        "The paper picks ranks with ε = 0.1 on trained STL nets and does not say how those were initialised; six "
        "rank settings are compared: ε as a Frobenius bound (the paper's words) and as the authors' released "
        "code reads it (σ_i > ε σ_1 per flattening, SpectralError), each on ten independently initialised STL "
        "nets and on ten nets started from one common draw, and two explicit budgets of 0.4 × the dense "
        "parameters per layer (App. B's ratio): a uniform rank cap (ParameterBudget) and the same share of every "
        "mode's rank (ProportionalBudget, mtlkit's; not in the paper).",
        f"STL nets for the ε rules: trained on {b.fractions[0]:.0%} of MNIST (seed 0) with dmtrl-mnist's "
        f"protocol in this mode (Adam lr {b.lr:g}, batch {b.batch_size}, {b.epochs_for(round(60000 * b.fractions[0]))} "
        "epochs); the paper states no optimiser or epochs.",
        f"UD-MTL-Large: the paper gives only its size (≈ {UD_LARGE_RATIO:.2f} × STL) and that hidden neurons were "
        "added; here FC1 is widened until UD-MTL (conv1, conv2, FC1 tied) reaches that ratio of STL. Its error "
        "is measured in dmtrl-mnist.",
        f"The rule used by dmtrl-mnist is fixed in the code ({MAIN_RULE_LABEL}); 'closest_to_paper' in this "
        "file says which of the settings that share (≤ 0.6 × STL, conv task ranks < T) is nearest to App. B's "
        "ratios (sum of |ratio − paper ratio| over LAF, Tucker, TT), and the gates check the chosen one.",
    ]
    if mode != "full":
        out.append("One STL training run per initialisation (seed 0); ε-ranks vary slightly with the trained weights.")
    if b.width != 1.0:
        out.append(f"Network width ×{b.width:g} (quick mode only).")
    if mode == "quick":
        out.append("quick mode: smoke test only; numbers are meaningless.")
    return out


@register_experiment(
    NAME, seed_file=SEED_FILE, description="DMTRL App. B: parameter counts per rank rule", threads=1, gates=GATES
)
def run(ctx: RunContext) -> None:
    b = MNIST_BUDGETS[ctx.mode]
    results = ctx.results(deviations=_deviations(ctx.mode), seeds=[0])
    results.set("rows", [])  # cheap and recomputed whole (STL checkpoints are reused): no stale settings
    fraction = b.fractions[0]
    stl_count = count_parameters(UserDefinedSharing(lenet(b.width), 0, TASKS))
    ud_count = count_parameters(UserDefinedSharing(lenet(b.width), UD_SHARED, TASKS))
    ud_large_count = count_parameters(UserDefinedSharing(lenet(b.width, ud_large_hidden(b.width)), UD_SHARED, TASKS))
    for key, count in (("stl", stl_count), ("ud", ud_count), ("ud_large", ud_large_count)):
        results.add_row(LABEL[key], "parameters_K", round(count / 1000, 1), paper=PAPER_K[key], parameters=count,
                        comparable="the paper's STL count does not follow from its stated architecture (see "
                        "deviations); compare the ratios")  # fmt: skip
        results.add_row(LABEL[key], "ratio_to_STL", round(count / stl_count, 3), paper=round(PAPER_RATIO[key], 2))
    stl_nets: dict[str, UserDefinedSharing] = {}
    plain = UserDefinedSharing(lenet(b.width), 0, TASKS)  # shape-only rules need no trained weights
    distance, shares = {}, {}
    for setting in RANK_SETTINGS:
        if setting.stl_init is None:
            source = plain
        else:
            if setting.stl_init not in stl_nets:
                data = mnist_one_vs_all("train", fraction, seed=0, root=ctx.data_root)
                common = setting.stl_init == "common"
                run_dir = ctx.run_dir("stl-common") if common else stl_run_dir(ctx, fraction, 0)
                stl_nets[setting.stl_init] = fit_stl(ctx, b, data, 0, run_dir, common_init=common)
            source = stl_nets[setting.stl_init]
        distance[setting.label], shares[setting.label] = 0.0, True
        for method in DMTRL_METHODS:
            net = DMTRLNet.from_single_task(dict(source.towers), FACTORIZATIONS[method], setting.rule)
            count = count_parameters(net)
            ratio = count / stl_count
            distance[setting.label] += abs(ratio - PAPER_RATIO[method])
            extra = {"parameters": count, **layer_report(net)}
            shares[setting.label] &= ratio <= SHARES_RATIO and extra["conv_task_rank_over_T"] < 1  # type: ignore[operator]
            name = f"{LABEL[method]} · {setting.label}"
            results.add_row(name, "parameters_K", round(count / 1000, 1), paper=PAPER_K[method], comparable="the "
                            "paper's STL count does not follow from its architecture; compare the ratios",
                            **extra)  # fmt: skip
            results.add_row(name, "ratio_to_STL", round(ratio, 3), paper=round(PAPER_RATIO[method], 2),
                            headline=setting.label == MAIN_RULE_LABEL, **extra)  # fmt: skip
    sharing = [label for label in distance if shares[label]]
    closest = min(sharing, key=distance.__getitem__) if sharing else None
    results.set("closest_to_paper", {
        "setting": closest,
        "setting_any": min(distance, key=distance.__getitem__),
        "distance": {k: round(v, 3) for k, v in distance.items()},
        "shares": shares,
    })  # fmt: skip
    results.set("conclusions", _conclusions(results.rows, closest, shares))


def layer_report(net: DMTRLNet) -> dict[str, object]:
    """Per-layer ranks and task ranks, and the largest conv task rank as a share of ``T`` (the gate's field)."""
    return {"ranks": ranks_of(net), **task_rank_report(net)}


def _conclusions(rows: list[dict], closest: str | None, shares: dict[str, bool]) -> str:
    def ratios(label: str) -> str:
        found = {r["setting"]: r["ours"] for r in rows if r["metric"] == "ratio_to_STL"}
        return ", ".join(f"{LABEL[m]} {found[f'{LABEL[m]} · {label}']:.2f}" for m in DMTRL_METHODS)

    parts = "; ".join(f"{s.label}: {ratios(s.label)}" for s in RANK_SETTINGS)
    return (
        f"DMTRL parameters / STL per rank setting — {parts} (paper: LAF 0.38, Tucker 0.40, TT 0.50; UD-MTL 0.10). "
        f"Settings that share (≤ {SHARES_RATIO} × STL and conv task ranks < T for all three nets): "
        f"{', '.join(label for label, ok in shares.items() if ok) or 'none'}. Closest of those to App. B (sum of "
        f"|ratio − paper ratio|): {closest}; dmtrl-mnist uses {MAIN_RULE_LABEL}"
        + ("." if closest == MAIN_RULE_LABEL else " — NOT the closest: update dmtrl_common.MAIN_RULE.")
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


if __name__ == "__main__":
    from mtlkit.cli import main

    sys.exit(main(["reproduce", NAME, *sys.argv[1:]]))
