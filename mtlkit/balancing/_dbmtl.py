"""DB-MTL: dual-balancing multi-task learning (Lin, Ye, Zhang, Kwok et al., 2023)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from mtlkit.balancing._base import TaskWeighting
from mtlkit.balancing._jacobian import add_to_grad, average_over_ranks, distributed_world, flatten, task_jacobian
from mtlkit.balancing._shared import split_parameters

__all__ = ["DBMTL"]


class DBMTL(TaskWeighting):
    r"""DB-MTL (Lin et al., "Dual-Balancing for Multi-Task Learning", arXiv:2308.12029, 2023, Alg. 1).

    *Loss-scale balancing*: every task trains on :math:`\log(\ell_t + \epsilon)`.
    *Gradient-magnitude balancing*: with :math:`g_t = \nabla_\theta \log(\ell_t + \epsilon)` on the
    shared parameters :math:`\theta` and its running average
    :math:`\hat g_t \leftarrow \beta \hat g_t + (1 - \beta) g_t` (from :math:`\hat g_t = 0`),
    the shared parameters get

    .. math:: \nabla_\theta = \sum_t \frac{\max_i \lVert \hat g_i \rVert}{\lVert \hat g_t \rVert}\, \hat g_t

    — every task's gradient scaled to the largest norm — and the task-specific parameters the
    gradient of :math:`\sum_t \log(\ell_t + \epsilon)`. Multiplying a task's loss by a constant
    leaves :math:`\log` gradients unchanged, so the update is invariant to loss scales (up to
    :math:`\epsilon`). A running average whose norm is 0 (a task with no gradient yet) takes no
    part.

    This is a gradient method: one backward pass per task through the shared trunk (the heads'
    gradients come from the same passes, :func:`~mtlkit.balancing._jacobian.task_jacobian`), and
    the running averages hold :math:`T` copies of the shared gradient. Under DDP the per-task
    gradients are averaged over the ranks before they enter the running averages, so every rank
    keeps the same averages and applies the same update. With a schedule on top
    (:class:`~mtlkit.balancing.Scheduled`) the schedule's weight multiplies each task's balanced
    shared gradient and its log-loss.

    Args:
        tasks: the task names.
        beta: :math:`\beta \in [0, 1)`, the running average's decay.
        eps: :math:`\epsilon > 0` inside the logarithm.

    Raises:
        ValueError: at :meth:`attach`, when the model has no shared parameters.

    Example:
        >>> import torch
        >>> from mtlkit import MultiTaskModel, LinearHead
        >>> model = MultiTaskModel(torch.nn.Linear(3, 4), {"a": LinearHead(4, 1), "b": LinearHead(4, 1)})
        >>> dbmtl = DBMTL(("a", "b"))
        >>> dbmtl.attach(model)
        >>> out = model(torch.ones(2, 3))
        >>> dbmtl.backward({task: (y**2).mean() + 1 for task, y in out.items()})
        True
        >>> model.trunk.weight.grad.shape
        torch.Size([4, 3])
    """

    average_gradient: torch.Tensor

    def __init__(self, tasks: Sequence[str], beta: float = 0.9, eps: float = 1e-8) -> None:
        super().__init__(tasks)
        if not (math.isfinite(beta) and 0 <= beta < 1):
            raise ValueError(f"beta must be in [0, 1), got {beta}")
        if not (math.isfinite(eps) and eps > 0):
            raise ValueError(f"eps must be finite and > 0, got {eps}")
        self.beta, self.eps = float(beta), float(eps)
        self._shared: list[nn.Parameter] = []
        self._specific: list[nn.Parameter] = []
        self.register_buffer("average_gradient", torch.zeros(len(self.tasks), 0))

    def attach(self, model: nn.Module) -> None:
        self._shared, self._specific = split_parameters(model, "DB-MTL")
        size = sum(p.numel() for p in self._shared)
        if self.average_gradient.shape != (len(self.tasks), size):
            self.average_gradient = torch.zeros(len(self.tasks), size, device=self._shared[0].device)

    def terms(self, losses: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The log-losses (what the task-specific parameters are trained on)."""
        return {task: torch.log(loss + self.eps) for task, loss in losses.items()}

    def backward(self, losses: Mapping[str, torch.Tensor], scales: Mapping[str, float] | None = None) -> bool:
        if not self._shared:
            raise RuntimeError("DB-MTL is not attached to a model: call attach(model) (the Trainer does)")
        checked = self.checked_losses(losses)
        if not checked:
            return False
        logs = self.terms(checked)
        scale = {task: 1.0 if scales is None else float(scales[task]) for task in logs}
        names = [task for task in logs if scale[task] != 0]  # a task scaled by 0 takes no part
        if not names:
            return False
        # grad log(l + eps) = grad l / (l + eps), with l the loss of the whole (global) batch: the
        # surrogate s_t l_t / sg(l_t + eps) has that gradient, and it is linear in the per-rank
        # losses, so averaging its gradients over the ranks gives the single-process gradient.
        dtype = self.average_gradient.dtype
        values = average_over_ranks(torch.stack([checked[task].detach().to(dtype) for task in names]))
        surrogates = [scale[task] * checked[task] / (values[k] + self.eps) for k, task in enumerate(names)]
        # The rows are the gradients of s_t log(l_t + eps); the running averages take them unscaled.
        jacobian, specific = task_jacobian(surrogates, self._shared, self._specific, dtype=dtype)
        if distributed_world() > 1:
            heads = flatten(specific, self._specific, jacobian.dtype)
            packed = average_over_ranks(torch.cat([jacobian.reshape(-1), heads]))
            jacobian = packed[: jacobian.numel()].view_as(jacobian)
            add_to_grad(self._specific, packed[jacobian.numel() :])
        else:
            for p, g in zip(self._specific, specific, strict=True):
                if g is not None:
                    p.grad = g.detach() if p.grad is None else p.grad + g
        with torch.no_grad():
            rows = [self.tasks.index(task) for task in names]
            for k, task in enumerate(names):
                self.average_gradient[rows[k]].mul_(self.beta).add_(jacobian[k] / scale[task], alpha=1 - self.beta)
            averages = self.average_gradient[rows]
            norms = averages.double().norm(dim=1)
            largest = norms.max()
            factors = torch.where(norms > 0, largest / norms.clamp_min(1e-300), torch.zeros_like(norms))
            combined = torch.zeros_like(averages[0])
            for k, task in enumerate(names):
                combined.add_(averages[k], alpha=float(factors[k]) * scale[task])
        self.last_weights = {task: float(factors[k]) * scale[task] for k, task in enumerate(names)}
        add_to_grad(self._shared, combined)
        return True

    def extra_repr(self) -> str:
        return f"tasks={self.tasks}, beta={self.beta}"
