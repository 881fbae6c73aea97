"""GradNorm (Chen, Badrinarayanan, Lee & Rabinovich, ICML 2018)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from mtlkit.balancing._base import TaskWeighting
from mtlkit.balancing._jacobian import average_over_ranks, task_jacobian
from mtlkit.balancing._shared import shared_modules_of

__all__ = ["GradNorm"]


class GradNorm(TaskWeighting):
    r"""GradNorm (Chen et al., "GradNorm: Gradient Normalization for Adaptive Loss Balancing in
    Deep Multitask Networks", ICML 2018, Eqs. 1-2): learnable weights :math:`w_t` with
    :math:`L = \sum_t w_t L_t` for the model, and for the weights

    .. math:: L_\text{grad} = \sum_t \bigl| G_t - \bar G \, r_t^{\alpha} \bigr|_1, \qquad
              G_t = \lVert \nabla_W w_t L_t \rVert_2, \quad \bar G = \tfrac1T \sum_t G_t, \quad
              r_t = \frac{L_t / L_t(0)}{\tfrac1T \sum_i L_i / L_i(0)}

    where :math:`W` are the parameters of the last shared layer (the last of the model's
    ``shared_modules()``) and :math:`\bar G r_t^\alpha` is held constant (Sec. 3.2). Since
    :math:`w_t` is a scalar, :math:`G_t = w_t \lVert \nabla_W L_t \rVert`: one backward pass per task
    through the heads and that layer only, and no second-order terms. Under DDP those gradients and
    the losses are averaged over the ranks first, so every rank has the same weights. The back-propagated scalar
    is :math:`\sum_t \operatorname{sg}(w_t) L_t + L_\text{grad}`, so the model's gradient is that of
    the weighted loss and :math:`w`'s that of :math:`L_\text{grad}`; the weights must be given to
    the optimiser. After every step they are clipped at 0 and renormalised to
    :math:`\sum_t w_t = T` (Sec. 3.2; the clip is ours, so that a large step cannot make a weight
    negative).

    :math:`L_t(0)` is the first loss seen for each task; a task whose first loss was exactly 0 has
    :math:`r_t` computed with ratio 1.

    Args:
        tasks: the task names.
        alpha: the asymmetry :math:`\alpha \ge 0` (paper: 1.5 on NYUv2, 0.12 on its synthetic task).

    Raises:
        ValueError: at :meth:`attach`, when the model has no shared parameters.

    Example:
        >>> import torch
        >>> from mtlkit import MultiTaskModel, LinearHead
        >>> model = MultiTaskModel(torch.nn.Linear(3, 4), {"a": LinearHead(4, 1), "b": LinearHead(4, 1)})
        >>> gradnorm = GradNorm(("a", "b"), alpha=1.5)
        >>> gradnorm.attach(model)
        >>> out = model(torch.ones(2, 3))
        >>> total = gradnorm({task: (y**2).mean() for task, y in out.items()})
        >>> total.backward()
        >>> gradnorm.weight.grad.shape
        torch.Size([2])
    """

    initial_loss: torch.Tensor

    def __init__(self, tasks: Sequence[str], alpha: float = 1.5) -> None:
        super().__init__(tasks)
        if not (math.isfinite(alpha) and alpha >= 0):
            raise ValueError(f"alpha must be finite and >= 0, got {alpha}")
        self.alpha = float(alpha)
        self.weight = nn.Parameter(torch.ones(len(self.tasks)))
        self.register_buffer("initial_loss", torch.full((len(self.tasks),), math.nan, dtype=torch.float64))
        self._layer: list[nn.Parameter] = []

    def attach(self, model: nn.Module) -> None:
        last = shared_modules_of(model, "GradNorm")[-1]
        self._layer = [p for p in last.parameters() if p.requires_grad]

    def terms(self, losses: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if not self._layer:
            raise RuntimeError("GradNorm is not attached to a model: call attach(model) (the Trainer does)")
        names = list(losses)
        index = [self.tasks.index(task) for task in names]
        w = self.weight[index]
        # The last layer's per-task gradients and the losses are those of the global batch under DDP,
        # so every rank computes the same norms, ratios and weight gradients.
        jacobian, _ = task_jacobian([losses[task] for task in names], self._layer, retain_graph=True)
        raw_norm = average_over_ranks(jacobian).double().norm(dim=1).to(w.dtype)
        with torch.no_grad():
            values = average_over_ranks(torch.stack([losses[task].detach().double() for task in names]))
            initial = self.initial_loss[index]
            initial = torch.where(torch.isnan(initial), values, initial)
            self.initial_loss[index] = initial
            ratio = torch.where(initial > 0, values / initial.clamp_min(torch.finfo(torch.float64).tiny), 1.0)
            mean_ratio = ratio.mean()
            relative = torch.where(mean_ratio > 0, ratio / mean_ratio.clamp_min(1e-300), torch.ones_like(ratio))
        g = w * raw_norm  # G_t = w_t ||grad_W L_t||, differentiable in w only
        target = (g.detach().mean() * relative.to(g.dtype) ** self.alpha).detach()
        gradnorm_terms = (g - target).abs()
        self.last_weights = {task: float(w[k].detach()) for k, task in enumerate(names)}
        return {
            task: w[k].detach().to(losses[task].dtype) * losses[task] + gradnorm_terms[k].to(losses[task].dtype)
            for k, task in enumerate(names)
        }

    def on_iteration_end(self) -> None:
        with torch.no_grad():
            self.weight.clamp_(min=0.0)
            total = float(self.weight.sum())
            if total > 0 and math.isfinite(total):
                self.weight.mul_(len(self.tasks) / total)
            else:
                self.weight.fill_(1.0)

    def extra_repr(self) -> str:
        return f"tasks={self.tasks}, alpha={self.alpha}"
