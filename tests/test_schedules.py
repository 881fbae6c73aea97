"""Properties of the paper's weight schedules (Belharbi et al. 2016, Sec. 3.2)."""

from __future__ import annotations

import math
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtlkit.schedules import (
    PAPER_EPOCHS,
    AbridgedLinearSchedule,
    ConstantWeights,
    ExponentialSchedule,
    LinearSchedule,
    StairsSchedule,
    TransitionSchedule,
    schedule_from_name,
)

SUP, REC = "class", "reconstruction"
times = st.floats(min_value=0, max_value=1e5, allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=1e-3, max_value=1e4, allow_nan=False, allow_infinity=False)


@st.composite
def paper_schedules(draw: st.DrawFn) -> TransitionSchedule:
    """Any of the four paper schedules with a random parameter."""
    kind = draw(st.sampled_from(["stairs", "lin_t1", "lin", "exp"]))
    parameter = draw(positive)
    if kind == "stairs":
        return StairsSchedule(parameter)
    if kind == "lin_t1":
        return AbridgedLinearSchedule(parameter)
    if kind == "lin":
        return LinearSchedule(parameter)
    return ExponentialSchedule(parameter)


@st.composite
def simplex_points(draw: st.DrawFn, tasks: tuple[str, ...]) -> dict[str, float]:
    """Weights in [0, 1] summing to 1 (up to rounding) over ``tasks``."""
    raw = draw(st.lists(st.floats(0.0, 1.0), min_size=len(tasks), max_size=len(tasks)))
    total = sum(raw)
    if total == 0:
        return {task: 1.0 / len(tasks) for task in tasks}
    return {task: r / total for task, r in zip(tasks, raw, strict=True)}


@settings(max_examples=60, deadline=None)
@given(schedule=paper_schedules(), t=times)
def test_paper_schedules_stay_in_unit_interval_and_sum_to_one(schedule: TransitionSchedule, t: float) -> None:
    w = schedule.value(t)
    assert set(w) == {SUP, REC}
    assert 0.0 <= w[SUP] <= 1.0 and 0.0 <= w[REC] <= 1.0
    assert math.isclose(w[SUP] + w[REC], 1.0, abs_tol=1e-12)


@settings(max_examples=60, deadline=None)
@given(schedule=paper_schedules(), t=times, dt=times)
def test_paper_schedules_move_weight_from_reconstruction_to_supervised(
    schedule: TransitionSchedule, t: float, dt: float
) -> None:
    # "the importance of the main task is increased and [that] of the secondary task is decreased"
    now, later = schedule.value(t), schedule.value(t + dt)
    assert later[REC] <= now[REC]
    assert later[SUP] >= now[SUP]


@settings(max_examples=60, deadline=None)
@given(schedule=paper_schedules())
def test_paper_schedules_start_with_reconstruction_only(schedule: TransitionSchedule) -> None:
    # Every paper schedule starts at lambda_r = 1 except stairs_0, which is supervised throughout.
    expected = 0.0 if isinstance(schedule, StairsSchedule) and schedule.t1 == 0 else 1.0
    assert schedule.value(0)[REC] == expected


@settings(max_examples=50, deadline=None)
@given(t1=positive, t=times)
def test_stairs_switches_exactly_at_t1(t1: float, t: float) -> None:
    stairs = StairsSchedule(t1)
    before = t < t1
    assert stairs.value(t) == ({SUP: 0.0, REC: 1.0} if before else {SUP: 1.0, REC: 0.0})
    assert stairs.value(t1) == {SUP: 1.0, REC: 0.0}


@settings(max_examples=50, deadline=None)
@given(t1=positive, fraction=st.floats(0.0, 1.0), extra=times)
def test_abridged_linear_is_linear_then_saturates_at_t1(t1: float, fraction: float, extra: float) -> None:
    lin = AbridgedLinearSchedule(t1)
    assert math.isclose(lin.value(fraction * t1)[SUP], fraction, abs_tol=1e-12)
    assert lin.value(t1) == {SUP: 1.0, REC: 0.0}
    assert lin.value(t1 + extra) == {SUP: 1.0, REC: 0.0}


