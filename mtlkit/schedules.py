"""Task-weight schedules: how much each task's loss counts at training time ``t``.

A schedule is a small stateful object. Its formula lives in :meth:`WeightSchedule.value`, a pure
function of ``t`` that can be property-tested on its own; the object only remembers the current
``t`` and advances it with :meth:`WeightSchedule.step` once per epoch or once per iteration
(``unit``). The :class:`~mtlkit.Trainer` calls ``step()`` at the end of each unit and checkpoints
``state_dict()`` so that a resumed run sees the same weights.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, Literal

ScheduleUnit = Literal["epoch", "iteration"]

#: Length of every training run in Belharbi et al. (2016); the paper's ``t1`` and ``σ`` are in
#: epochs of such a run. Pass ``time_scale=total / PAPER_EPOCHS`` to :func:`schedule_from_name`
#: to keep a schedule's shape in a shorter run.
PAPER_EPOCHS = 5000

#: The schedules compared in the paper's Table 1 (names for :func:`schedule_from_name`).
PAPER_SCHEDULE_NAMES = ("stairs100", "lin100", "lin", "exp40")

__all__ = [
    "PAPER_EPOCHS",
    "PAPER_SCHEDULE_NAMES",
    "AbridgedLinearSchedule",
    "ConstantWeights",
    "ExponentialSchedule",
    "LinearSchedule",
    "ScheduleUnit",
    "StairsSchedule",
    "TransitionSchedule",
    "WeightSchedule",
    "schedule_from_name",
]


class WeightSchedule(ABC):
    r"""Base class: a map :math:`t \mapsto \{w_\text{task}(t)\}` with a clock.

    Subclasses implement :meth:`value`; everything else is shared.

    Args:
        tasks: names of the tasks whose weights the schedule gives.
        unit: whether ``t`` counts epochs or iterations (optimiser steps).

    Example:
        >>> class Decay(WeightSchedule):
        ...     def value(self, t):
        ...         return {"main": 1.0, "aux": 0.5**t}
        >>> schedule = Decay(("main", "aux"))
        >>> schedule.step(); schedule.step()
        >>> schedule.weights()
        {'main': 1.0, 'aux': 0.25}
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


class TransitionSchedule(WeightSchedule):
    r"""Task weights that move from ``start`` to ``end`` as :math:`\beta(t)` falls from 1 to 0.

    .. math:: w(t) = \beta(t)\, w^\text{start} + (1 - \beta(t))\, w^\text{end}

    Subclasses give the formula :math:`\beta(t) \in [0, 1]` (:meth:`start_share`): how much of the
    start weights is still in effect at time :math:`t`. In the paper's two-task setting
    :math:`w^\text{start} = \{\text{reconstruction}: 1, \text{supervised}: 0\}` and
    :math:`w^\text{end}` the reverse, so :math:`\lambda_r(t) = \beta(t)` and
    :math:`\lambda_s(t) = 1 - \beta(t)`.

    :math:`w(t)` is a convex combination of the two end points, so when both lie on the simplex
    (every weight in :math:`[0, 1]`, weights summing to 1 — the paper's constraint, checked unless
    ``sum_to_one=False``) every :math:`w(t)` does too, for any number of tasks. The constraint
    matters for comparisons: scaling all weights up would act like a larger learning rate.

    Args:
        start: task weights at :math:`\beta = 1` (usually :math:`t = 0`).
        end: task weights at :math:`\beta = 0`; same task names as ``start``.
        unit: whether ``t`` counts epochs or iterations.
        sum_to_one: require each end point to have weights in :math:`[0, 1]` summing to 1;
            with ``False`` any finite weights :math:`\ge 0` are accepted.

    Example:
        >>> class Halfway(TransitionSchedule):
        ...     def start_share(self, t):
        ...         return 0.5
        >>> Halfway({"a": 1.0, "b": 0.0}, {"a": 0.0, "b": 1.0}).weights()
        {'a': 0.5, 'b': 0.5}
    """

    def __init__(
        self,
        start: Mapping[str, float],
        end: Mapping[str, float],
        *,
        unit: ScheduleUnit = "epoch",
        sum_to_one: bool = True,
    ) -> None:
        if set(start) != set(end):
            raise ValueError(f"start and end weights must name the same tasks, got {sorted(start)} and {sorted(end)}")
        super().__init__(tuple(start), unit)
        self.start = _checked_weights(start, "start", sum_to_one)
        checked_end = _checked_weights(end, "end", sum_to_one)
        self.end = {task: checked_end[task] for task in self.tasks}  # in the order of start

    @abstractmethod
    def start_share(self, t: float) -> float:
        r""":math:`\beta(t) \in [0, 1]`, the start weights' share at time :math:`t \ge 0` (pure)."""

    def value(self, t: float) -> dict[str, float]:
        if not (math.isfinite(t) and t >= 0):
            raise ValueError(f"schedule time t must be finite and >= 0, got {t}")
        beta = self.start_share(t)
        # Written as beta*start + (1-beta)*end rather than start + (1-beta)*(end-start) so that
        # the paper's 0/1 end points give lambda_r = beta and lambda_s = 1 - beta exactly.
        return {task: beta * self.start[task] + (1.0 - beta) * self.end[task] for task in self.tasks}

    def _formula_parameters(self) -> dict[str, float]:
        """The formula's parameters, for ``repr``."""
        return {}

    def __repr__(self) -> str:
        parameters = "".join(f"{name}={value!r}, " for name, value in self._formula_parameters().items())
        return f"{type(self).__name__}({parameters}start={self.start}, end={self.end}, unit={self.unit!r}, t={self.t})"


