"""``plot_two_task_scores``: one errorbar point per method, arguments checked."""

import math

import pytest

from mtlkit.viz import plot_two_task_scores


def test_draws_one_point_per_method_at_its_means():
    fig = plot_two_task_scores({"EW": (95.0, 0.2, 93.0, 0.3), "UW": (96.0, 0.0, 92.0, 0.1)}, reference="EW")
    ax = fig.axes[0]
    assert len(ax.containers) == 2
    centres = [tuple(c.lines[0].get_xydata()[0]) for c in ax.containers]
    assert centres == [(95.0, 93.0), (96.0, 92.0)]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["EW", "UW"]


@pytest.mark.parametrize(
    ("points", "reference", "match"),
    [
        ({}, None, "at least one"),
        ({"EW": (1.0, 0.0, 2.0, 0.0)}, "UW", "reference='UW'"),
        ({"EW": (1.0, -0.1, 2.0, 0.0)}, None, "'EW'"),
        ({"EW": (math.nan, 0.0, 2.0, 0.0)}, None, "'EW'"),
        ({"EW": (1.0, 0.0, 2.0)}, None, "'EW'"),
    ],
)
def test_bad_points_are_named(points, reference, match):
    with pytest.raises(ValueError, match=match):
        plot_two_task_scores(points, reference=reference)
