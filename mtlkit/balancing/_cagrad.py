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

    def _problem(self, n: int) -> Any:
        """The dual on the simplex for ``n`` tasks, built once (cvxpy parameters: solves reuse it)."""
        if n not in self._problems:
            cp = solver_module("cvxpy", "CAGrad")
            w = cp.Variable(n, nonneg=True)
            b, f = cp.Parameter(n), cp.Parameter((n, n))
            problem = cp.Problem(cp.Minimize(b @ w + cp.norm(f @ w, 2)), [cp.sum(w) == 1])
            self._problems[n] = (problem, w, b, f)
        return self._problems[n]

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
        if gw_norm == 0:
            return mean
        weights: torch.Tensor = mean + self.c * g0_norm / gw_norm * simplex
        return weights

    def extra_repr(self) -> str:
        return f"tasks={self.tasks}, c={self.c}"
