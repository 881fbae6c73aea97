"""A weight schedule as a task weighting, alone or on top of an adaptive method."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from mtlkit.balancing._base import TaskWeighting
from mtlkit.balancing._equal import EqualWeighting
from mtlkit.schedules import ConstantWeights, WeightSchedule

__all__ = ["FixedWeights", "Scheduled"]


class Scheduled(TaskWeighting):
    r"""Schedule weights :math:`s_t(\text{time})` on top of a weighting's per-task terms.

    .. math:: L = \sum_{t:\, s_t \ne 0} s_t\, \tau_t, \qquad \tau_t = \text{the inner method's term of task } t

    With the default inner method (:class:`EqualWeighting`, :math:`\tau_t = L_t`) this is the
    schedule itself, :math:`L = \sum_t s_t L_t` — the numbers of :func:`~mtlkit.weighted_sum`.
    With an adaptive inner method (e.g. uncertainty weighting) the schedule decides *when* a task
    counts and the method *how much*: the schedule's weight multiplies the method's whole term for
    that task (for a gradient method such as DB-MTL, that task's balanced gradient).

    A task whose schedule weight is exactly 0 is left out before the inner method sees it: its
    parameters get no gradient at all, so momentum and weight decay cannot move them either
    (``stairs`` is true pre-training), and adaptive statistics are not updated by it.

    The schedule is stepped after every iteration or every epoch, as its ``unit`` says; its clock
    is part of this module's ``state_dict()``.

    Args:
        schedule: the task weights over time.
        inner: the method under the schedule; plain summing by default. Must balance the same tasks.

    Example:
        >>> import torch
        >>> from mtlkit import ExponentialSchedule
        >>> from mtlkit.balancing import UncertaintyWeighting
        >>> schedule = ExponentialSchedule(sigma=10, supervised="class", reconstruction="rec")
        >>> weighting = Scheduled(schedule, UncertaintyWeighting(("class", "rec")))
        >>> losses = {"class": torch.tensor(2.0), "rec": torch.tensor(1.0)}
        >>> weighting(losses)  # t = 0: only "rec" counts, with UW's term 0.5 * 1.0 + 0.5 * 0
        tensor(0.5000, grad_fn=<SumBackward0>)
    """

    def __init__(self, schedule: WeightSchedule, inner: TaskWeighting | None = None) -> None:
        if not isinstance(schedule, WeightSchedule):
            raise TypeError(f"schedule must be a WeightSchedule, got {schedule!r}")
        super().__init__(schedule.tasks)
        inner = EqualWeighting(schedule.tasks) if inner is None else inner
        if not isinstance(inner, TaskWeighting):
            raise TypeError(f"inner must be a TaskWeighting, got {inner!r}")
        if set(inner.tasks) != set(schedule.tasks):
            raise ValueError(f"schedule weights tasks {schedule.tasks} but inner={inner!r} balances {inner.tasks}")
        if isinstance(inner, Scheduled):
            raise ValueError("compose one schedule with a method, not a schedule with a schedule; got inner=Scheduled")
        self.schedule = schedule
        self.inner = inner
        self.supports_distributed = inner.supports_distributed

    def _active(
        self, losses: Mapping[str, torch.Tensor], scales: Mapping[str, float] | None
    ) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
        weights = self.schedule.weights()
        active = {task: loss for task, loss in losses.items() if weights[task] != 0}
        combined = {task: weights[task] * (1.0 if scales is None else scales[task]) for task in active}
        self.last_weights = combined
        return active, combined

    def counts(self, task: str) -> bool:
        """A task counts while its schedule weight is not exactly 0 and the inner method counts it."""
        return self.schedule.weights()[task] != 0 and self.inner.counts(task)

    def terms(self, losses: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        active, combined = self._active(losses, None)
        if not active:
            return {}
        return {task: combined[task] * term for task, term in self.inner.terms(self.checked_losses(active)).items()}

    def forward(
        self, losses: Mapping[str, torch.Tensor], scales: Mapping[str, float] | None = None
    ) -> torch.Tensor | None:
        active, combined = self._active(self.checked_losses(losses), scales)
        total: torch.Tensor | None = self.inner(active, combined)
        return total

    def backward(self, losses: Mapping[str, torch.Tensor], scales: Mapping[str, float] | None = None) -> bool:
        active, combined = self._active(self.checked_losses(losses), scales)
        return self.inner.backward(active, combined)

    def attach(self, model: torch.nn.Module) -> None:
        self.inner.attach(model)

    def on_iteration_end(self) -> None:
        if self.schedule.unit == "iteration":
            self.schedule.step()
        self.inner.on_iteration_end()

    def on_epoch_end(self) -> None:
        if self.schedule.unit == "epoch":
            self.schedule.step()
        self.inner.on_epoch_end()

    def get_extra_state(self) -> dict[str, Any]:
        return {"schedule": self.schedule.state_dict()}

    def set_extra_state(self, state: Any) -> None:
        self.schedule.load_state_dict(state["schedule"])

    def extra_repr(self) -> str:
        return f"schedule={self.schedule!r}"


class FixedWeights(Scheduled):
    r"""Fixed task weights, :math:`L = \sum_t w_t L_t` (a task with :math:`w_t = 0` is left out).

    What ``Trainer(weights={...})`` uses; the coursework's :math:`\lambda L_1 + (1-\lambda) L_2`
    is ``FixedWeights({"item": lam, "group": 1 - lam})``.

    Example:
        >>> import torch
        >>> FixedWeights({"a": 0.5, "b": 0.25})({"a": torch.tensor(2.0), "b": torch.tensor(4.0)})
        tensor(2.)
    """

    def __init__(self, weights: Mapping[str, float]) -> None:
        super().__init__(ConstantWeights(weights))
