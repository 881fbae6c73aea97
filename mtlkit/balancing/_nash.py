"""Nash-MTL: multi-task learning as a bargaining game (Navon et al., 2022)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from mtlkit.balancing._aggregator import GradientAggregator
from mtlkit.balancing._solvers import conic_solve, correlation, gram_factor, solver_module

__all__ = ["NashMTL"]

#: Ridge on the Gramian of the unit gradients. Without it the bargaining problem has no solution when the
#: gradients are linearly dependent (a zero gradient, two opposite ones); with it the weight of
#: such a task is large but finite and the update stays in the span of the gradients.
RIDGE = 1e-6


class NashMTL(GradientAggregator):
    r"""Nash-MTL (Navon et al., "Multi-Task Learning as a Bargaining Game", ICML 2022, Sec. 3): the
    Nash bargaining solution :math:`d = \sum_t \alpha_t g_t` with :math:`\alpha > 0` solving

    .. math:: G \alpha = 1 / \alpha \quad\text{(elementwise)}, \qquad\text{i.e.}\quad
              \alpha_t\, g_t^\top d = 1 \ \text{for every task } t .

    Those are exactly the stationarity conditions of the strictly convex problem

    .. math:: \alpha = \arg\min_{\alpha > 0}\; \tfrac12 \alpha^\top G \alpha - \sum_t \log \alpha_t ,

    which is what is solved: by cvxpy with the Clarabel interior-point solver (``solvers`` extra),
    to the solver's tolerance. The paper reaches the same point by a sequence of convex
    approximations (CCP, at most 20 per step, its Sec. 3.3 and code); that sequence and its stopping
    rule are not reproduced. With :math:`\alpha_t = \beta_t / \lVert g_t\rVert` the conditions
    become :math:`\beta \odot C\beta = 1` on the Gramian :math:`C` of the unit gradients, which is
    what is solved: :math:`\alpha_t \propto 1 / \lVert g_t\rVert` by construction, so with losses
    of :math:`10^{4}` the weights are about :math:`10^{-4}` and the update is of unit size — the
    behaviour of the method, not a bug. A ridge on :math:`C` (:data:`RIDGE`) keeps the problem
    solvable for linearly dependent gradients; a task whose gradient is exactly 0 cannot bargain
    and gets weight 0. The authors' code differs in two ways that change the step size, not the
    direction: it solves on :math:`G / \lVert G\rVert_F` (so its :math:`\alpha` is
    :math:`\sqrt{\lVert G\rVert_F}` times the paper's, and the update grows with the gradients) and
    clips the shared gradient's norm at 1; here the paper's :math:`\alpha` is used as is. Its heads
    get :math:`\alpha_t`-weighted gradients; here each head gets its own task's gradient.

    ``update_every = k`` recomputes :math:`\alpha` every :math:`k` steps only (the paper's
    ``update_weights_every``) and in between back-propagates :math:`\sum_t \alpha_t L_t` once —
    one backward pass instead of :math:`T`; the heads' gradients are divided by their task's
    :math:`\alpha_t`, so they stay each task's own gradient. The weights in use and the step count
    are checkpointed.

    Args:
        tasks: the task names.
        update_every: recompute the weights every this many steps (1: every step).
        representation: not allowed (the paper defines the method on the gradients of the shared
            parameters): anything but ``False`` raises ``ValueError``.

    Example:
        >>> import torch
        >>> nash = NashMTL(("a", "b"))
        >>> # orthogonal gradients of norms 1 and 2: alpha_t = 1 / ||g_t||, d = (1, 1)
        >>> nash.aggregate(torch.tensor([[1.0, 0.0], [0.0, 2.0]])).round(decimals=4)
        tensor([1., 1.])
    """

    def __init__(self, tasks: Sequence[str], update_every: int = 1, representation: bool | nn.Module = False) -> None:
        super().__init__(tasks, representation=representation)
        if not isinstance(update_every, int) or update_every < 1:
            raise ValueError(f"update_every must be an int >= 1, got update_every={update_every!r}")
        self.update_every = update_every
        self._problems: dict[int, Any] = {}
        self._alpha_tasks: tuple[str, ...] = ()
        self._since_update = 0
        self._alpha = torch.zeros(0, dtype=torch.float64)

    def reusable_weights(self, names: Sequence[str]) -> torch.Tensor | None:
        if tuple(names) == self._alpha_tasks and self._since_update < self.update_every:
            self._since_update += 1
            return self._alpha.clone()
        return None

    def _problem(self, n: int) -> Any:
        if n not in self._problems:
            cp = solver_module("cvxpy", "Nash-MTL")
            alpha = cp.Variable(n)
            f = cp.Parameter((n, n))
            objective = cp.Minimize(0.5 * cp.sum_squares(f @ alpha) - cp.sum(cp.log(alpha)))
            self._problems[n] = (cp.Problem(objective), alpha, f)
        return self._problems[n]

    def weights(self, gramian: torch.Tensor) -> torch.Tensor:
        n = len(gramian)
        c, norms, active = correlation(gramian)
        m = len(active)
        problem, beta, f = self._problem(m)
        f.value = gram_factor(c + RIDGE * torch.eye(m, dtype=torch.float64))
        conic_solve(problem, "Nash-MTL")
        if beta.value is None:
            raise FloatingPointError(f"Nash-MTL: Clarabel found no solution ({problem.status})")
        w = torch.zeros(n, dtype=torch.float64)
        w[active] = torch.from_numpy(np.asarray(beta.value, dtype=np.float64)).clamp_min(0) / norms
        self._alpha = w.clone()
        self._since_update = 1
        return w

    def _weights_of(self, names: list[str], gramian: torch.Tensor) -> torch.Tensor:
        w = super()._weights_of(names, gramian)
        self._alpha_tasks = tuple(names) if float(w.abs().sum()) > 0 else ()
        return w

    def get_extra_state(self) -> dict[str, Any]:
        return {
            "alpha": self._alpha.clone(),
            "alpha_tasks": list(self._alpha_tasks),
            "since_update": self._since_update,
        }

    def set_extra_state(self, state: Any) -> None:
        self._alpha = state["alpha"].clone()
        self._alpha_tasks = tuple(state["alpha_tasks"])
        self._since_update = int(state["since_update"])

    def extra_repr(self) -> str:
        return f"tasks={self.tasks}, update_every={self.update_every}"
