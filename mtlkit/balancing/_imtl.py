"""IMTL-G: impartial multi-task learning, the gradient balance (Liu et al., 2021)."""

from __future__ import annotations

import torch

from mtlkit.balancing._aggregator import GradientAggregator

__all__ = ["IMTLG"]


class IMTLG(GradientAggregator):
    r"""IMTL-G (Liu et al., "Towards Impartial Multi-task Learning", ICLR 2021, Sec. 3.1 and Alg. 1):
    the combination :math:`d = \sum_t \alpha_t g_t`, :math:`\sum_t \alpha_t = 1`, whose projections
    on every task's unit gradient :math:`u_t = g_t / \lVert g_t\rVert` are equal,
    :math:`d^\top u_1 = d^\top u_t`. In closed form, with :math:`D^\top = [g_1 - g_2, \dots, g_1 - g_T]`
    and :math:`U^\top = [u_1 - u_2, \dots, u_1 - u_T]`,

    .. math:: \alpha_{2:T} = g_1^\top U^\top (D U^\top)^{-1}, \qquad \alpha_1 = 1 - \textstyle\sum_{t \ge 2} \alpha_t .

    Every entry is an inner product of gradients, so it is computed on the Gramian. Where
    :math:`D U^\top` is singular (colinear gradients) the least-squares solution is taken; a task
    whose gradient is exactly 0 has no direction and gets :math:`\alpha_t = 0`. The weights do not
    change when every gradient is multiplied by one constant. Only the gradient balance (IMTL-G)
    is implemented, not the loss balance (IMTL-L) or their hybrid.

    ``representation=True`` is allowed: the paper's Alg. 1 takes the gradients with respect to the
    shared feature :math:`z`.

    Args:
        tasks: the task names.
        representation: see :class:`~mtlkit.balancing.GradientAggregator`.

    Example:
        >>> import torch
        >>> imtl = IMTLG(("a", "b"))
        >>> d = imtl.aggregate(torch.tensor([[1.0, 0.0], [0.0, 3.0]]))
        >>> d, (d @ torch.tensor([1.0, 0.0])).item(), (d @ torch.tensor([0.0, 1.0])).item()
        (tensor([0.7500, 0.7500]), 0.75, 0.75)
    """

    allows_representation = True

    def weights(self, gramian: torch.Tensor) -> torch.Tensor:
        g = gramian.cpu()
        n = len(g)
        norms = g.diagonal().clamp_min(0).sqrt()
        active = [t for t in range(n) if float(norms[t]) > 0]
        w = torch.zeros(n, dtype=torch.float64)
        if len(active) == 1:
            w[active[0]] = 1.0
        if len(active) <= 1:
            return w
        first, rest = active[0], active[1:]
        inv = 1.0 / norms
        # (g_1 - g_i) . (u_1 - u_j) and g_1 . (u_1 - u_j), for i, j in rest
        g1u = g[first, first] * inv[first] - g[first, rest] * inv[rest]
        du = (
            g[first, first] * inv[first]
            - g[first, rest][None, :] * inv[rest][None, :]
            - g[rest, first][:, None] * inv[first]
            + g[rest][:, rest] * inv[rest][None, :]
        )
        alpha_rest = torch.linalg.lstsq(du.T, g1u[:, None], driver="gelsd").solution[:, 0]
        w[rest] = alpha_rest
        w[first] = 1.0 - alpha_rest.sum()
        return w