class StairsSchedule(TransitionSchedule):
    r"""``stairs_t1``, classic pre-training then fine-tuning: :math:`\beta(t) = [t < t_1]`.

    Paper's two tasks: :math:`\lambda_r(t) = 1, \lambda_s(t) = 0` for :math:`t < t_1`, then
    :math:`\lambda_r = 0, \lambda_s = 1` from :math:`t = t_1` on (so ``t1`` epochs of pure
    reconstruction at :math:`t = 0, \dots, t_1 - 1`).

    Args:
        t1: switching time, :math:`\ge 0` (``0`` means the end weights throughout).
        supervised, reconstruction: task names of the paper's two-task setting (defaults
            ``"class"`` and ``"reconstruction"``).
        start, end: general end points instead (see :class:`TransitionSchedule`).
        unit, sum_to_one: see :class:`TransitionSchedule`.

    Example:
        >>> stairs = StairsSchedule(t1=100)
        >>> stairs.value(99), stairs.value(100)
        ({'class': 0.0, 'reconstruction': 1.0}, {'class': 1.0, 'reconstruction': 0.0})
    """

    def __init__(
        self,
        t1: float,
        *,
        supervised: str | None = None,
        reconstruction: str | None = None,
        start: Mapping[str, float] | None = None,
        end: Mapping[str, float] | None = None,
        unit: ScheduleUnit = "epoch",
        sum_to_one: bool = True,
    ) -> None:
        if not (math.isfinite(t1) and t1 >= 0):
            raise ValueError(f"stairs: t1 must be finite and >= 0, got {t1}")
        self.t1 = float(t1)
        start, end = _end_points(supervised, reconstruction, start, end)
        super().__init__(start, end, unit=unit, sum_to_one=sum_to_one)

    def start_share(self, t: float) -> float:
        return 1.0 if t < self.t1 else 0.0

    def _formula_parameters(self) -> dict[str, float]:
        return {"t1": self.t1}


class AbridgedLinearSchedule(TransitionSchedule):
    r"""``lin_t1``: linear until :math:`t_1`, then saturated: :math:`\beta(t) = \max(0, 1 - t/t_1)`.

    Paper's two tasks: :math:`\lambda_r(t) = \max(0, 1 - t/t_1)` falls from 1 to 0 and
    :math:`\lambda_s(t) = \min(1, t/t_1)` rises from 0 to 1, reaching it at :math:`t = t_1`.

    Args:
        t1: time at which the end weights are reached, :math:`> 0`.
        supervised, reconstruction, start, end, unit, sum_to_one: as in :class:`StairsSchedule`.

    Example:
        >>> lin100 = AbridgedLinearSchedule(t1=100)
        >>> lin100.value(25), lin100.value(100) == lin100.value(4000)
        ({'class': 0.25, 'reconstruction': 0.75}, True)
    """

    def __init__(
        self,
        t1: float,
        *,
        supervised: str | None = None,
        reconstruction: str | None = None,
        start: Mapping[str, float] | None = None,
        end: Mapping[str, float] | None = None,
        unit: ScheduleUnit = "epoch",
        sum_to_one: bool = True,
    ) -> None:
        if not (math.isfinite(t1) and t1 > 0):
            raise ValueError(
                f"linear schedule: t1 must be finite and > 0, got {t1} "
                "(for the end weights from t = 0 use StairsSchedule(t1=0))"
            )
        self.t1 = float(t1)
        start, end = _end_points(supervised, reconstruction, start, end)
        super().__init__(start, end, unit=unit, sum_to_one=sum_to_one)

    def start_share(self, t: float) -> float:
        return max(0.0, 1.0 - t / self.t1)

    def _formula_parameters(self) -> dict[str, float]:
        return {"t1": self.t1}


