"""Helpers shared by the DMTRL reproductions (seed 002): training, prediction, UD-MTL selection.

The method itself lives in the library (:class:`mtlkit.nn.DMTRLNet`, the factorised layers,
:class:`mtlkit.nn.UserDefinedSharing`); this module only wires it to the Trainer the same way for
the MNIST, Omniglot and faces experiments.
"""

from __future__ import annotations

import copy
import json
import math
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mtlkit import Trainer, seed_everything
from mtlkit.experiments import RunContext
from mtlkit.factorized import (
    LAF,
    TT,
    Factorization,
    ProportionalBudget,
    RankRule,
    RelativeError,
    SpectralError,
    Tucker,
)
from mtlkit.gates import Gate, last_fraction_change
from mtlkit.nn import DMTRLNet, FactorizedConv2d, UserDefinedSharing, count_parameters
from mtlkit.nn._ud_mtl import LayerSpec
from mtlkit.sharing import sharing_report

SEED_FILE = "002_c59d931e19fae3a5.txt"
DMTRL_METHODS = ("laf", "tucker", "tt")
FACTORIZATIONS: dict[str, type[Factorization]] = {"laf": LAF, "tucker": Tucker, "tt": TT}  # result keys → classes
# "stl_ft" is our control, not a method of the paper: the trained STL nets trained for as many more
# epochs as DMTRL gets after its STL initialisation, without any sharing.
METHODS = ("stl", "stl_ft", "ud", *DMTRL_METHODS)
SPECTRAL_METHODS = tuple(f"{m}-spectral" for m in DMTRL_METHODS)  # DMTRL with the authors' ε-ranks
ALL_METHODS = (*METHODS, *SPECTRAL_METHODS)
LABEL = {
    "stl": "STL",
    "stl_ft": "STL + more epochs (control)",
    "ud": "UD-MTL",
    "ud_large": "UD-MTL-Large",
    "laf": "DMTRL-LAF",
    "tucker": "DMTRL-Tucker",
    "tt": "DMTRL-TT",
    **{f"{m}-spectral": f"DMTRL-{n} (spectral ε)" for m, n in (("laf", "LAF"), ("tucker", "Tucker"), ("tt", "TT"))},
}
EPS = 0.1  # the paper's single hyper-parameter: relative reconstruction error of the STL init
# The rank rule of the MNIST runs: the one of dmtrl-params' settings closest to App. B's counts
# (ε = 0.1 on independently trained STL nets keeps task rank T and more parameters than STL).
MAIN_RULE = ProportionalBudget(0.4)
MAIN_RULE_LABEL = "(c) ProportionalBudget(0.4), same share of every mode's rank"


def sharing_gates(metric: str) -> list[Gate]:
    """The gates that a DMTRL net shares (≤ 0.6 × the STL parameters, conv task ranks < T), on ``metric``'s rows.

    A failure marks every DMTRL row: a net at full task rank is the STL nets re-parametrised.
    """
    return [
        Gate("DMTRL shares (parameters)", key="parameters_vs_stl", below=0.6, settings="DMTRL-*", metric=metric,
             marks="DMTRL-*"),
        Gate("DMTRL shares (conv task rank < T)", key="conv_task_rank_over_T", below=1.0, settings="DMTRL-*",
             metric=metric, marks="DMTRL-*"),
    ]  # fmt: skip


Batch = tuple[Any, dict[str, Tensor]]


def budget_epochs(epochs: int | None, passes: int | None, max_epochs: int, n_train: int, minimum: int) -> int:
    """A run's epochs: a fixed count, or ``passes / n_train`` image passes clamped to ``[minimum, max_epochs]``.

    Fixing the number of image passes rather than epochs keeps the training cost of small and large
    training fractions comparable.
    """
    if epochs is not None:
        return epochs
    if passes is None:
        raise ValueError("a budget needs either epochs or image passes")
    return max(minimum, min(max_epochs, round(passes / n_train)))


def lr_milestones(epochs: int, shares: Sequence[float]) -> list[int]:
    """The epochs after which the learning rate drops, one per share of ``epochs`` (rounded).

    Each lies in ``[1, epochs - 1]``, so a drop never comes before the first epoch or after the
    last (a one-epoch run has none); shares that round to the same epoch give one milestone.

    >>> lr_milestones(120, (0.5, 0.75))
    [60, 90]
    >>> lr_milestones(2, (0.5, 0.75))
    [1]
    """
    if not all(0 < share < 1 for share in shares):
        raise ValueError(f"lr_drops must be shares of the epochs in (0, 1), got {list(shares)}")
    return sorted({max(1, min(epochs - 1, round(share * epochs))) for share in shares}) if epochs > 1 else []


