"""The numpy perceptron of coursework Task 2 (examples/coursework/perceptron.py)."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "coursework"))
from perceptron import error_rate, optimize, perceptron_update, predict


def separable(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Points labelled by a fixed hyperplane, with a margin of at least 0.1."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(4 * n, 5))
    score = x @ np.array([1.0, -2.0, 0.5, 0.0, 1.5]) + 0.3
    keep = np.abs(score) > 0.1
    return x[keep][:n], np.where(score[keep][:n] > 0, 1, -1)


def test_converges_to_zero_training_error_on_separable_data():
    x, y = separable()
    w, b, errors = optimize(x, y, max_iter=1000, seed=3)
    assert errors[-1] == 0.0
    assert error_rate(x, y, w, b) == 0.0
    assert (predict(x, w, b) == y).all()
    assert errors[0] > 0  # it really had to learn something


def test_one_pass_matches_hand_computed_updates():
    x = np.array([[1.0, 2.0], [2.0, -1.0], [-1.0, 1.0]])
    y = np.array([1, -1, -1])
    # By hand from w=(0,0), b=0, lr=0.5, in order:
    #  x1: 1·(0)=0 <= 0 -> w=(0.5, 1.0), b=0.5
    #  x2: -1·(1.0-1.0+0.5)=-0.5 <= 0 -> w=(0.5-1.0, 1.0+0.5)=(-0.5, 1.5), b=0.0
    #  x3: -1·(0.5+1.5+0)=-2 <= 0 -> w=(0.0, 1.0), b=-0.5
    w, b, errors = optimize(x, y, lr=0.5, max_iter=1, init=(np.zeros(2), 0.0), shuffle=False, pocket=False)
    np.testing.assert_array_equal(w, [0.0, 1.0])
    assert b == -0.5
    # After the pass: scores 1.5, -1.5, 0.5 -> predictions +1, -1, +1: one of three wrong.
    assert errors == [pytest.approx(2 / 3), pytest.approx(1 / 3)]


def test_update_leaves_correct_points_alone():
    w, b, updated = perceptron_update(np.array([1.0, 0.0]), 0.0, np.array([2.0, 5.0]), 1)
    assert not updated and w.tolist() == [1.0, 0.0] and b == 0.0


def test_predict_is_plus_or_minus_one_with_zero_as_plus():
    assert predict(np.zeros((3, 2)), np.zeros(2), 0.0).tolist() == [1, 1, 1]


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="-1 or \\+1"):
        optimize(np.zeros((2, 3)), np.array([0, 1]))
    with pytest.raises(ValueError, match="flatten"):
        optimize(np.zeros((2, 3, 3)), np.array([1, -1]))
    with pytest.raises(ValueError, match="features"):
        predict(np.zeros((2, 3)), np.zeros(4), 0.0)
