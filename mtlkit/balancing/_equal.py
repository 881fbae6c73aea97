"""Plain summing: every task counts once."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from mtlkit.balancing._base import TaskWeighting

__all__ = ["EqualWeighting"]


class EqualWeighting(TaskWeighting):
    r"""Plain summing, :math:`L = \sum_t L_t` — the reference every method's cost is measured against.

    Example:
        >>> import torch
        >>> EqualWeighting(("a", "b"))({"a": torch.tensor(2.0), "b": torch.tensor(4.0)})
        tensor(6.)
    """

    def terms(self, losses: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        self.last_weights = {task: 1.0 for task in losses}
        return dict(losses)
