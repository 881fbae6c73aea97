"""Uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from mtlkit.balancing._base import TaskWeighting

__all__ = ["UncertaintyWeighting"]


class UncertaintyWeighting(TaskWeighting):
    r"""Learned homoscedastic uncertainty per task (Kendall et al., "Multi-Task Learning Using
    Uncertainty to Weigh Losses for Scene Geometry and Semantics", CVPR 2018, Eq. 7):

    .. math:: L = \sum_t \frac{1}{2\sigma_t^2} L_t + \log \sigma_t
              = \sum_t \tfrac12 e^{-s_t} L_t + \tfrac12 s_t, \qquad s_t = \log \sigma_t^2

    The log-variances :math:`s_t` are parameters of this module (initialised to 0, i.e. weight
    :math:`\tfrac12`) and must be given to the optimiser with the model's. Learning :math:`s_t`
    rather than :math:`\sigma_t` is the paper's own advice (Sec. 3.2: no division by zero). The
    weights :math:`\tfrac12 e^{-s_t}` are positive and do not sum to a constant; at the optimum of
    :math:`s_t` for a fixed loss, :math:`e^{s_t} = L_t`, so each task's term is scale-balanced.

    Args:
        tasks: the task names.
        init_log_variance: starting value of every :math:`s_t`.

    Example:
        >>> import torch
        >>> uw = UncertaintyWeighting(("a", "b"))
        >>> uw({"a": torch.tensor(2.0), "b": torch.tensor(4.0)})  # 0.5 * 2 + 0.5 * 4 + 0
        tensor(3., grad_fn=<SumBackward0>)
        >>> sorted(name for name, _ in uw.named_parameters())
        ['log_variance']
    """

    def __init__(self, tasks: Sequence[str], init_log_variance: float = 0.0) -> None:
        super().__init__(tasks)
        if not torch.isfinite(torch.tensor(float(init_log_variance))):
            raise ValueError(f"init_log_variance must be finite, got {init_log_variance}")
        self.log_variance = nn.Parameter(torch.full((len(self.tasks),), float(init_log_variance)))

    def terms(self, losses: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        weights: dict[str, float] = {}
        for task, loss in losses.items():
            s = self.log_variance[self.tasks.index(task)].to(loss.dtype)
            precision = 0.5 * torch.exp(-s)
            out[task] = precision * loss + 0.5 * s
            weights[task] = float(precision.detach())
        self.last_weights = weights
        return out
