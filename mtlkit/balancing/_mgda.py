"""MGDA-UB: the min-norm point of the convex hull of the task gradients (Sener & Koltun, 2018)."""

from __future__ import annotations

import numpy as np
import torch

from mtlkit.balancing._aggregator import GradientAggregator
from mtlkit.balancing._solvers import correlation, quadratic_program

__all__ = ["MGDA"]

#: Ridge on the Gramian of the unit gradients: quadprog needs a positive definite matrix, and
#: colinear gradients make it singular. It moves the solution by about 1e-10 relative.
RIDGE = 1e-10


class MGDA(GradientAggregator):
    r"""MGDA-UB (Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018, Eq. 3
    and Sec. 3.3): the update is the minimum-norm element of the convex hull of the task gradients,

    .. math:: d = \sum_t w_t g_t, \qquad
              w = \arg\min_{w \ge 0,\ \sum_t w_t = 1} \Bigl\lVert \sum_t w_t g_t \Bigr\rVert^2
                = \arg\min_{w \in \Delta} w^\top G w .

    :math:`d = 0` exactly at a Pareto-stationary point; otherwise :math:`-d` decreases every task
    (:math:`g_t^\top d \ge \lVert d\rVert^2` for every :math:`t`, the KKT conditions of the QP).
    The paper solves the QP by Frank–Wolfe with a closed form for :math:`T = 2`; here the exact
    small QP goes to quadprog (via qpsolvers, the ``solvers`` extra), an active-set method whose
    solution satisfies the KKT conditions to rounding, for any :math:`T`. It is solved for
    :math:`v_t = w_t \lVert g_t\rVert` on the Gramian of the unit gradients
    (:func:`~mtlkit.balancing._solvers.correlation`), so gradients of very different norms meet
    the solver at one scale. A task whose gradient is exactly 0 puts 0 in the hull: :math:`d = 0`.

    ``representation=True`` is the paper's "upper bound" (MGDA-UB proper): the weights come from
    the gradients with respect to the shared representation, one backward pass through the trunk.
    No normalisation of the gradients (the paper's experiments offer several; none by default).

    Args:
        tasks: the task names.
        representation: see :class:`~mtlkit.balancing.GradientAggregator`.

    Example:
        >>> import torch
        >>> mgda = MGDA(("a", "b"))
        >>> mgda.aggregate(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))  # the midpoint of the two
        tensor([0.5000, 0.5000])
        >>> mgda.aggregate(torch.tensor([[1.0, 0.0], [1.0, 1.0]])).round(decimals=6)  # g_1 is the min-norm point
        tensor([1., 0.])
    """

    allows_representation = True

    def weights(self, gramian: torch.Tensor) -> torch.Tensor:
        n = len(gramian)
        c, norms, active = correlation(gramian)
        w = torch.zeros(n, dtype=torch.float64)
        if len(active) < n:  # a zero gradient is in the hull: the min-norm point is 0
            w[next(t for t in range(n) if t not in active)] = 1.0
            return w
        if n == 1:
            return torch.ones(1, dtype=torch.float64)
        # w = v / ||g||: min v^T C v over v >= 0 with sum_t v_t / ||g_t|| = 1 (scaled to max 1)
        a = (norms.min() / norms).numpy()[None, :]
        v = quadratic_program(c.numpy() + RIDGE * np.eye(n), np.zeros(n), method="MGDA", a=a, b=np.ones(1),
                              lb=np.zeros(n))  # fmt: skip
        w = torch.from_numpy(np.clip(v, 0.0, None)) / norms
        return w / w.sum()
