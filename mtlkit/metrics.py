"""Per-batch metrics as ``(sum, count)`` pairs, so epoch values aggregate exactly.

A metric function takes ``(output, target)`` of one task and returns the *sum* of the
per-example scores and the number of examples scored. Examples whose target is the ignore
value ``-100`` (unlabeled data) are not scored.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

IGNORE_INDEX = -100
"""Target value of unlabeled entries (PyTorch's ``ignore_index`` default); never scored."""

MetricFn = Callable[[torch.Tensor, torch.Tensor], tuple[float, int]]

__all__ = [
    "IGNORE_INDEX",
    "MetricFn",
    "accuracy",
    "delta_m",
    "error_rate",
    "mean_rank",
    "one_vs_all_error",
    "paired_gain",
    "sign_accuracy",
]


def accuracy(output: torch.Tensor, target: torch.Tensor) -> tuple[float, int]:
    """Correct predictions and count: argmax of ``(N, C)`` logits, or the sign for ±1 targets.

    Example:
        >>> import torch
        >>> accuracy(torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0]))
        (1.0, 2)
        >>> accuracy(torch.tensor([0.3, -2.0]), torch.tensor([1.0, 1.0]))
        (1.0, 2)
    """
    if target.is_floating_point():
        return sign_accuracy(output, target)
    keep = target != IGNORE_INDEX
    predicted = output.argmax(dim=-1)
    return float((predicted[keep] == target[keep]).sum()), int(keep.sum())


def sign_accuracy(output: torch.Tensor, target: torch.Tensor) -> tuple[float, int]:
    """Binary accuracy for ±1 targets: ``sign(output) == target`` (0 counts as +1)."""
    output = output.reshape(target.shape)
    predicted = torch.where(output >= 0, 1.0, -1.0)
    return float((predicted == target).sum()), target.numel()


def error_rate(output: torch.Tensor, target: torch.Tensor) -> tuple[float, int]:
    """``1 − accuracy`` as a ``(sum, count)`` pair.

    Example:
        >>> import torch
        >>> error_rate(torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0]))
        (1.0, 2)
    """
    correct, count = accuracy(output, target)
    return count - correct, count


def one_vs_all_error(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Multi-class error of ``C`` one-vs-all scorers: class = argmax of the ``(N, C)`` scores.

    The second metric of DMTRL's MNIST experiment: rank the ten binary tasks' outputs.

    Example:
        >>> import torch
        >>> one_vs_all_error(torch.tensor([[0.9, -1.0], [0.2, 0.5]]), torch.tensor([0, 0]))
        0.5
    """
    if scores.dim() != 2 or labels.shape != scores.shape[:1]:
        raise ValueError(f"need (N, C) scores and (N,) labels, got {tuple(scores.shape)} and {tuple(labels.shape)}")
    return float((scores.argmax(dim=1) != labels).double().mean())


def delta_m(
    results: Mapping[str, float], baselines: Mapping[str, float], higher_is_better: Mapping[str, bool]
) -> float:
    r"""Multi-task performance :math:`\Delta_m` in percent (Maninis, Radosavovic & Kokkinos, CVPR 2019):

    .. math:: \Delta_m = \frac{100}{K} \sum_{k=1}^{K} (-1)^{l_k} \frac{M_k - B_k}{B_k}

    over the :math:`K` metrics :math:`M_k` of a method and :math:`B_k` of the single-task
    baselines, with :math:`l_k = 0` where higher is better and :math:`1` where lower is better, so
    :math:`\Delta_m > 0` means better than the baselines on average.

    Args:
        results: ``metric → value`` of the method.
        baselines: ``metric → value`` of the single-task baselines; same metrics, none 0.
        higher_is_better: ``metric → direction``; same metrics.

    Example:
        >>> round(delta_m({"left": 0.95, "right_err": 0.08}, {"left": 0.95, "right_err": 0.10},
        ...               {"left": True, "right_err": False}), 6)  # error 20 % lower on one of two tasks
        10.0
    """
    keys = set(results)
    if not keys:
        raise ValueError("delta_m needs at least one metric, got results={}")
    for name, other in (("baselines", baselines), ("higher_is_better", higher_is_better)):
        if set(other) != keys:
            raise ValueError(f"{name} must name the metrics of results {sorted(keys)}, got {sorted(other)}")
    total = 0.0
    for key in sorted(keys):
        m, b = float(results[key]), float(baselines[key])
        if not (math.isfinite(m) and math.isfinite(b)):
            raise ValueError(f"metric {key!r}: values must be finite, got result {m} and baseline {b}")
        if b == 0:
            raise ValueError(f"metric {key!r}: baseline is 0, so its relative change is undefined")
        sign = 1.0 if higher_is_better[key] else -1.0
        total += sign * (m - b) / abs(b)
    return 100.0 * total / len(keys)


def mean_rank(table: Mapping[str, Mapping[str, float]], higher_is_better: Mapping[str, bool]) -> dict[str, float]:
    r"""Mean rank of each method over the metrics: rank 1 is the best on a metric, ties share the mean
    of their ranks, and :math:`\mathrm{MR}_m = \frac1K \sum_k \mathrm{rank}_k(m)`, so with :math:`M`
    methods :math:`1 \le \mathrm{MR} \le M` and the ranks of a metric sum to :math:`M(M+1)/2`.

    Args:
        table: ``method → {metric: value}``; every method has the same metrics.
        higher_is_better: ``metric → direction``.

    Example:
        >>> mean_rank({"EW": {"acc": 0.9, "err": 0.2}, "UW": {"acc": 0.8, "err": 0.1}},
        ...           {"acc": True, "err": False})
        {'EW': 1.5, 'UW': 1.5}
    """
    if not table:
        raise ValueError("mean_rank needs at least one method, got table={}")
    metrics = set(higher_is_better)
    if not metrics:
        raise ValueError("mean_rank needs at least one metric, got higher_is_better={}")
    for method, row in table.items():
        if set(row) != metrics:
            raise ValueError(f"method {method!r} has metrics {sorted(row)}, expected {sorted(metrics)}")
    totals = {method: 0.0 for method in table}
    for metric in sorted(metrics):
        sign = -1.0 if higher_is_better[metric] else 1.0
        values = {method: sign * float(row[metric]) for method, row in table.items()}
        if not all(math.isfinite(v) for v in values.values()):
            raise ValueError(f"metric {metric!r}: values must be finite, got {values}")
        for method, v in values.items():
            better = sum(1 for w in values.values() if w < v)
            ties = sum(1 for w in values.values() if w == v)
            totals[method] += better + (ties + 1) / 2
    return {method: total / len(metrics) for method, total in totals.items()}


def paired_gain(ours: Sequence[float], reference: Sequence[float]) -> dict[str, Any]:
    r"""Mean paired difference :math:`\bar\Delta`, its standard error :math:`s_\Delta/\sqrt n`, and whether
    :math:`|\bar\Delta| > 2\,\mathrm{SE}`, for runs paired by seed (``None`` with one pair: no spread).

    The verdict the reproductions print beside a claimed gain: pairing by seed removes the variance
    the two runs of one seed share (initialisation, data order).

    >>> g = paired_gain([91.0, 92.0, 93.0], [90.0, 90.5, 91.0])
    >>> g["gain"], round(g["standard_error"], 3), g["beyond_2_standard_errors"]
    (1.5, 0.289, True)
    >>> paired_gain([91.0], [90.0])["beyond_2_standard_errors"] is None
    True
    """
    if len(ours) != len(reference) or not ours:
        raise ValueError(f"paired_gain needs equally many (>= 1) paired values, got {len(ours)} and {len(reference)}")
    diffs = [a - r for a, r in zip(ours, reference, strict=True)]
    gain = statistics.fmean(diffs)
    if len(diffs) < 2:
        return {"gain": gain, "standard_error": None, "beyond_2_standard_errors": None}
    se = statistics.stdev(diffs) / math.sqrt(len(diffs))
    return {"gain": gain, "standard_error": se, "beyond_2_standard_errors": bool(abs(gain) > 2 * se)}