@settings(max_examples=30, deadline=None)
@given(total=st.integers(1, 10_000))
def test_lin_spans_the_whole_run(total: int) -> None:
    lin = LinearSchedule(total)
    assert lin.value(0) == {SUP: 0.0, REC: 1.0}
    assert math.isclose(lin.value(total - 1)[REC], 1.0 / total, abs_tol=1e-12)
    assert lin.value(total) == {SUP: 1.0, REC: 0.0}


@settings(max_examples=50, deadline=None)
@given(sigma=positive, r0=st.floats(0.0, 1.0), t=times)
def test_exponential_reaches_one_over_e_of_its_start_at_sigma(sigma: float, r0: float, t: float) -> None:
    schedule = ExponentialSchedule(sigma, start={SUP: 1 - r0, REC: r0}, end={SUP: 1.0, REC: 0.0})
    assert math.isclose(schedule.value(sigma)[REC], r0 * math.exp(-1), rel_tol=1e-12, abs_tol=1e-15)
    # exp(-t/sigma) is the whole law, not just one point.
    assert math.isclose(schedule.value(t)[REC], r0 * math.exp(-t / sigma), rel_tol=1e-12, abs_tol=1e-15)


@settings(max_examples=50, deadline=None)
@given(data=st.data(), n_tasks=st.integers(1, 5), t=times, sigma=positive)
def test_any_number_of_tasks_stays_on_the_simplex(data: st.DataObject, n_tasks: int, t: float, sigma: float) -> None:
    tasks = tuple(f"task{i}" for i in range(n_tasks))
    start, end = data.draw(simplex_points(tasks)), data.draw(simplex_points(tasks))
    w = ExponentialSchedule(sigma, start=start, end=end).value(t)
    assert all(0.0 <= w[task] <= 1.0 + 1e-12 for task in tasks)
    assert math.isclose(sum(w.values()), 1.0, abs_tol=1e-9)
    for task in tasks:  # each weight lies between its two end points
        low, high = sorted((start[task], end[task]))
        assert low - 1e-12 <= w[task] <= high + 1e-12


def test_stairs_is_pretraining_then_fine_tuning_at_the_level_of_weights() -> None:
    stairs = StairsSchedule(t1=3)
    seen = []
    for _ in range(6):
        seen.append(stairs.weights())
        stairs.step()
    assert seen[:3] == [{SUP: 0.0, REC: 1.0}] * 3  # only the reconstruction loss counts
    assert seen[3:] == [{SUP: 1.0, REC: 0.0}] * 3  # only the supervised loss counts


def test_weights_follow_the_clock_and_the_clock_checkpoints() -> None:
    schedule = ExponentialSchedule(sigma=2.0, unit="iteration")
    for _ in range(5):
        schedule.step()
    assert schedule.weights() == schedule.value(5)
    resumed = ExponentialSchedule(sigma=2.0, unit="iteration")
    resumed.load_state_dict(schedule.state_dict())
    assert resumed.weights() == schedule.weights()


def test_value_is_pure() -> None:
    schedule = AbridgedLinearSchedule(t1=10)
    schedule.value(7)
    assert schedule.t == 0 and schedule.weights() == {SUP: 0.0, REC: 1.0}


def test_custom_task_names() -> None:
    schedule = StairsSchedule(1, supervised="digit", reconstruction="dae")
    assert schedule.tasks == ("digit", "dae")
    assert schedule.value(0) == {"digit": 0.0, "dae": 1.0}


def test_coursework_fixed_lambda_is_a_constant_schedule() -> None:
    lam = 0.3
    assert ConstantWeights({"item": lam, "group": 1 - lam}).value(1234) == {
        "item": 0.3,
        "group": 0.7,
    }


@pytest.mark.parametrize(
    ("name", "expected_type", "parameter", "value"),
    [
        ("stairs100", StairsSchedule, "t1", 100.0),
        ("lin100", AbridgedLinearSchedule, "t1", 100.0),
        ("lin_100", AbridgedLinearSchedule, "t1", 100.0),
        ("exp40", ExponentialSchedule, "sigma", 40.0),
        ("EXP_2.5", ExponentialSchedule, "sigma", 2.5),
        ("lin", LinearSchedule, "total", 5000.0),
    ],
)
def test_schedule_from_name_parses_the_papers_names(
    name: str, expected_type: type, parameter: str, value: float
) -> None:
    schedule = schedule_from_name(name, total=5000)
    assert type(schedule) is expected_type
    assert getattr(schedule, parameter) == value