def train(
    ctx: RunContext,
    model: nn.Module,
    data: Iterable[Batch],
    losses: Mapping[str, Callable[[Tensor, Tensor], Tensor]],
    epochs: int,
    lr: float,
    run_dir: Path,
    seed: int,
    lr_drops: Sequence[float] = (),
) -> list[dict[str, float]]:
    """Adam on the sum of task losses; resumes from ``run_dir/last.pt`` (a finished run is a no-op).

    ``lr_drops``: the learning rate is divided by 10 after each of these shares of the epochs
    (none: constant). Returns the per-epoch history (restored with the checkpoint, so it is whole
    after a resume).
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = None
    if lr_drops:
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, lr_milestones(epochs, lr_drops), gamma=0.1)
    trainer = Trainer(
        model, optimizer, dict(losses), checkpoint_dir=run_dir, log_dir=run_dir, progress=ctx.progress, seed=seed,
        lr_scheduler=scheduler,
    )  # fmt: skip
    return trainer.fit(data, epochs)


def loss_convergence(history: Sequence[Mapping[str, float]], reference: float | None = None) -> float | None:
    """Change of the summed training loss over the last 10 % of epochs (``None`` for one epoch).

    Relative to the tail's own value, or to ``reference`` when given (see
    :func:`mtlkit.gates.last_fraction_change`: a loss near zero makes the tail ratio noise).
    """
    curve = [sum(v for k, v in record.items() if k.startswith("train/") and k.endswith("/loss")) for record in history]
    return round(last_fraction_change(curve, reference=reference), 5) if len(curve) > 1 else None


def uniform_loss(classes: Mapping[str, int]) -> float:
    """Summed cross-entropy of the uniform predictor, ``Σ_t ln C_t``: the scale convergence is judged on.

    >>> round(uniform_loss({"a": 2, "b": 4}), 4)  # ln 2 + ln 4
    2.0794
    """
    return sum(math.log(n) for n in classes.values())


def rule_slug(rule: RankRule) -> str:
    """A run-folder name for a rank rule, e.g. ``ProportionalBudget-0.4`` or ``Ranks-1``."""
    values = "-".join("x".join(map(str, v)) if isinstance(v, tuple) else str(v) for v in vars(rule).values())
    return f"{type(rule).__name__}-{values}"


@torch.no_grad()
def predict(model: nn.Module, batches: Iterable[Batch]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Concatenated ``({task: outputs}, {task: targets})`` of ``model`` over ``batches`` (eval mode)."""
    model.eval()
    outputs: dict[str, list[Tensor]] = {}
    targets: dict[str, list[Tensor]] = {}
    for x, ys in batches:
        for task, out in model(x, tasks=list(ys)).items():
            outputs.setdefault(task, []).append(out)
            targets.setdefault(task, []).append(ys[task])
    return {t: torch.cat(v) for t, v in outputs.items()}, {t: torch.cat(v) for t, v in targets.items()}


def error_pct(output: Tensor, target: Tensor) -> float:
    """Error rate in percent: sign for ±1 targets, argmax for class indices."""
    if target.is_floating_point():
        wrong = torch.where(output.reshape(target.shape) >= 0, 1.0, -1.0) != target
    else:
        wrong = output.argmax(dim=1) != target
    return 100.0 * float(wrong.double().mean())


