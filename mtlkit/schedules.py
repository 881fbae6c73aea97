"""Task-weight schedules: how much each task's loss counts at training time ``t``.

A schedule is a small stateful object. Its formula lives in :meth:`WeightSchedule.value`, a pure
function of ``t`` that can be property-tested on its own; the object only remembers the current
``t`` and advances it with :meth:`WeightSchedule.step` once per epoch or once per iteration
(``unit``). The :class:`~mtlkit.Trainer` calls ``step()`` at the end of each unit and checkpoints
``state_dict()`` so that a resumed run sees the same weights.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, Literal

ScheduleUnit = Literal["epoch", "iteration"]

__all__ = ["ConstantWeights", "ScheduleUnit", "WeightSchedule"]


class WeightSchedule(ABC):
    r"""Base class: a map :math:`t \mapsto \{w_\text{task}(t)\}` with a clock.

    Subclasses implement :meth:`value`; everything else is shared.

    Args:
        tasks: names of the tasks whose weights the schedule gives.
        unit: whether ``t`` counts epochs or iterations (optimiser steps).
    """

    def __init__(self, tasks: tuple[str, ...], unit: ScheduleUnit = "epoch") -> None:
        if not tasks:
            raise ValueError("a weight schedule needs at least one task")
        if len(set(tasks)) != len(tasks):
            raise ValueError(f"task names must be unique, got {tasks}")
        if unit not in ("epoch", "iteration"):
            raise ValueError(f"unit must be 'epoch' or 'iteration', got {unit!r}")
        self.tasks = tuple(tasks)
        self.unit: ScheduleUnit = unit
        self.t = 0

    @abstractmethod
    def value(self, t: float) -> dict[str, float]:
        """The task weights at time ``t`` (pure: no state is read or changed)."""

    def weights(self) -> dict[str, float]:
        """The task weights at the current time."""
        return self.value(self.t)

    def step(self) -> None:
        """Advance the clock by one unit."""
        self.t += 1

    def state_dict(self) -> dict[str, Any]:
        return {"t": self.t}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.t = int(state["t"])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(tasks={self.tasks}, unit={self.unit!r}, t={self.t})"


class ConstantWeights(WeightSchedule):
    r"""Fixed task weights: :math:`L = \sum_t w_t L_t` at every step.

    The coursework's :math:`\lambda L_1 + (1-\lambda) L_2` is
    ``ConstantWeights({"item": lam, "group": 1 - lam})`` — or simply pass that dict as
    ``weights=`` to the :class:`~mtlkit.Trainer`.

    Example:
        >>> w = ConstantWeights({"item": 0.25, "group": 0.75})
        >>> w.weights()
        {'item': 0.25, 'group': 0.75}
    """

    def __init__(self, weights: Mapping[str, float], unit: ScheduleUnit = "epoch") -> None:
        super().__init__(tuple(weights), unit)
        for task, w in weights.items():
            if not math.isfinite(float(w)) or float(w) < 0:
                raise ValueError(f"weight of task '{task}' must be finite and >= 0, got {w}")
        self._weights = {task: float(w) for task, w in weights.items()}

    def value(self, t: float) -> dict[str, float]:
        return dict(self._weights)
