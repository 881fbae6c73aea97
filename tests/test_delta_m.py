"""Δm and mean rank: definitions, properties and errors."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtlkit.metrics import delta_m, mean_rank

positive = st.floats(1e-3, 1e3)


@given(st.dictionaries(st.sampled_from("abcdef"), st.tuples(positive, positive, st.booleans()), min_size=1))
def test_delta_m_matches_the_definition_and_its_symmetries(rows):
    results = {k: v[0] for k, v in rows.items()}
    base = {k: v[1] for k, v in rows.items()}
    up = {k: v[2] for k, v in rows.items()}
    expected = 100 / len(rows) * sum((1 if up[k] else -1) * (results[k] - base[k]) / base[k] for k in rows)
    assert delta_m(results, base, up) == pytest.approx(expected)
    assert delta_m(base, base, up) == 0.0
    flipped = {k: not v for k, v in up.items()}
    assert delta_m(results, base, flipped) == pytest.approx(-delta_m(results, base, up))
    scaled = delta_m({k: 7 * v for k, v in results.items()}, {k: 7 * v for k, v in base.items()}, up)
    assert scaled == pytest.approx(delta_m(results, base, up))


def test_delta_m_errors_are_named():
    with pytest.raises(ValueError, match="baseline is 0"):
        delta_m({"a": 1.0}, {"a": 0.0}, {"a": True})
    with pytest.raises(ValueError, match="baselines"):
        delta_m({"a": 1.0}, {"b": 1.0}, {"a": True})
    with pytest.raises(ValueError, match="higher_is_better"):
        delta_m({"a": 1.0}, {"a": 1.0}, {})


@given(st.lists(st.lists(st.integers(0, 5), min_size=3, max_size=3), min_size=1, max_size=6), st.data())
def test_mean_rank_bounds_sum_and_permutation(values, data):
    methods = [f"m{i}" for i in range(len(values))]
    directions = {k: data.draw(st.booleans()) for k in ("x", "y", "z")}
    table = {m: dict(zip("xyz", map(float, row), strict=True)) for m, row in zip(methods, values, strict=True)}
    ranks = mean_rank(table, directions)
    n = len(methods)
    assert all(1 <= r <= n for r in ranks.values())
    assert sum(ranks.values()) == pytest.approx(n * (n + 1) / 2)
    shuffled = dict(reversed(list(table.items())))
    assert mean_rank(shuffled, directions) == ranks


def test_mean_rank_hand_example():
    table = {"A": {"acc": 0.9, "err": 0.3}, "B": {"acc": 0.8, "err": 0.1}, "C": {"acc": 0.8, "err": 0.2}}
    assert mean_rank(table, {"acc": True, "err": False}) == {"A": 2.0, "B": 1.75, "C": 2.25}
    with pytest.raises(ValueError, match="'B'"):
        mean_rank({"A": {"acc": 1.0}, "B": {}}, {"acc": True})
    with pytest.raises(ValueError, match="at least one metric"):
        mean_rank({"A": {}}, {})
