"""Shallow matrix MTL baselines (paper App. A): optimality, limits, monotone objectives."""

from __future__ import annotations

import numpy as np
import pytest

from mtlkit.shallow import GOMTL, ConvexMTFL, RegularizedMTL, SingleTaskRidge, pca_features


def _related_tasks(n: int = 60, d: int = 8, tasks: int = 5, rank: int = 2, seed: int = 0):
    """Shared X, ±1 labels from a rank-2 task matrix: tasks that MTL should help."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(d, rank)) @ rng.normal(size=(rank, tasks))
    X = rng.normal(size=(n, d))
    Y = np.where(X @ weights + 0.3 * rng.normal(size=(n, tasks)) >= 0, 1.0, -1.0)
    return X, Y, weights


def test_regularized_mtl_is_a_stationary_point_of_its_objective() -> None:
    X, Y, _ = _related_tasks()
    model = RegularizedMTL(lambda_task=3.0, lambda_shared=0.5, fit_intercept=False).fit(X, Y)
    mu = 3.0 / Y.shape[1]
    residuals = Y - X @ model.weights_
    gradient_common = -2 * X.T @ residuals.sum(axis=1) + 2 * 0.5 * model.common_
    gradient_offsets = -2 * X.T @ residuals + 2 * mu * model.offsets_
    assert np.abs(gradient_common).max() < 1e-8 and np.abs(gradient_offsets).max() < 1e-8


def test_regularized_mtl_limits() -> None:
    X, Y, _ = _related_tasks()
    tied = RegularizedMTL(lambda_task=1e9, lambda_shared=1.0).fit(X, Y).weights_
    assert np.abs(tied - tied[:, :1]).max() < 1e-5  # every task uses w_0
    independent = RegularizedMTL(lambda_task=2.0 * Y.shape[1], lambda_shared=1e9).fit(X, Y).weights_
    ridge = SingleTaskRidge(alpha=2.0).fit(X, Y).weights_
    np.testing.assert_allclose(independent, ridge, atol=1e-6)


@pytest.mark.parametrize("model", [ConvexMTFL(gamma=5.0, n_iter=30), GOMTL(n_latent=2, mu=1.0, lam=0.5, n_iter=15)])
def test_alternating_objectives_never_increase(model) -> None:
    X, Y, _ = _related_tasks()
    model.fit(X, Y)
    history = np.array(model.objective_history_)
    assert len(history) >= 2 and np.all(np.diff(history) <= 1e-7 * history[:-1])


def test_mtfl_large_gamma_learns_few_shared_directions() -> None:
    X, Y, _ = _related_tasks(tasks=6)
    weights = ConvexMTFL(gamma=40.0, n_iter=100).fit(X, Y).weights_
    singular_values = np.linalg.svd(weights, compute_uv=False)
    assert singular_values[2] < 0.05 * singular_values[0]


def test_gomtl_weights_factor_through_the_latent_basis() -> None:
    X, Y, _ = _related_tasks()
    model = GOMTL(n_latent=2, mu=0.5, lam=0.5).fit(X, Y)
    assert model.basis_.shape == (8, 2) and model.codes_.shape == (2, 5)
    np.testing.assert_allclose(model.weights_, model.basis_ @ model.codes_)
    with pytest.raises(ValueError, match="n_latent=9"):
        GOMTL(n_latent=9).fit(X, Y)


@pytest.mark.parametrize(
    "model",
    [
        SingleTaskRidge(1.0),
        RegularizedMTL(5.0, 1.0),
        ConvexMTFL(2.0, n_iter=20),
        GOMTL(2, 0.5, 0.5, n_iter=10),
    ],
)
def test_shared_and_per_task_inputs_agree_and_classify(model) -> None:
    # A shared X takes the fast paths (one Gram matrix, Sylvester L step); five copies take the
    # per-task loop, the oracle.
    X, Y, _ = _related_tasks(n=120, seed=1)
    train, test = slice(0, 80), slice(80, 120)
    shared_scores = model.fit(X[train], Y[train]).decision_function(X[test])
    copies = [X[train].copy() for _ in range(5)]
    per_task_scores = model.fit(copies, list(Y[train].T)).decision_function([X[test]] * 5)
    np.testing.assert_allclose(shared_scores, np.stack(per_task_scores, axis=1), atol=1e-8)
    accuracy = (model.predict(X[test]) == Y[test]).mean()
    assert accuracy > 0.75


def test_interface_errors() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        SingleTaskRidge().predict(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="labels must be ±1"):
        SingleTaskRidge().fit(np.zeros((2, 2)), np.array([[0.0], [1.0]]))
    with pytest.raises(ValueError, match=r"needs Y of shape \(N, T\)"):
        SingleTaskRidge().fit(np.zeros((3, 2)), np.ones(3))


def test_pca_features_are_centred_projections() -> None:
    rng = np.random.default_rng(0)
    train = rng.normal(size=(30, 6)) @ np.diag([5, 1, 1, 0.1, 0.1, 0.1])
    projected, _ = pca_features(train, train[:2], 2)
    assert projected.var(axis=0)[0] > projected.var(axis=0)[1] > 0.5
