"""Dynamic weight average (Liu, Johns & Davison, CVPR 2019)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.distributed as dist

from mtlkit.balancing._base import TaskWeighting

__all__ = ["DynamicWeightAverage"]


class DynamicWeightAverage(TaskWeighting):
    r"""DWA (Liu et al., "End-to-End Multi-Task Learning with Attention", CVPR 2019, Eq. 7):

    .. math:: w_t(e) = \frac{T \exp(r_t(e-1)/\tau)}{\sum_i \exp(r_i(e-1)/\tau)}, \qquad
              r_t(e-1) = \frac{\bar L_t(e-1)}{\bar L_t(e-2)}

    where :math:`\bar L_t(e)` is task :math:`t`'s average training loss over epoch :math:`e` and
    :math:`\tau = 2` the paper's temperature; :math:`w_t = 1` in the first two epochs. The weights
    are non-negative and sum to :math:`T` (over the tasks present in a step, scaled to their
    number). Under DDP the epoch averages are taken over all ranks. Computed as a softmax, so
    loss ratios of any size cannot overflow; a task whose
    previous average was exactly 0 has ratio 1 (it neither fell nor rose measurably).

    Args:
        tasks: the task names.
        temperature: :math:`\tau > 0`.

    Example:
        >>> import torch
        >>> dwa = DynamicWeightAverage(("a", "b"))
        >>> for epoch_losses in ([4.0, 4.0], [2.0, 4.0]):  # two epochs: a halves, b stays
        ...     _ = dwa({"a": torch.tensor(epoch_losses[0]), "b": torch.tensor(epoch_losses[1])})
        ...     dwa.on_epoch_end()
        >>> {k: round(v, 4) for k, v in dwa.current_weights().items()}
        {'a': 0.8756, 'b': 1.1244}
    """

    epoch_sum: torch.Tensor
    epoch_count: torch.Tensor
    averages: torch.Tensor

    def __init__(self, tasks: Sequence[str], temperature: float = 2.0) -> None:
        super().__init__(tasks)
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be finite and > 0, got {temperature}")
        self.temperature = float(temperature)
        n = len(self.tasks)
        self.register_buffer("epoch_sum", torch.zeros(n, dtype=torch.float64))
        self.register_buffer("epoch_count", torch.zeros(n, dtype=torch.float64))
        # Averages of the last two finished epochs (row 0: e-2, row 1: e-1); NaN until measured.
        self.register_buffer("averages", torch.full((2, n), math.nan, dtype=torch.float64))

    def current_weights(self) -> dict[str, float]:
        """The weights of the current epoch, for all tasks (sum :math:`T`)."""
        older, last = self.averages[0], self.averages[1]
        if bool(torch.isnan(older).any() | torch.isnan(last).any()):
            return {task: 1.0 for task in self.tasks}
        ratio = torch.where(older > 0, last / older.clamp_min(torch.finfo(torch.float64).tiny), torch.ones_like(last))
        weights = len(self.tasks) * torch.softmax(ratio / self.temperature, dim=0)
        return {task: float(w) for task, w in zip(self.tasks, weights, strict=True)}

    def terms(self, losses: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        weights = self.current_weights()
        # Over a subset of the tasks the weights are rescaled to sum to the subset's size.
        present = sum(weights[task] for task in losses)
        factor = len(losses) / present
        with torch.no_grad():
            for task, loss in losses.items():
                i = self.tasks.index(task)
                self.epoch_sum[i] += float(loss.detach())
                self.epoch_count[i] += 1
        self.last_weights = {task: weights[task] * factor for task in losses}
        return {task: self.last_weights[task] * loss for task, loss in losses.items()}

    def on_epoch_end(self) -> None:
        with torch.no_grad():
            if dist.is_available() and dist.is_initialized():  # every rank gets the same epoch averages
                dist.all_reduce(self.epoch_sum)
                dist.all_reduce(self.epoch_count)
            seen = self.epoch_count > 0
            average = torch.where(seen, self.epoch_sum / self.epoch_count.clamp_min(1), self.averages[1])
            self.averages[0] = self.averages[1]
            self.averages[1] = average
            self.epoch_sum.zero_()
            self.epoch_count.zero_()

    def extra_repr(self) -> str:
        return f"tasks={self.tasks}, temperature={self.temperature}"
