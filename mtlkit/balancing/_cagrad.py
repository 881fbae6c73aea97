"""CAGrad: conflict-averse gradient descent (Liu, Liu, Jin, Stone & Liu, 2021)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from mtlkit.balancing._aggregator import GradientAggregator
from mtlkit.balancing._solvers import conic_solve, gram_factor, normalised, solver_module

__all__ = ["CAGrad"]


#: ``||g_w||`` below this share of the largest gradient's norm counts as 0 (the dual's minimiser is a
#: vanishing combination): well above Clarabel's tolerances, far below any non-degenerate ``||g_w||``.
VANISHING = 1e-6


class CAGrad(GradientAggregator):
    r"""CAGrad (Liu et al., "Conflict-Averse Gradient Descent for Multi-task Learning", NeurIPS 2021,
    Alg. 1): the update that maximises the worst task's improvement within a ball around the mean
    gradient :math:`g_0 = \tfrac1T \sum_t g_t`. Its dual is a problem on the simplex,

    .. math:: w = \arg\min_{w \in \Delta}\; g_w^\top g_0 + c \lVert g_0 \rVert \lVert g_w \rVert,
              \qquad g_w = \sum_t w_t g_t, \qquad
              d = g_0 + \frac{c \lVert g_0 \rVert}{\lVert g_w \rVert}\, g_w ,

    with :math:`c \ge 0` the radius: :math:`c = 0` is the mean gradient (plain summing over
    :math:`T`), larger :math:`c` moves towards MGDA's min-norm direction. The paper's
    :math:`d` is used as is (its code divides it by :math:`1 + c^2` by default; that only rescales
    the learning rate). The dual is a second-order cone program: it goes to cvxpy with the Clarabel
    solver (``solvers`` extra); the paper's code uses SciPy's SLSQP. The weights do not change
    when every gradient is multiplied by one constant.

    Where a convex combination of the gradients vanishes (a task with zero gradient, or conflicting
    gradients whose hull holds 0) the dual's minimiser has :math:`g_w \approx 0` and the recovery of
    :math:`d` above divides by it. There the primal is solved instead, in the span of the gradients
    (:math:`d = \sum_t a_t g_t`, which holds every maximiser's projection):

    .. math:: \max_{a,\,\tau}\; \tau \quad \text{s.t.}\quad G a \ge \tau \mathbf 1,\quad
              \lVert F (a - \tfrac1T \mathbf 1) \rVert \le c \lVert g_0 \rVert ,

    with :math:`G` the Gramian and :math:`F^\top F = G`.

    Args:
        tasks: the task names.
        c: the radius :math:`c \ge 0` (paper: 0.4 on NYUv2 and Cityscapes, 0.5 on its toy problem).
        representation: not allowed (the paper defines the method on the gradients of the shared
            parameters): anything but ``False`` raises ``ValueError``.

    Example:
        >>> import torch
        >>> cagrad = CAGrad(("a", "b"), c=0.0)
        >>> cagrad.aggregate(torch.tensor([[2.0, 0.0], [0.0, 4.0]]))  # c = 0: the mean gradient
        tensor([1., 2.])
    """

    def __init__(self, tasks: Sequence[str], c: float = 0.4, representation: bool | nn.Module = False) -> None:
        super().__init__(tasks, representation=representation)
        if not (math.isfinite(c) and c >= 0):
            raise ValueError(f"c must be finite and >= 0, got c={c}")
        self.c = float(c)
        self._problems: dict[int, Any] = {}
        self._primals: dict[int, Any] = {}

    def _problem(self, n: int) -> Any:
        """The dual on the simplex for ``n`` tasks, built once (cvxpy parameters: solves reuse it)."""
        if n not in self._problems:
            cp = solver_module("cvxpy", "CAGrad")
            w = cp.Variable(n, nonneg=True)
            b, f = cp.Parameter(n), cp.Parameter((n, n))
            problem = cp.Problem(cp.Minimize(b @ w + cp.norm(f @ w, 2)), [cp.sum(w) == 1])
            self._problems[n] = (problem, w, b, f)
        return self._problems[n]

    def _primal(self, n: int) -> Any:
        """The primal in the gradients' span for ``n`` tasks (see the class docstring), built once."""
        if n not in self._primals:
            cp = solver_module("cvxpy", "CAGrad")
            a, worst = cp.Variable(n), cp.Variable()
            k, f, centre = cp.Parameter((n, n)), cp.Parameter((n, n)), cp.Parameter(n)  # centre: F · 1/T
            radius = cp.Parameter(nonneg=True)
            constraints = [k @ a >= worst, cp.norm(f @ a - centre, 2) <= radius]
            self._primals[n] = (cp.Problem(cp.Maximize(worst), constraints), a, k, f, centre, radius)
        return self._primals[n]

    def _solve_primal(self, unit: torch.Tensor, mean: torch.Tensor, radius: float) -> torch.Tensor:
        problem, a, k, f, centre, bound = self._primal(len(unit))
        factor = gram_factor(unit)
        k.value, f.value, centre.value, bound.value = unit.numpy(), factor, factor @ mean.numpy(), radius
        conic_solve(problem, "CAGrad")
        if a.value is None:
            raise FloatingPointError(f"CAGrad: Clarabel found no solution of the primal ({problem.status})")
        return torch.from_numpy(np.asarray(a.value, dtype=np.float64))

    def weights(self, gramian: torch.Tensor) -> torch.Tensor:
        n = len(gramian)
        unit, _ = normalised(gramian.cpu())
        mean = torch.full((n,), 1.0 / n, dtype=torch.float64)
        g0_norm = float(mean @ unit @ mean) ** 0.5
        if self.c == 0 or g0_norm == 0:
            return mean
        problem, w, b, f = self._problem(n)
        b.value = (unit @ mean).numpy()
        f.value = self.c * g0_norm * gram_factor(unit)
        conic_solve(problem, "CAGrad")
        if w.value is None:
            raise FloatingPointError(f"CAGrad: Clarabel found no solution ({problem.status})")
        simplex = torch.from_numpy(np.clip(np.asarray(w.value, dtype=np.float64), 0, None))
        simplex /= simplex.sum()
        gw_norm = float(simplex @ unit @ simplex) ** 0.5
        largest = float(unit.diagonal().max()) ** 0.5
        if gw_norm <= VANISHING * largest:  # the dual's recovery of d would divide by ~0
            return self._solve_primal(unit, mean, self.c * g0_norm)
        weights: torch.Tensor = mean + self.c * g0_norm / gw_norm * simplex
        return weights

    def extra_repr(self) -> str:
        return f"tasks={self.tasks}, c={self.c}"
