"""DB-MTL: dual-balancing multi-task learning (Lin, Ye, Zhang, Kwok et al., 2023)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from mtlkit.balancing._base import TaskWeighting
from mtlkit.balancing._shared import shared_modules_of

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

    This is a gradient method: one backward pass per task through the shared trunk, and the
    running averages hold :math:`T` copies of the shared gradient. With a schedule on top
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

    supports_distributed = False  # it writes the shared gradients itself, past DDP's all-reduce

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
        modules = shared_modules_of(model, "DB-MTL")
        seen: set[int] = set()
        self._shared = []
        for module in modules:
            for p in module.parameters():
                if p.requires_grad and id(p) not in seen:
                    seen.add(id(p))
                    self._shared.append(p)
        self._specific = [p for p in model.parameters() if p.requires_grad and id(p) not in seen]
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
        names = list(logs)
        scale = {task: 1.0 if scales is None else float(scales[task]) for task in names}
        with torch.no_grad():
            for task in names:
                grads = torch.autograd.grad(logs[task], self._shared, retain_graph=True, allow_unused=True)
                flat = torch.cat(
                    [
                        (torch.zeros_like(p) if g is None else g).reshape(-1).to(self.average_gradient.dtype)
                        for p, g in zip(self._shared, grads, strict=True)
                    ]
                )
                row = self.tasks.index(task)
                self.average_gradient[row].mul_(self.beta).add_(flat, alpha=1 - self.beta)
            rows = [self.tasks.index(task) for task in names]
            averages = self.average_gradient[rows]
            norms = averages.double().norm(dim=1)
            largest = norms.max()
            factors = torch.where(norms > 0, largest / norms.clamp_min(1e-300), torch.zeros_like(norms))
            combined = torch.zeros_like(averages[0])
            for k, task in enumerate(names):
                combined.add_(averages[k], alpha=float(factors[k]) * scale[task])
        self.last_weights = {task: float(factors[k]) * scale[task] for k, task in enumerate(names)}
        specific_loss = torch.stack([scale[task] * logs[task] for task in names]).sum()
        reachable = [p for p in self._specific if p.requires_grad]
        if reachable and specific_loss.requires_grad:
            grads = torch.autograd.grad(specific_loss, reachable, allow_unused=True)
            for p, g in zip(reachable, grads, strict=True):
                if g is not None:
                    p.grad = g.detach() if p.grad is None else p.grad + g
        offset = 0
        for p in self._shared:
            piece = combined[offset : offset + p.numel()].view_as(p).to(p.dtype)
            offset += p.numel()
            p.grad = piece.clone() if p.grad is None else p.grad + piece
        return True

    def extra_repr(self) -> str:
        return f"tasks={self.tasks}, beta={self.beta}"
