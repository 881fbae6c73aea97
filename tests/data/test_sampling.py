"""Properties of the seeded index selection (pure functions, hypothesis-tested)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mtlkit.data import balanced_sample, group_split, stratified_fraction

label_arrays = st.lists(st.integers(0, 6), min_size=1, max_size=300).map(np.array)
fractions = st.floats(0.001, 1.0)
seeds = st.integers(0, 2**32 - 1)


@settings(max_examples=60, deadline=None)
@given(labels=label_arrays, fraction=fractions, seed=seeds)
def test_fraction_is_stratified(labels: np.ndarray, fraction: float, seed: int) -> None:
    idx = stratified_fraction(labels, fraction, seed)
    assert len(np.unique(idx)) == len(idx) and np.all(np.diff(idx) > 0)
    for c in np.unique(labels):
        n_c = int((labels == c).sum())
        k_c = int((labels[idx] == c).sum())
        # Per class: the rounded share, at least one, never more than exist.
        assert k_c == min(n_c, max(1, int(np.floor(fraction * n_c + 0.5))))
        if fraction * n_c >= 0.5:  # class proportions kept up to rounding
            assert abs(k_c - fraction * n_c) <= 0.5 + 1e-9


@settings(max_examples=60, deadline=None)
@given(labels=label_arrays, f1=fractions, f2=fractions, seed=seeds)
def test_fraction_is_seed_stable_and_nested(labels: np.ndarray, f1: float, f2: float, seed: int) -> None:
    small, large = sorted((f1, f2))
    a = stratified_fraction(labels, small, seed)
    np.testing.assert_array_equal(a, stratified_fraction(labels, small, seed))
    assert set(a) <= set(stratified_fraction(labels, large, seed))


def test_fraction_depends_on_seed() -> None:
    labels = np.repeat(np.arange(10), 100)
    assert not np.array_equal(stratified_fraction(labels, 0.1, seed=0), stratified_fraction(labels, 0.1, seed=1))


@settings(max_examples=60, deadline=None)
@given(per_class=st.integers(5, 40), k=st.integers(1, 8), n=st.integers(0, 40), seed=seeds)
def test_balanced_sample_counts(per_class: int, k: int, n: int, seed: int) -> None:
    labels = np.repeat(np.arange(k), per_class)
    n = min(n, per_class * k)
    idx = balanced_sample(labels, n, seed)
    counts = np.bincount(labels[idx], minlength=k)
    assert counts.sum() == n and counts.max() - counts.min() <= 1
    np.testing.assert_array_equal(idx, balanced_sample(labels, n, seed))


@settings(max_examples=60, deadline=None)
@given(
    groups=st.lists(st.integers(0, 30), min_size=2, max_size=200).map(np.array),
    test_fraction=st.floats(0.0, 0.9),
    seed=seeds,
)
def test_group_split_keeps_groups_whole(groups: np.ndarray, test_fraction: float, seed: int) -> None:
    train, test = group_split(groups, test_fraction, seed)
    assert set(groups[train]).isdisjoint(groups[test])
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(len(groups)))
    n_groups = len(np.unique(groups))
    expected = int(np.floor(test_fraction * n_groups + 0.5))
    assert len(np.unique(groups[test])) == (max(1, expected) if test_fraction > 0 else 0)
