"""Classic shallow (matrix-based) multi-task classifiers, the baselines of DMTRL's App. A.

Each task ``t`` is a linear model ``f_t(x) = xᵀ w_t`` (plus an intercept) on given features — PCA
of the flattened images or a CNN's penultimate activations — and the models stack into a
``d × T`` matrix ``W``. The methods differ only in how they couple the columns of ``W``:

* :class:`SingleTaskRidge` — no coupling (the STL row of App. A, Table 1).
* :class:`RegularizedMTL` — Evgeniou & Pontil (2004): ``w_t = w_0 + v_t``, penalising the task
  offsets ``λ_task/T · Σ‖v_t‖²`` and the common model ``λ_shared · ‖w_0‖²``.
* :class:`ConvexMTFL` — Argyriou, Evgeniou & Pontil (2008), convex multi-task feature learning:
  ``min_{W, D ⪰ 0, tr D ≤ 1} Σ_t loss_t + γ · tr(Wᵀ D⁻¹ W)`` (equivalently a squared trace norm),
  solved by their alternating algorithm with the ε-perturbation that guarantees convergence.
* :class:`GOMTL` — Kumar & Daumé III (2012), grouping and overlap: ``W = L S`` with ``k`` latent
  basis tasks, ``min Σ_t loss_t + μ Σ_t ‖s_t‖₁ + λ ‖L‖_F²``, alternating a Lasso per task for
  ``S`` and a ridge-type linear system for ``L``.

**Loss.** App. A does not state the loss the baselines use. All four use the *squared loss on ±1
labels* (least-squares classification): it is the loss of Argyriou et al.'s experiments and of
GO-MTL's closed-form ``L`` step, and it gives every sub-problem a closed form, so the algorithms are
exactly those of the original papers. (Evgeniou & Pontil state theirs with the hinge loss; with
the squared loss their model is the same multi-task kernel ridge problem.) Labels are ``+1/−1``;
``predict`` returns the sign of the decision function.

**Inputs.** ``fit(X, Y)`` takes either one feature matrix shared by all tasks, ``X: (N, d)`` with
``Y: (N, T)``, or per-task data, ``X = [X_t (N_t, d)]`` with ``Y = [y_t (N_t,)]``. Everything is
NumPy float64.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "LinearMTLClassifier",
    "SingleTaskRidge",
    "RegularizedMTL",
    "ConvexMTFL",
    "GOMTL",
    "pca_features",
]

Array = NDArray[np.float64]
TaskData = tuple[list[Array], list[Array]]


def pca_features(train: ArrayLike, test: ArrayLike, n_components: int) -> tuple[Array, Array]:
    """Project flattened ``train``/``test`` rows on the top principal axes of centred ``train``.

    >>> rng = np.random.default_rng(0)
    >>> a, b = pca_features(rng.normal(size=(20, 5)), rng.normal(size=(3, 5)), 2)
    >>> a.shape, b.shape, bool(abs(a.mean(0)).max() < 1e-12)
    ((20, 2), (3, 2), True)
    """
    train = np.asarray(train, dtype=np.float64)
    train = train.reshape(train.shape[0], -1)
    test = np.asarray(test, dtype=np.float64)
    test = test.reshape(test.shape[0], -1)
    mean = train.mean(axis=0)
    _, _, components = np.linalg.svd(train - mean, full_matrices=False)
    axes = components[:n_components].T
    return (train - mean) @ axes, (test - mean) @ axes


class LinearMTLClassifier(ABC):
    """Common interface: ``fit(X, Y) -> self``, ``decision_function``, ``predict``.

    After ``fit``, ``weights_`` is the ``d × T`` matrix ``W`` (intercepts in ``intercepts_``) and
    ``objective_`` the final training objective.
    """

    def __init__(self, fit_intercept: bool = True) -> None:
        self.fit_intercept = fit_intercept
        self.weights_: Array | None = None
        self.intercepts_: Array | None = None
        self.objective_: float | None = None

    # ---------------------------------------------------------------------------- interface

    def fit(self, X: ArrayLike | Sequence[ArrayLike], Y: ArrayLike | Sequence[ArrayLike]) -> LinearMTLClassifier:
        """Fit all tasks jointly; see the module docstring for the accepted layouts."""
        features, labels = _as_task_data(X, Y)
        if self.fit_intercept:
            # Centre per task instead of adding a constant column, so the intercepts stay
            # unpenalised (as in the original formulations).
            self._means = [f.mean(axis=0) for f in features]
            self._label_means = [y.mean() for y in labels]
            # One centred copy per distinct input array, so a shared X stays one object (the fast paths).
            centred: dict[int, Array] = {}
            for f, m in zip(features, self._means, strict=True):
                centred.setdefault(id(f), f - m)
            features = [centred[id(f)] for f in features]
            labels = [y - m for y, m in zip(labels, self._label_means, strict=True)]
        weights = self._fit_weights(features, labels)
        self.weights_ = weights
        if self.fit_intercept:
            self.intercepts_ = np.array(
                [lm - m @ weights[:, t] for t, (m, lm) in enumerate(zip(self._means, self._label_means, strict=True))]
            )
        else:
            self.intercepts_ = np.zeros(weights.shape[1])
        return self

    def decision_function(self, X: ArrayLike | Sequence[ArrayLike]) -> Array | list[Array]:
        """Scores ``(N, T)`` for a shared ``X``, or one ``(N_t,)`` vector per task for a list."""
        if self.weights_ is None or self.intercepts_ is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit(X, Y) first")
        if isinstance(X, (list, tuple)):
            if len(X) != self.weights_.shape[1]:
                raise ValueError(f"{type(self).__name__}: got {len(X)} task inputs for {self.weights_.shape[1]} tasks")
            return [
                np.asarray(x, dtype=np.float64) @ self.weights_[:, t] + self.intercepts_[t] for t, x in enumerate(X)
            ]
        return np.asarray(X, dtype=np.float64) @ self.weights_ + self.intercepts_

    def predict(self, X: ArrayLike | Sequence[ArrayLike]) -> Array | list[Array]:
        """``±1`` labels: the sign of :meth:`decision_function` (0 maps to +1)."""
        scores = self.decision_function(X)
        if isinstance(scores, list):
            return [np.where(s >= 0, 1.0, -1.0) for s in scores]
        return np.where(scores >= 0, 1.0, -1.0)

    @abstractmethod
    def _fit_weights(self, features: list[Array], labels: list[Array]) -> Array:
        """Return ``W`` (``d × T``) for centred per-task data."""


def _as_task_data(X: ArrayLike | Sequence[ArrayLike], Y: ArrayLike | Sequence[ArrayLike]) -> TaskData:
    if isinstance(X, (list, tuple)):
        features = [np.asarray(x, dtype=np.float64) for x in X]
        labels = [np.asarray(y, dtype=np.float64).reshape(-1) for y in Y]  # type: ignore[union-attr]  # X a list: Y is one per task too
        if len(features) != len(labels):
            raise ValueError(f"got {len(features)} task inputs but {len(labels)} task label vectors")
    else:
        shared = np.asarray(X, dtype=np.float64)
        targets = np.asarray(Y, dtype=np.float64)
        if targets.ndim != 2 or targets.shape[0] != shared.shape[0]:
            raise ValueError(
                f"shared X {shared.shape} needs Y of shape (N, T) = ({shared.shape[0]}, T), got {targets.shape}"
            )
        features = [shared] * targets.shape[1]  # the same array object: no copies
        labels = [targets[:, t] for t in range(targets.shape[1])]
    for t, (f, y) in enumerate(zip(features, labels, strict=True)):
        if f.ndim != 2 or f.shape[0] != y.shape[0] or f.shape[1] != features[0].shape[1]:
            raise ValueError(f"task {t}: features {f.shape} and labels {y.shape} do not match (N_t, d) / (N_t,)")
        if not np.all(np.isin(y, (-1.0, 1.0))):
            raise ValueError(f"task {t}: labels must be ±1")
    return features, labels


def _is_shared(features: list[Array]) -> bool:
    """Whether every task sees the same feature matrix (one array object, as a shared ``X`` gives)."""
    return all(f is features[0] for f in features)


def _squared_loss(features: list[Array], labels: list[Array], weights: Array) -> float:
    return float(
        sum(np.sum((y - f @ weights[:, t]) ** 2) for t, (f, y) in enumerate(zip(features, labels, strict=True)))
    )


class SingleTaskRidge(LinearMTLClassifier):
    """Independent ridge classifiers ``min_w ‖y_t − X_t w‖² + α ‖w‖²`` (the STL baseline).

    >>> X = np.array([[1.0], [2.0], [-1.0], [-2.0]])
    >>> Y = np.array([[1, -1], [1, -1], [-1, 1], [-1, 1.0]])
    >>> SingleTaskRidge(alpha=0.1).fit(X, Y).predict(np.array([[3.0]])).tolist()
    [[1.0, -1.0]]
    """

    def __init__(self, alpha: float = 1.0, fit_intercept: bool = True) -> None:
        super().__init__(fit_intercept)
        self.alpha = alpha

    def _fit_weights(self, features: list[Array], labels: list[Array]) -> Array:
        dim = features[0].shape[1]
        weights = np.stack(
            [
                np.linalg.solve(f.T @ f + self.alpha * np.eye(dim), f.T @ y)
                for f, y in zip(features, labels, strict=True)
            ],
            axis=1,
        )
        self.objective_ = _squared_loss(features, labels, weights) + self.alpha * float(np.sum(weights**2))
        return weights


class RegularizedMTL(LinearMTLClassifier):
    """Evgeniou & Pontil (2004): ``w_t = w_0 + v_t`` with

    ``min Σ_t ‖y_t − X_t (w_0 + v_t)‖² + (λ_task / T) Σ_t ‖v_t‖² + λ_shared ‖w_0‖²``.

    Closed form: with ``μ = λ_task/T``, ``G_t = X_tᵀX_t`` and ``A_t = G_t + μI``, eliminating
    ``v_t = A_t⁻¹ X_tᵀ (y_t − X_t w_0)`` leaves the ``d × d`` system
    ``(μ Σ_t A_t⁻¹ G_t + λ_shared I) w_0 = μ Σ_t A_t⁻¹ X_tᵀ y_t``. Large ``λ_task`` ties all tasks
    to
    ``w_0`` (one shared model); large ``λ_shared`` gives independent ridge models.

    Args:
        lambda_task: ``λ_task`` (paper's ``λ_1``), penalty on task-specific offsets.
        lambda_shared: ``λ_shared`` (paper's ``λ_2``), penalty on the common model.
    """

    def __init__(self, lambda_task: float = 1.0, lambda_shared: float = 1.0, fit_intercept: bool = True) -> None:
        super().__init__(fit_intercept)
        self.lambda_task, self.lambda_shared = lambda_task, lambda_shared

    def _fit_weights(self, features: list[Array], labels: list[Array]) -> Array:
        dim, tasks = features[0].shape[1], len(features)
        mu = self.lambda_task / tasks
        system, rhs, solves = self.lambda_shared * np.eye(dim), np.zeros(dim), []
        for f, y in zip(features, labels, strict=True):
            gram = f.T @ f
            inverse_times = np.linalg.solve(gram + mu * np.eye(dim), np.column_stack([gram, f.T @ y]))
            solves.append(inverse_times)
            system += mu * inverse_times[:, :dim]
            rhs += mu * inverse_times[:, dim]
        self.common_ = np.linalg.solve(system, rhs)
        # v_t = A_t⁻¹ X_tᵀ y_t − A_t⁻¹ G_t w_0
        self.offsets_ = np.stack([s[:, dim] - s[:, :dim] @ self.common_ for s in solves], axis=1)
        weights: Array = self.common_[:, None] + self.offsets_
        self.objective_ = (
            _squared_loss(features, labels, weights)
            + mu * float(np.sum(self.offsets_**2))
            + self.lambda_shared * float(self.common_ @ self.common_)
        )
        return weights


class ConvexMTFL(LinearMTLClassifier):
    """Argyriou, Evgeniou & Pontil (2008), convex multi-task feature learning.

    ``min_{W, D} Σ_t ‖y_t − X_t w_t‖² + γ tr(D⁻¹ (WWᵀ + εI))`` over ``D ⪰ 0, tr D ≤ 1``; as
    ``ε → 0`` this is ``Σ loss + γ ‖W‖_tr²`` (squared trace norm), which favours a few shared
    feature directions. Alternating minimisation (their Algorithm 1 with ε-perturbation):

    * ``W`` step: ``w_t = (D X_tᵀ X_t + γI)⁻¹ D X_tᵀ y_t`` (no ``D⁻¹`` needed; one solve with ``T``
      right-hand sides when all tasks share one ``X``);
    * ``D`` step: ``D = (WWᵀ + εI)^{1/2} / tr (WWᵀ + εI)^{1/2}``.

    Each step is an exact minimisation, so ``objective_history_`` never increases.

    Args:
        gamma: ``γ``, strength of the shared-feature (trace-norm) penalty.
        epsilon: ``ε`` perturbation (keeps ``D`` invertible; the paper lets it shrink to 0).
        n_iter: alternating iterations (stops early when the objective changes < ``tol`` relative).
    """

    def __init__(
        self,
        gamma: float = 1.0,
        epsilon: float = 1e-6,
        n_iter: int = 100,
        tol: float = 1e-8,
        fit_intercept: bool = True,
    ) -> None:
        super().__init__(fit_intercept)
        self.gamma, self.epsilon, self.n_iter, self.tol = gamma, epsilon, n_iter, tol

    def _fit_weights(self, features: list[Array], labels: list[Array]) -> Array:
        dim = features[0].shape[1]
        covariance = np.eye(dim) / dim  # D, the feature covariance
        grams = [(f.T @ f, f.T @ y) for f, y in zip(features, labels, strict=True)]
        history: list[float] = []
        weights = np.zeros((dim, len(features)))
        shared = _is_shared(features)
        for _ in range(self.n_iter):
            if shared:  # one system with T right-hand sides instead of T systems
                gram, rhs = grams[0][0], np.stack([b for _, b in grams], axis=1)
                weights = np.linalg.solve(covariance @ gram + self.gamma * np.eye(dim), covariance @ rhs)
            else:
                weights = np.stack(
                    [np.linalg.solve(covariance @ g + self.gamma * np.eye(dim), covariance @ b) for g, b in grams],
                    axis=1,
                )
            eigenvalues, vectors = np.linalg.eigh(weights @ weights.T + self.epsilon * np.eye(dim))
            root = (vectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ vectors.T
            covariance = root / np.trace(root)
            # At the optimal D, γ tr(D⁻¹(WWᵀ + εI)) = γ (tr (WWᵀ + εI)^{1/2})².
            history.append(_squared_loss(features, labels, weights) + self.gamma * float(np.trace(root)) ** 2)
            if len(history) > 1 and abs(history[-2] - history[-1]) <= self.tol * abs(history[-2]):
                break
        self.feature_covariance_, self.objective_history_ = covariance, history
        self.objective_ = history[-1]
        return weights


class GOMTL(LinearMTLClassifier):
    """Kumar & Daumé III (2012), GO-MTL: ``W = L S`` with ``k`` latent basis tasks.

    ``min_{L, S} Σ_t ‖y_t − X_t L s_t‖² + μ Σ_t ‖s_t‖₁ + λ ‖L‖_F²``. As in the paper, ``L`` starts
    from the top-``k`` left singular vectors of the single-task ridge solutions (scaled by their
    singular values), then the two convex sub-problems alternate:

    * ``S`` step: a Lasso per task on features ``X_t L`` (cyclic coordinate descent);
    * ``L`` step: ``Σ_t X_tᵀ X_t L s_t s_tᵀ + λ L = Σ_t X_tᵀ y_t s_tᵀ``, linear in ``vec L``
      (``(Σ_t s_t s_tᵀ ⊗ X_tᵀX_t + λ I) vec L = vec(Σ_t X_tᵀ y_t s_tᵀ)``) solved by conjugate
      gradients in matrix form, so the ``dk × dk`` matrix is never built. When all tasks share one
      ``X`` the system is a Sylvester equation ``G L S Sᵀ + λ L = C Sᵀ``, solved exactly through
      the eigendecompositions of ``G = XᵀX`` (once per fit) and ``S Sᵀ``.

    Args:
        n_latent: ``k``, number of latent basis tasks (columns of ``L``).
        mu: ``μ``, ℓ1 penalty on each task's combination ``s_t`` (task grouping / overlap).
        lam: ``λ``, ridge penalty on the basis ``L``.
        n_iter: alternating iterations (stops early when the objective changes < ``tol`` relative).
    """

    def __init__(
        self,
        n_latent: int = 3,
        mu: float = 0.1,
        lam: float = 1.0,
        n_iter: int = 50,
        tol: float = 1e-8,
        fit_intercept: bool = True,
    ) -> None:
        super().__init__(fit_intercept)
        self.n_latent, self.mu, self.lam, self.n_iter, self.tol = n_latent, mu, lam, n_iter, tol

    def _objective(self, features: list[Array], labels: list[Array], basis: Array, codes: Array) -> float:
        return (
            _squared_loss(features, labels, basis @ codes)
            + self.mu * float(np.abs(codes).sum())
            + self.lam * float(np.sum(basis**2))
        )

    def _fit_weights(self, features: list[Array], labels: list[Array]) -> Array:
        dim, tasks = features[0].shape[1], len(features)
        if not 1 <= self.n_latent <= min(dim, tasks):
            raise ValueError(f"GOMTL: n_latent={self.n_latent} must be in [1, min(d, T)] = [1, {min(dim, tasks)}]")
        shared = _is_shared(features)
        grams = [features[0].T @ features[0]] * tasks if shared else [f.T @ f for f in features]
        correlations = [f.T @ y for f, y in zip(features, labels, strict=True)]
        spectrum = np.linalg.eigh(grams[0]) if shared else None
        single = np.stack(
            [np.linalg.solve(g + self.lam * np.eye(dim), c) for g, c in zip(grams, correlations, strict=True)],
            axis=1,
        )
        u, s, _ = np.linalg.svd(single, full_matrices=False)
        basis = u[:, : self.n_latent] * s[: self.n_latent]
        codes = np.zeros((self.n_latent, tasks))
        history: list[float] = []
        for _ in range(self.n_iter):
            projected = basis.T @ grams[0] @ basis if shared else None
            for t in range(tasks):
                gram = projected if projected is not None else basis.T @ grams[t] @ basis
                codes[:, t] = _lasso_coordinate_descent(gram, basis.T @ correlations[t], self.mu, codes[:, t])
            if spectrum is None:
                basis = _solve_basis(grams, correlations, codes, self.lam, basis)
            else:
                basis = _solve_basis_shared(spectrum, np.stack(correlations, axis=1), codes, self.lam)
            history.append(self._objective(features, labels, basis, codes))
            if len(history) > 1 and abs(history[-2] - history[-1]) <= self.tol * abs(history[-2]):
                break
        self.basis_, self.codes_, self.objective_history_ = basis, codes, history
        self.objective_ = history[-1]
        predicted: Array = basis @ codes
        return predicted


def _lasso_coordinate_descent(gram: Array, correlation: Array, mu: float, start: Array, sweeps: int = 500) -> Array:
    """``argmin_s sᵀ Q s − 2 bᵀ s + μ ‖s‖₁`` (= ``‖y − Zs‖² + μ‖s‖₁`` up to a constant)."""
    codes: Array = start.copy()
    for _ in range(sweeps):
        largest_change = 0.0
        for j in range(len(codes)):
            if gram[j, j] <= 0:
                codes[j] = 0.0
                continue
            partial = correlation[j] - gram[j] @ codes + gram[j, j] * codes[j]
            new = np.sign(partial) * max(abs(partial) - mu / 2, 0.0) / gram[j, j]
            largest_change = max(largest_change, abs(new - codes[j]))
            codes[j] = new
        if largest_change <= 1e-12 * (1 + np.abs(codes).max()):
            break
    return codes


def _solve_basis(grams: list[Array], correlations: list[Array], codes: Array, lam: float, start: Array) -> Array:
    """Conjugate gradients for ``Σ_t G_t L s_t s_tᵀ + λ L = Σ_t c_t s_tᵀ`` (SPD in ``vec L``)."""

    def operator(basis: Array) -> Array:
        products = (g @ basis @ np.outer(s, s) for g, s in zip(grams, codes.T, strict=True))
        applied: Array = sum(products) + lam * basis
        return applied

    target = sum(np.outer(c, s) for c, s in zip(correlations, codes.T, strict=True))
    basis: Array = start.copy()
    residual = target - operator(basis)
    direction = residual.copy()
    norm = float(np.sum(residual**2))
    threshold = 1e-24 * max(float(np.sum(target**2)), 1e-300)
    for _ in range(basis.size):
        if norm <= threshold:
            break
        applied = operator(direction)
        step = norm / float(np.sum(direction * applied))
        basis += step * direction
        residual -= step * applied
        new_norm = float(np.sum(residual**2))
        direction = residual + (new_norm / norm) * direction
        norm = new_norm
    return basis


def _solve_basis_shared(spectrum: tuple[Array, Array], correlations: Array, codes: Array, lam: float) -> Array:
    r"""The ``L`` step when every task has the same Gram matrix ``G``: a Sylvester equation, solved exactly.

    ``G L (S Sᵀ) + λ L = C Sᵀ``; with ``G = U diag(g) Uᵀ`` and ``S Sᵀ = V diag(h) Vᵀ`` it decouples
    into :math:`\tilde L_{ij} = (Uᵀ C Sᵀ V)_{ij} / (g_i h_j + λ)`, ``L = U L̃ Vᵀ``
    (:func:`_solve_basis` is the general, per-task-Gram path).
    """
    values, vectors = spectrum
    code_values, code_vectors = np.linalg.eigh(codes @ codes.T)
    rotated = vectors.T @ correlations @ codes.T @ code_vectors
    solved: Array = vectors @ (rotated / (np.outer(values, code_values) + lam)) @ code_vectors.T
    return solved