@settings(max_examples=30, deadline=None)
@given(epochs=st.integers(10, 5000), fraction=st.floats(0.0, 1.0))
def test_time_scale_keeps_the_shape_of_a_reduced_run(epochs: int, fraction: float) -> None:
    paper = schedule_from_name("exp40")
    reduced = schedule_from_name("exp40", total=epochs, time_scale=epochs / PAPER_EPOCHS)
    at_paper, at_reduced = paper.value(fraction * PAPER_EPOCHS), reduced.value(fraction * epochs)
    assert math.isclose(at_paper[REC], at_reduced[REC], rel_tol=1e-9, abs_tol=1e-12)


def test_time_scale_does_not_stretch_lin_over_the_run() -> None:
    assert schedule_from_name("lin", total=50, time_scale=50 / PAPER_EPOCHS).total == 50.0


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ExponentialSchedule(0), "sigma must be finite and > 0"),
        (lambda: ExponentialSchedule(-1.0), "sigma must be finite and > 0"),
        (lambda: StairsSchedule(-1), "t1 must be finite and >= 0"),
        (lambda: AbridgedLinearSchedule(0), "t1 must be finite and > 0"),
        (lambda: LinearSchedule(float("inf")), "total must be finite and > 0"),
        (
            lambda: StairsSchedule(1, start={"a": 1.0, "b": -0.5}, end={"a": 0, "b": 1}),
            "must be finite and >= 0",
        ),
        (
            lambda: StairsSchedule(1, start={"a": 1.5, "b": 0.0}, end={"a": 0, "b": 1}),
            r"must be in \[0, 1\]",
        ),
        (
            lambda: StairsSchedule(1, start={"a": 0.5, "b": 0.0}, end={"a": 0, "b": 1}),
            "must sum to 1",
        ),
        (lambda: StairsSchedule(1, start={"a": 1.0}, end={"b": 1.0}), "same tasks"),
        (lambda: StairsSchedule(1, start={"a": 1.0}), "both start= and end="),
        (lambda: StairsSchedule(1, supervised="y", start={"a": 1.0}, end={"a": 1.0}), "not both"),
        (lambda: schedule_from_name("cosine"), "unknown schedule name"),
        (lambda: schedule_from_name("exp"), "unknown schedule name"),
        (lambda: schedule_from_name("lin"), "pass total="),
        (lambda: schedule_from_name("exp40", time_scale=0), "time_scale must be"),
    ],
)
def test_clear_errors(make, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_negative_time_is_rejected() -> None:
    with pytest.raises(ValueError, match="t must be finite and >= 0"):
        ExponentialSchedule(40).value(-1)


def test_constraint_can_be_lifted() -> None:
    schedule = StairsSchedule(2, start={"a": 2.0, "b": 1.0}, end={"a": 0.0, "b": 3.0}, sum_to_one=False)
    assert schedule.value(0) == {"a": 2.0, "b": 1.0}
    assert schedule.value(2) == {"a": 0.0, "b": 3.0}


# --- the plot (paper Fig. 1) -------------------------------------------------------------------


def test_plot_schedules_draws_each_task_of_each_schedule_without_touching_clocks() -> None:
    figure = pytest.importorskip("matplotlib.figure")
    from mtlkit.schedules_plot import plot_schedules

    schedules = {"stairs3": StairsSchedule(3), "exp2": ExponentialSchedule(2)}
    ax = plot_schedules(schedules, 6, figure.Figure().add_subplot())
    labels = [line.get_label() for line in ax.lines]
    assert labels == [
        "stairs3: class",
        "stairs3: reconstruction",
        "exp2: class",
        "exp2: reconstruction",
    ]
    stairs_reconstruction = ax.lines[1].get_ydata()
    assert list(stairs_reconstruction) == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    assert ax.get_xlabel() == "epoch"
    assert all(schedule.t == 0 for schedule in schedules.values())


def test_plot_schedules_explains_a_missing_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    from mtlkit.schedules_plot import plot_schedules

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    with pytest.raises(ImportError, match=r"pip install 'mtlkit\[viz\]'"):
        plot_schedules([StairsSchedule(1)], 3)
