"""UPGrad: the mean of the task gradients projected onto the dual cone (Quinton & Rey, 2024)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from mtlkit.balancing._aggregator import GradientAggregator
from mtlkit.balancing._solvers import correlation, quadratic_program

__all__ = ["UPGrad"]

#: Ridge on the Gramian of the unit gradients (quadprog needs a positive definite matrix).
RIDGE = 1e-10


class UPGrad(GradientAggregator):
    r"""UPGrad (Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization", arXiv:2406.16232,
    2024, Sec. 3): every task gradient is projected onto the dual cone of the gradients,
    :math:`\{v : J v \ge 0\}`, and the projections are averaged,

    .. math:: d = \frac1T \sum_i \pi_J(g_i), \qquad
              \pi_J(J^\top u) = J^\top w, \quad w = \arg\min_{w \ge u} w^\top G w ,

    the dual form of the projection (the paper's Prop. 1): one small QP per task, to quadprog
    (``solvers`` extra), solved for :math:`v = w \odot \lVert g\rVert` on the Gramian of the unit
    gradients, so that gradients of very different norms meet the solver at one scale. A zero
    gradient projects to 0 and constrains nothing: it gets weight 0. Every projection lies in the dual cone, and
    so does their mean: :math:`g_t^\top d = (G w)_t \ge 0` for every task — the update conflicts
    with none (up to the ridge, :data:`RIDGE` times the largest squared gradient norm). The weights
    do not change when every gradient is multiplied by one constant.

    Args:
        tasks: the task names.
        representation: not allowed (the paper defines the method on the gradients of the shared
            parameters): anything but ``False`` raises ``ValueError``.

    Example:
        >>> import torch
        >>> upgrad = UPGrad(("a", "b"))
        >>> upgrad.aggregate(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))  # no conflict: the mean
        tensor([0.5000, 0.5000])
        >>> d = upgrad.aggregate(torch.tensor([[1.0, 0.0], [-1.0, 1.0]]))
        >>> bool((torch.tensor([[1.0, 0.0], [-1.0, 1.0]]) @ d).min() >= -1e-6)
        True
    """

    def __init__(self, tasks: Sequence[str], representation: bool | nn.Module = False) -> None:
        super().__init__(tasks, representation=representation)

    def weights(self, gramian: torch.Tensor) -> torch.Tensor:
        n = len(gramian)
        c, norms, active = correlation(gramian)
        m = len(active)
        p = c.numpy() + RIDGE * np.eye(m)
        total = torch.zeros(m, dtype=torch.float64)
        for i in range(m):
            # w = v / ||g|| and v >= ||g_i|| e_i, divided by ||g_i||: v' >= e_i, w = v' ||g_i|| / ||g||
            v = torch.from_numpy(quadratic_program(p, np.zeros(m), method="UPGrad", lb=np.eye(m)[i]))
            total += v * norms[i] / norms
        w = torch.zeros(n, dtype=torch.float64)
        w[active] = total / n
        return w
