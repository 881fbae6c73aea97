"""Plot of task-weight schedules over time, as in Fig. 1 of Belharbi et al. (2016).

Needs matplotlib (the ``viz`` extra), which is imported only when a plot is drawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from mtlkit.schedules import WeightSchedule

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_schedules"]


def plot_schedules(
    schedules: Mapping[str, WeightSchedule] | Sequence[WeightSchedule],
    num_steps: int,
    ax: Axes | None = None,
    *,
    tasks: Sequence[str] | None = None,
) -> Axes:
    """Draw :math:`w_\\text{task}(t)` for :math:`t = 0, \\dots, \\text{num\\_steps} - 1`.

    One colour per schedule, one line style per task. Weights are drawn as steps: the weight of
    unit :math:`t` holds during that whole epoch or iteration. Only the pure
    :meth:`~mtlkit.schedules.WeightSchedule.value` is used, so the schedules' clocks are left
    untouched.

    Args:
        schedules: schedules to draw, keyed by legend label (a sequence is labelled by class name).
        num_steps: number of units to draw, :math:`> 0`.
        ax: axes to draw on; a new figure if ``None``.
        tasks: tasks to draw (default: every task of each schedule).

    Returns:
        The axes drawn on.

    Raises:
        ImportError: matplotlib is missing (``pip install 'mtlkit[viz]'``).

    Example:
        >>> from matplotlib.figure import Figure
        >>> from mtlkit.schedules import PAPER_SCHEDULE_NAMES, schedule_from_name
        >>> paper = {name: schedule_from_name(name, total=5000) for name in PAPER_SCHEDULE_NAMES}
        >>> ax = plot_schedules(paper, 5000, Figure().add_subplot(), tasks=["reconstruction"])
        >>> [line.get_label() for line in ax.lines]
        ['stairs100', 'lin100', 'lin', 'exp40']
    """
    try:
        import matplotlib  # noqa: PLC0415, F401  (fail early, with the fix, before anything is drawn)
    except ImportError as error:
        raise ImportError("plot_schedules needs matplotlib; install it with: pip install 'mtlkit[viz]'") from error
    if num_steps <= 0:
        raise ValueError(f"num_steps must be > 0, got {num_steps}")
    labelled = (
        dict(schedules)
        if isinstance(schedules, Mapping)
        else {f"{type(s).__name__} {i}": s for i, s in enumerate(schedules)}
    )
    if not labelled:
        raise ValueError("no schedules to plot")
    if ax is None:
        import matplotlib.pyplot as plt  # noqa: PLC0415 - matplotlib is the optional [viz] extra

        _, ax = plt.subplots()
    line_styles = ["-", "--", ":", "-."]
    times = list(range(num_steps))
    for colour, (label, schedule) in enumerate(labelled.items()):
        drawn = schedule.tasks if tasks is None else tasks
        unknown = [task for task in drawn if task not in schedule.tasks]
        if unknown:
            raise ValueError(f"schedule {label!r} has no task(s) {unknown}; it has {schedule.tasks}")
        weights = [schedule.value(t) for t in times]
        for style, task in enumerate(drawn):
            ax.step(
                times,
                [w[task] for w in weights],
                where="post",
                color=f"C{colour}",
                linestyle=line_styles[style % len(line_styles)],
                label=label if len(drawn) == 1 else f"{label}: {task}",
            )
    units = {schedule.unit for schedule in labelled.values()}
    ax.set_xlabel(units.pop() if len(units) == 1 else "t")
    ax.set_ylabel("task weight")
    ax.legend()
    return ax