class LinearSchedule(AbridgedLinearSchedule):
    r"""``lin``: linear over the whole run of ``total`` units, :math:`\beta(t) = \max(0, 1 - t/T)`.

    It is ``lin_T``: :math:`\lambda_r` goes from 1 at :math:`t = 0` towards 0 at :math:`t = T`, so
    the last unit of the run, :math:`t = T - 1`, still has :math:`\lambda_r = 1/T`.

    Args:
        total: number of units (epochs or iterations) of the run, :math:`T > 0`.
        supervised, reconstruction, start, end, unit, sum_to_one: as in :class:`StairsSchedule`.

    Example:
        >>> LinearSchedule(total=5000).value(2500)
        {'class': 0.5, 'reconstruction': 0.5}
    """

    def __init__(
        self,
        total: float,
        *,
        supervised: str | None = None,
        reconstruction: str | None = None,
        start: Mapping[str, float] | None = None,
        end: Mapping[str, float] | None = None,
        unit: ScheduleUnit = "epoch",
        sum_to_one: bool = True,
    ) -> None:
        if not (math.isfinite(total) and total > 0):
            raise ValueError(f"lin: total must be finite and > 0, got {total}")
        super().__init__(
            total,
            supervised=supervised,
            reconstruction=reconstruction,
            start=start,
            end=end,
            unit=unit,
            sum_to_one=sum_to_one,
        )
        self.total = float(total)

    def _formula_parameters(self) -> dict[str, float]:
        return {"total": self.total}


class ExponentialSchedule(TransitionSchedule):
    r"""``exp_σ``: exponential decay of the start weights, :math:`\beta(t) = e^{-t/\sigma}`.

    Paper's two tasks: :math:`\lambda_r(t) = e^{-t/\sigma}` and
    :math:`\lambda_s(t) = 1 - e^{-t/\sigma}`. At :math:`t = \sigma` the reconstruction weight is
    :math:`e^{-1} \approx 0.37` of its start value; the end weights are only approached.

    Args:
        sigma: the time constant ("slope") :math:`\sigma > 0`.
        supervised, reconstruction, start, end, unit, sum_to_one: as in :class:`StairsSchedule`.

    Example:
        >>> exp40 = ExponentialSchedule(sigma=40)
        >>> exp40.value(0)
        {'class': 0.0, 'reconstruction': 1.0}
        >>> round(exp40.value(40)["reconstruction"], 4)
        0.3679
    """

    def __init__(
        self,
        sigma: float,
        *,
        supervised: str | None = None,
        reconstruction: str | None = None,
        start: Mapping[str, float] | None = None,
        end: Mapping[str, float] | None = None,
        unit: ScheduleUnit = "epoch",
        sum_to_one: bool = True,
    ) -> None:
        if not (math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"exp: sigma must be finite and > 0, got {sigma}")
        self.sigma = float(sigma)
        start, end = _end_points(supervised, reconstruction, start, end)
        super().__init__(start, end, unit=unit, sum_to_one=sum_to_one)

    def start_share(self, t: float) -> float:
        return math.exp(-t / self.sigma)

    def _formula_parameters(self) -> dict[str, float]:
        return {"sigma": self.sigma}


_PAPER_NAME = re.compile(r"(?P<kind>stairs|lin|exp)_?(?P<number>\d+(?:\.\d*)?)?")


