"""How per-task losses become the one scalar that is back-propagated."""

from __future__ import annotations

from collections.abc import Mapping

import torch

__all__ = ["weighted_sum"]


def weighted_sum(losses: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
    r"""Total loss :math:`L = \sum_t w_t L_t` over the tasks present in ``losses``.

    A task with weight 0 contributes an exact zero. (The :class:`~mtlkit.Trainer` goes further and
    leaves zero-weighted tasks out of the step, so that momentum or weight decay cannot move their
    parameters either.)

    Raises:
        KeyError: a task in ``losses`` has no weight.

    Example:
        >>> import torch
        >>> weighted_sum({"a": torch.tensor(2.0), "b": torch.tensor(4.0)}, {"a": 0.5, "b": 0.25})
        tensor(2.)
    """
    if not losses:
        raise ValueError("no task losses to combine")
    missing = [task for task in losses if task not in weights]
    if missing:
        raise KeyError(f"no loss weight for task(s) {missing}; weights are given for {list(weights)}")
    return torch.stack([weights[task] * loss for task, loss in losses.items()]).sum()
