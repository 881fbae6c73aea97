"""Seeded index selection: stratified fractions, class-balanced draws, group splits.

Pure numpy functions of labels and a seed, so they are easy to property-test
and give the same indices on every platform (``numpy.random.default_rng`` is
a PCG64 stream whose output numpy keeps stable across versions for
``permutation``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["balanced_sample", "group_split", "stratified_fraction"]


def _class_blocks(labels: np.ndarray, rng: np.random.Generator) -> dict[int, np.ndarray]:
    """Indices of each class, each block in a random order drawn from ``rng``.

    One permutation of all rows followed by a stable sort on the label gives
    every class its own random order with a single draw, which is what makes
    prefixes of these blocks nested across fractions.
    """
    perm = rng.permutation(len(labels))
    order = perm[np.argsort(labels[perm], kind="stable")]
    sorted_labels = labels[order]
    classes, starts = np.unique(sorted_labels, return_index=True)
    ends = np.append(starts[1:], len(order))
    return {int(c): order[s:e] for c, s, e in zip(classes, starts, ends, strict=True)}


def stratified_fraction(labels: np.ndarray, fraction: float, seed: int = 0, *, min_per_class: int = 1) -> np.ndarray:
    r"""Sorted indices of a class-stratified random ``fraction`` of the rows.

    Class :math:`c` with :math:`n_c` rows contributes
    :math:`k_c = \min(n_c, \max(m, \lfloor f n_c + \tfrac12 \rfloor))` rows,
    with :math:`m` = ``min_per_class``, so class proportions are preserved up
    to rounding and no class disappears at tiny fractions (0.1% of MNIST keeps
    6 images per digit). For one seed the subsets are **nested**: every row
    chosen at fraction :math:`f` is also chosen at any :math:`f' > f`.

    Args:
        labels: ``(N,)`` integer class labels.
        fraction: in ``(0, 1]``.
        seed: seed of the draw; the same seed gives the same indices.
        min_per_class: lower bound on :math:`k_c` (capped at :math:`n_c`).

    >>> y = np.repeat([0, 1], [10, 30])
    >>> np.bincount(y[stratified_fraction(y, 0.5, seed=3)]).tolist()
    [5, 15]
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    chosen = []
    for block in _class_blocks(labels, rng).values():
        n_c = len(block)
        k = min(n_c, max(min_per_class, int(np.floor(fraction * n_c + 0.5))))
        chosen.append(block[:k])
    return np.sort(np.concatenate(chosen)) if chosen else np.empty(0, dtype=np.int64)


def balanced_sample(labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of ``n`` rows spread as evenly as possible over the classes.

    Each of the :math:`K` classes gives ``n // K`` rows; the ``n % K`` left
    over go to classes picked at random (by the same seed). Rows within a
    class are random.

    Raises:
        ValueError: a class has fewer rows than its share.

    >>> y = np.repeat(np.arange(10), 50)
    >>> np.bincount(y[balanced_sample(y, 100, seed=0)]).tolist()
    [10, 10, 10, 10, 10, 10, 10, 10, 10, 10]
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    blocks = _class_blocks(labels, rng)
    k = len(blocks)
    if n < 0 or k == 0:
        raise ValueError(f"cannot draw {n} rows from {k} classes")
    share = np.full(k, n // k)
    share[rng.permutation(k)[: n % k]] += 1
    chosen = []
    for (cls, block), want in zip(blocks.items(), share, strict=True):
        if want > len(block):
            raise ValueError(f"class {cls} has {len(block)} rows, {want} requested")
        chosen.append(block[:want])
    return np.sort(np.concatenate(chosen))


def group_split(groups: np.ndarray, test_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split rows so that every group lies entirely on one side.

    A random ``test_fraction`` of the distinct groups (rounded, at least one
    when the fraction is positive) goes to the test side. Used to keep every
    notMNIST font on one side, since one font renders near-identical or
    identical glyphs (see ``notmnist/SOURCE.md``).

    Returns:
        ``(train_indices, test_indices)``, each sorted.

    >>> g = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    >>> tr, te = group_split(g, 0.25, seed=0)
    >>> len(te), set(g[tr]).isdisjoint(g[te])
    (2, True)
    """
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    groups = np.asarray(groups)
    unique = np.unique(groups)
    rng = np.random.default_rng(seed)
    n_test = int(np.floor(test_fraction * len(unique) + 0.5))
    if test_fraction > 0:
        n_test = max(1, n_test)
    test_groups = unique[rng.permutation(len(unique))[:n_test]]
    is_test = np.isin(groups, test_groups)
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)
