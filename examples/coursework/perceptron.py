r"""Rosenblatt's perceptron for binary classification, in numpy only.

The coursework asks for ``predict(x, w, b)`` and ``optimize(x, y)`` written without a deep-learning
framework, so this module imports nothing but numpy. Labels are :math:`y \in \{-1, +1\}`.

The model is :math:`\hat y = \operatorname{sign}(w \cdot x + b)` and the learning rule, applied to
one example at a time, is

.. math::

    \text{if } y_i (w \cdot x_i + b) \le 0: \quad w \leftarrow w + \eta\, y_i x_i, \qquad b \leftarrow b + \eta\, y_i,

i.e. a misclassified point (or one on the boundary) pulls the hyperplane towards its own side.
On linearly separable data this stops after finitely many updates (Novikoff's theorem).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["PerceptronResult", "error_rate", "optimize", "perceptron_update", "predict"]


class PerceptronResult(NamedTuple):
    """What :func:`optimize` returns; unpacks as ``w, b, errors = optimize(x, y)``."""

    w: np.ndarray
    """Weights, shape ``(D,)``."""
    b: float
    """Bias."""
    errors: list[float]
    """Training error rate before training (entry 0) and after each pass over the data."""


def _check_xy(x: np.ndarray, y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"x must be (N, D), got shape {x.shape}; flatten images first")
    if y is None:
        return x, None
    y = np.asarray(y)
    if y.shape != (x.shape[0],):
        raise ValueError(f"y must be ({x.shape[0]},) to match x, got shape {y.shape}")
    if not np.isin(y, (-1, 1)).all():
        raise ValueError(f"labels must be -1 or +1, got values {np.unique(y)[:5].tolist()}")
    return x, y.astype(np.float64)


def predict(x: np.ndarray, w: np.ndarray, b: float) -> np.ndarray:
    r"""Predictions :math:`\operatorname{sign}(x w + b) \in \{-1, +1\}` for each row of ``x``.

    A score of exactly 0 is predicted as :math:`+1`, so every prediction is a valid label.

    Args:
        x: ``(N, D)`` inputs (or ``(D,)`` for one input).
        w: ``(D,)`` weights.
        b: bias.

    Example:
        >>> predict(np.array([[1.0, 2.0], [-3.0, 0.0]]), np.array([1.0, 0.0]), 0.5)
        array([ 1, -1])
    """
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    if x.shape[-1] != w.shape[0]:
        raise ValueError(f"x has {x.shape[-1]} features but w has {w.shape[0]}")
    return np.where(x @ w + b >= 0, 1, -1)


def error_rate(x: np.ndarray, y: np.ndarray, w: np.ndarray, b: float) -> float:
    """Fraction of rows of ``x`` that :func:`predict` gets wrong.

    Example:
        >>> error_rate(np.array([[1.0], [-1.0]]), np.array([1, 1]), np.array([1.0]), 0.0)
        0.5
    """
    return float(np.mean(predict(x, w, b) != np.asarray(y)))


def perceptron_update(
    w: np.ndarray, b: float, x_i: np.ndarray, y_i: float, lr: float = 1.0
) -> tuple[np.ndarray, float, bool]:
    r"""One step of the perceptron rule on the example ``(x_i, y_i)``.

    Returns ``(w', b', updated)``: if :math:`y_i (w \cdot x_i + b) \le 0` then
    :math:`w' = w + \eta y_i x_i`, :math:`b' = b + \eta y_i`, else ``w, b`` unchanged.
    ``w`` is not modified in place.

    Example:
        >>> w, b, updated = perceptron_update(np.zeros(2), 0.0, np.array([1.0, 2.0]), -1)
        >>> w.tolist(), b, updated
        ([-1.0, -2.0], -1.0, True)
    """
    if y_i * (float(np.dot(w, x_i)) + b) <= 0:
        return w + lr * y_i * x_i, b + lr * y_i, True
    return w, b, False


def optimize(
    x: np.ndarray,
    y: np.ndarray,
    *,
    lr: float = 1.0,
    max_iter: int = 100,
    seed: int = 0,
    init: tuple[np.ndarray, float] | None = None,
    shuffle: bool = True,
    pocket: bool = True,
) -> PerceptronResult:
    r"""Train a perceptron with the online rule of :func:`perceptron_update`.

    One *iteration* is a pass over all examples (in a fresh random order when ``shuffle``),
    updating after every misclassified one. Training stops after a pass with no mistakes
    (training error 0) or after ``max_iter`` passes.

    On data that is not linearly separable the last iterate keeps oscillating, so with
    ``pocket=True`` the returned ``w, b`` are those of the pass with the lowest training error
    (Gallant's pocket algorithm); ``errors`` always records every pass.

    Args:
        x: ``(N, D)`` inputs.
        y: ``(N,)`` labels in ``{-1, +1}``.
        lr: the step :math:`\eta` (with zero init it only rescales ``w``; it matters with a
            random init).
        max_iter: maximum number of passes.
        seed: seeds the random init :math:`w, b \sim \mathcal N(0, 0.01^2)` and the shuffling.
        init: ``(w0, b0)`` to start from instead of the random init.
        shuffle: visit examples in a new random order each pass (else in the given order).
        pocket: return the best pass's ``w, b`` instead of the last.

    Example:
        >>> x = np.array([[2.0, 1.0], [1.0, 3.0], [-1.0, -2.0], [-2.0, 0.5]])
        >>> y = np.array([1, 1, -1, -1])
        >>> w, b, errors = optimize(x, y, seed=0)
        >>> errors[-1], bool((predict(x, w, b) == y).all())
        (0.0, True)
    """
    x, y = _check_xy(x, y)
    assert y is not None
    if max_iter < 0:
        raise ValueError(f"max_iter must be >= 0, got {max_iter}")
    rng = np.random.default_rng(seed)
    if init is None:
        w = rng.normal(0.0, 0.01, size=x.shape[1])
        b = float(rng.normal(0.0, 0.01))
    else:
        w = np.asarray(init[0], dtype=np.float64).copy()
        b = float(init[1])
        if w.shape != (x.shape[1],):
            raise ValueError(f"init weights must have shape ({x.shape[1]},), got {w.shape}")
    errors = [error_rate(x, y, w, b)]
    best = (errors[0], w, b)
    iteration = 0
    while errors[-1] > 0 and iteration < max_iter:
        order = rng.permutation(len(x)) if shuffle else np.arange(len(x))
        for i in order:
            w, b, _ = perceptron_update(w, b, x[i], y[i], lr)
        errors.append(error_rate(x, y, w, b))
        if errors[-1] < best[0]:
            best = (errors[-1], w, b)
        iteration += 1
    if pocket:
        _, w, b = best
    return PerceptronResult(w, float(b), errors)