def cached(path: Path, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Result of a finished configuration, computed once (a restarted run skips finished work)."""
    if path.is_file():
        return json.loads(path.read_text())
    value = compute()
    path.write_text(json.dumps(value))
    return value


def stack_task_weights(layers: Sequence[nn.Module]) -> Tensor:
    """``T`` Linear / Conv2d weights stacked task-last in the factorised layers' axis order."""
    weights = [layer.weight.detach() for layer in layers]
    return torch.stack([w.permute(2, 3, 1, 0) if w.dim() == 4 else w.T for w in weights], dim=-1)


def ranks_of(net: DMTRLNet) -> dict[str, Any]:
    """``{layer name: ranks}`` of every factorised layer (what ε = 0.1 chose)."""
    # LAF's one rank is written as a number, as results files always had it.
    layers = net.factorized_layers().items()
    return {name: layer.ranks[0] if len(layer.ranks) == 1 else layer.ranks for name, layer in layers}


def select_num_shared(
    candidates: Sequence[int],
    fit_and_score: Callable[[int, int], float],
    folds: int,
) -> tuple[int, dict[int, float]]:
    """UD-MTL model selection: the ``N`` (shared layers) with the lowest mean validation error.

    ``fit_and_score(N, fold)`` trains on the fold's training part and returns its validation error.
    """
    scores = {n: statistics.fmean(fit_and_score(n, fold) for fold in range(folds)) for n in candidates}
    return min(scores, key=lambda n: (scores[n], -n)), scores


def cv_split(n: int, folds: int, fold: int, seed: int, holdout: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Train/validation indices: fold ``fold`` of a seeded ``folds``-fold split (``folds == 1``: holdout)."""
    order = np.random.default_rng([seed, 7]).permutation(n)
    if folds == 1:
        cut = max(1, round(holdout * n))
        return np.sort(order[cut:]), np.sort(order[:cut])
    parts = np.array_split(order, folds)
    val = parts[fold]
    return np.sort(np.concatenate([p for i, p in enumerate(parts) if i != fold])), np.sort(val)


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def build_seeded(seed: int, build: Callable[[], nn.Module]) -> nn.Module:
    """Build a model right after seeding, so its initial weights depend only on ``seed``."""
    seed_everything(seed)
    return build()


def compare_methods(
    ctx: RunContext,
    where: Sequence[str],
    layers: Callable[[], Sequence[LayerSpec]],
    tasks: Sequence[str],
    data: Iterable[Batch],
    losses: Mapping[str, Callable[[Tensor, Tensor], Tensor]],
    epochs: int,
    lr: float,
    seed: int,
    num_shared: int,
    evaluate: Callable[[nn.Module], dict[str, float]],
    spectral: bool = False,
    rule: RankRule | Mapping[str, RankRule] | None = None,
    loss_reference: float | None = None,
    lr_drops: Sequence[float] = (),
) -> dict[str, dict[str, Any]]:
    """STL, UD-MTL (``num_shared`` tied layers) and DMTRL-LAF/Tucker/TT on one training set.

    The DMTRL nets start from the trained STL nets — factorised with ε = 0.1 (Frobenius), or under
    ``rule`` when given (one rule, or ``{method: rule}`` for ``laf`` / ``tucker`` / ``tt``) — and
    are trained with the same protocol; so does the control ``stl_ft`` (the
    STL nets trained ``epochs`` more, unshared), which separates the effect of sharing from that of
    the extra epochs DMTRL gets.
    Checkpoints go to ``ctx.run_dir(*where, method)`` (``<method>-<rule>`` for a ``rule``); finished
    runs are restored, never retrained, and every model is re-evaluated (so adding a metric costs one
    evaluation pass). Returns ``{method: {metrics..., cpu_s, parameters, parameters_vs_stl,
    train_loss_change_last10pct[, num_shared | ranks, task_ranks, conv_task_rank_over_T, rho,
    init_<metric>]}}``. ``spectral=True`` adds ``"<method>-spectral"`` runs, initialised with the
    authors' rank rule. ``train_loss_change_last10pct`` is relative to ``loss_reference`` when given
    (see :func:`loss_convergence`); ``lr_drops`` is passed to :func:`train` for every run.
    """
    out: dict[str, dict[str, Any]] = {}

    def fit(model: nn.Module, method: str, before: dict[str, Any] | None = None) -> dict[str, Any]:
        run_dir = ctx.run_dir(*where, method)
        start = time.process_time()
        history = train(ctx, model, data, losses, epochs, lr, run_dir, seed, lr_drops)
        cpu_s = round(time.process_time() - start, 1)
        info = cached(run_dir / "final.json", lambda: {"cpu_s": cpu_s, **(before or {})})
        return {**info, **evaluate(model), "epochs": epochs, "parameters": count_parameters(model),
                "train_loss_change_last10pct": loss_convergence(history, loss_reference)}  # fmt: skip

    stl = build_seeded(seed, lambda: UserDefinedSharing(layers(), 0, tasks))
    out["stl"] = fit(stl, "stl")
    out["stl_ft"] = fit(copy.deepcopy(stl), "stl-ft")
    ud = build_seeded(seed, lambda: UserDefinedSharing(layers(), num_shared, tasks))
    out["ud"] = {**fit(ud, f"ud-N{num_shared}"), "num_shared": num_shared}
    rules = rule if isinstance(rule, Mapping) else dict.fromkeys(DMTRL_METHODS, rule)
    variants: list[tuple[str, RankRule, str, str]] = [
        (m, rules[m] or RelativeError(EPS), m, m if rules[m] is None else f"{m}-{rule_slug(rules[m])}")
        for m in DMTRL_METHODS
    ]
    if spectral:
        variants += [(m, SpectralError(EPS), f"{m}-spectral", f"{m}-spectral") for m in DMTRL_METHODS]
    for method, method_rule, key, folder in variants:
        net = DMTRLNet.from_single_task(dict(stl.towers), FACTORIZATIONS[method], method_rule)
        report = task_rank_report(net)
        before = None
        if not (ctx.run_dir(*where, folder) / "final.json").is_file():
            before = {"ranks": ranks_of(net), **{f"init_{k}": v for k, v in evaluate(net).items()}}
        out[key] = {**fit(net, folder, before), **report, "rho": sharing_report(net),
                    "rho_abs": sharing_report(net, "abs")}  # fmt: skip
    for record in out.values():
        record["parameters_vs_stl"] = round(record["parameters"] / out["stl"]["parameters"], 3)
    return out


def task_rank_report(net: DMTRLNet) -> dict[str, Any]:
    """Per-layer task ranks, and the largest conv task rank as a share of ``T`` (< 1: the conv layers share)."""
    layers = net.factorized_layers()
    task_ranks = {name: int(layer.task_factor().shape[0]) for name, layer in layers.items()}
    conv = [task_ranks[name] for name, layer in layers.items() if isinstance(layer, FactorizedConv2d)]
    share = round(max(conv) / len(net.task_names), 3) if conv else None
    return {"task_ranks": task_ranks, "conv_task_rank_over_T": share}