def schedule_from_name(
    name: str,
    *,
    total: float | None = None,
    time_scale: float = 1.0,
    supervised: str = "class",
    reconstruction: str = "reconstruction",
    unit: ScheduleUnit = "epoch",
) -> TransitionSchedule:
    r"""The paper's schedule called ``name``: ``"stairs100"``, ``"lin100"``, ``"lin"``, ``"exp40"``.

    An underscore is allowed (``"exp_40"``). The number is ``t1`` for ``stairs``/``lin`` and
    ``σ`` for ``exp``, in the paper's epochs; it is multiplied by ``time_scale``. Plain ``"lin"``
    spans the whole run and needs ``total`` (not scaled: it is already the run's length).

    **Reduced runs.** The paper trains for :data:`PAPER_EPOCHS` = 5000 epochs. To keep a
    schedule's *shape* in a run of ``E`` epochs — the weights at a given fraction of the run are
    the paper's — pass ``total=E, time_scale=E / PAPER_EPOCHS``; ``"exp40"`` in a 500-epoch run
    then has ``σ = 4``. A short run sees few epochs of the transition, so ``unit="iteration"``
    with ``total`` and ``time_scale = total / PAPER_EPOCHS`` in iterations gives a smoother
    curve (``time_scale`` thus also converts epochs to iterations).

    Args:
        name: the paper's name of the schedule (case-insensitive).
        total: length of the run in ``unit``\ s; required for ``"lin"``.
        time_scale: factor applied to the named ``t1`` or ``σ``, :math:`> 0`.
        supervised, reconstruction: task names.
        unit: whether ``t`` counts epochs or iterations.

    Example:
        >>> exp40 = schedule_from_name("exp40")
        >>> type(exp40).__name__, exp40.sigma, exp40.tasks
        ('ExponentialSchedule', 40.0, ('class', 'reconstruction'))
        >>> schedule_from_name("stairs100", total=500, time_scale=500 / PAPER_EPOCHS).t1
        10.0
    """
    match = _PAPER_NAME.fullmatch(name.strip().lower())
    if match is None or (match["kind"] != "lin" and match["number"] is None):
        raise ValueError(
            f"unknown schedule name {name!r}; expected stairs<t1>, lin<t1>, lin or exp<sigma>, "
            "e.g. 'stairs100', 'lin100', 'lin', 'exp40'"
        )
    if not (math.isfinite(time_scale) and time_scale > 0):
        raise ValueError(f"time_scale must be finite and > 0, got {time_scale}")
    kind = match["kind"]
    if kind == "lin" and match["number"] is None:
        if total is None:
            raise ValueError("schedule 'lin' spans the whole run: pass total= (number of units)")
        return LinearSchedule(total, supervised=supervised, reconstruction=reconstruction, unit=unit)
    number = float(match["number"]) * time_scale
    if kind == "stairs":
        return StairsSchedule(number, supervised=supervised, reconstruction=reconstruction, unit=unit)
    if kind == "lin":
        return AbridgedLinearSchedule(number, supervised=supervised, reconstruction=reconstruction, unit=unit)
    return ExponentialSchedule(number, supervised=supervised, reconstruction=reconstruction, unit=unit)


def _end_points(
    supervised: str | None,
    reconstruction: str | None,
    start: Mapping[str, float] | None,
    end: Mapping[str, float] | None,
) -> tuple[Mapping[str, float], Mapping[str, float]]:
    """The paper's two-task end points from task names, or the given general end points."""
    if start is None and end is None:
        supervised = "class" if supervised is None else supervised
        reconstruction = "reconstruction" if reconstruction is None else reconstruction
        return {supervised: 0.0, reconstruction: 1.0}, {supervised: 1.0, reconstruction: 0.0}
    if start is None or end is None:
        raise ValueError("give both start= and end= weights, or neither")
    if supervised is not None or reconstruction is not None:
        raise ValueError("give either task names (supervised=, reconstruction=) or end points (start=, end=), not both")
    return start, end


def _checked_weights(weights: Mapping[str, float], which: str, sum_to_one: bool) -> dict[str, float]:
    """``weights`` as floats, after checking the paper's constraint (or just >= 0)."""
    checked = {task: float(w) for task, w in weights.items()}
    for task, w in checked.items():
        if not (math.isfinite(w) and w >= 0):
            raise ValueError(f"{which} weight of task '{task}' must be finite and >= 0, got {w}")
        if sum_to_one and w > 1:
            raise ValueError(f"{which} weight of task '{task}' must be in [0, 1], got {w}")
    total = sum(checked.values())
    if sum_to_one and not math.isclose(total, 1.0, rel_tol=0, abs_tol=1e-9):
        raise ValueError(
            f"{which} weights must sum to 1, got {checked} summing to {total} "
            "(pass sum_to_one=False to lift the paper's constraint)"
        )
    return checked
