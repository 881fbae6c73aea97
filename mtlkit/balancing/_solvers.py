"""The convex solvers behind the gradient methods, imported only when a method needs one.

Quadratic programs (MGDA-UB's min-norm point, UPGrad's projections) go to ``quadprog`` through
``qpsolvers``: an exact dual active-set method, so a solution satisfies its KKT conditions to
rounding. The conic programs of CAGrad (a second-order cone) and Nash-MTL (a logarithmic barrier,
an exponential cone) go to ``cvxpy`` with the Clarabel interior-point solver. Both come with the
optional extra ``pip install mtlkit[solvers]``.
"""

from __future__ import annotations

import importlib
import warnings
from types import ModuleType
from typing import Any

import numpy as np
import torch

__all__ = [
    "TOLERANCES",
    "conic_solve",
    "correlation",
    "gram_factor",
    "normalised",
    "quadratic_program",
    "solver_module",
]

EXTRA = "pip install 'mtlkit[solvers]'"

#: Clarabel's stopping tolerances for the conic programs: tighter than its defaults (1e-8 gaps,
#: 1e-8 feasibility) so that weights are exact to about 1e-9 for the property tests; a solve of a
#: T x T problem takes milliseconds either way.
TOLERANCES = {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10}


def solver_module(name: str, method: str) -> ModuleType:
    """Import ``name`` (``qpsolvers`` or ``cvxpy``), or an ``ImportError`` naming ``method`` and the extra."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise ImportError(f"{method} solves its weights with {name}, which is not installed: {EXTRA}") from error


def quadratic_program(
    p: np.ndarray,
    q: np.ndarray,
    *,
    method: str,
    a: np.ndarray | None = None,
    b: np.ndarray | None = None,
    lb: np.ndarray | None = None,
) -> np.ndarray:
    r""":math:`\arg\min_x \tfrac12 x^\top P x + q^\top x` s.t. :math:`A x = b`, :math:`x \ge l` (quadprog).

    ``P`` must be positive definite (callers add a small ridge to a Gramian).

    Example:
        >>> import numpy as np
        >>> quadratic_program(np.eye(2), np.zeros(2), method="doc", a=np.ones((1, 2)), b=np.ones(1)).round(6)
        array([0.5, 0.5])
    """
    qpsolvers = solver_module("qpsolvers", method)
    x = qpsolvers.solve_qp(p, q, A=a, b=b, lb=lb, solver="quadprog")
    if x is None or not np.all(np.isfinite(x)):
        raise FloatingPointError(f"{method}: quadprog found no solution of its quadratic program (P={p.tolist()})")
    return np.asarray(x, dtype=np.float64)


def gram_factor(gramian: torch.Tensor) -> np.ndarray:
    r"""A square :math:`F` with :math:`F^\top F = G` (from the eigendecomposition; :math:`G \succeq 0`).

    Conic programs take :math:`\lVert F w \rVert` for :math:`\sqrt{w^\top G w}`, which needs no
    Cholesky factor and so no positive definiteness.

    Example:
        >>> import torch
        >>> f = gram_factor(torch.tensor([[4.0, 0.0], [0.0, 0.0]], dtype=torch.float64))
        >>> (f.T @ f).round(6).tolist()
        [[4.0, 0.0], [0.0, 0.0]]
    """
    values, vectors = torch.linalg.eigh(gramian.double().cpu())
    factor = values.clamp_min(0).sqrt()[:, None] * vectors.T
    return np.asarray(factor.numpy(), dtype=np.float64)


def normalised(gramian: torch.Tensor) -> tuple[torch.Tensor, float]:
    """``G / s`` with ``s`` the largest diagonal entry (largest squared gradient norm), and ``s``.

    Methods whose weights do not change when every gradient is multiplied by a constant solve on
    the normalised Gramian, so losses of :math:`10^{\\pm 4}` reach the solvers at unit scale.
    """
    scale = float(gramian.diagonal().max())
    return gramian / scale, scale


def correlation(gramian: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    r"""The Gramian of the unit gradients of the tasks whose gradient is not 0.

    Returns :math:`C = D^{-1/2} G_a D^{-1/2}` (unit diagonal) for the active tasks :math:`a`
    (:math:`\lVert g_t\rVert > 0`), :math:`\sqrt{D}` (their gradient norms) and their indices.
    Methods whose weights transform as :math:`w = D^{-1/2} v` under a rescaling of each gradient
    (MGDA, Nash-MTL, UPGrad) solve on :math:`C`: gradients of norms :math:`10^{-4}` and
    :math:`10^{4}` then meet the solver at one scale, and a ridge on :math:`C` is a ridge
    relative to each task.

    Example:
        >>> import torch
        >>> c, norms, active = correlation(torch.tensor([[4.0, 2.0, 0.0], [2.0, 9.0, 0.0], [0.0, 0.0, 0.0]]))
        >>> c.tolist(), norms.tolist(), active
        ([[1.0, 0.3333333333333333], [0.3333333333333333, 1.0]], [2.0, 3.0], [0, 1])
    """
    g = gramian.double().cpu()
    diagonal = g.diagonal()
    active = [t for t in range(len(g)) if float(diagonal[t]) > 0]
    norms = diagonal[active].sqrt()
    c = g[active][:, active] / (norms[:, None] * norms[None, :])
    return c, norms, active


def conic_solve(problem: Any, method: str) -> None:
    """Solve a cvxpy ``problem`` with Clarabel at :data:`TOLERANCES`.

    Clarabel stops at "optimal" or, when it cannot reach the tight tolerances in its iteration
    budget, "optimal_inaccurate" (typically still exact to about 1e-7); both are used, without
    cvxpy's warning for the second. Any other status raises ``FloatingPointError``.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        problem.solve(solver="CLARABEL", **TOLERANCES)
    if problem.status not in ("optimal", "optimal_inaccurate"):
        raise FloatingPointError(f"{method}: Clarabel found no solution (status {problem.status})")
