"""FAMO: fast adaptive multitask optimisation (Liu, Liang, Lu, Stone & Liu, NeurIPS 2023)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

from mtlkit.balancing._base import TaskWeighting
from mtlkit.balancing._jacobian import average_over_ranks

__all__ = ["FAMO"]


class FAMO(TaskWeighting):
    r"""FAMO (Liu et al., "FAMO: Fast Adaptive Multitask Optimization", NeurIPS 2023, Alg. 1):
    a logit :math:`\xi_t` per task, :math:`z = \operatorname{softmax}(\xi)`, and the update
    direction

    .. math:: d = \sum_t c\, \frac{z_t}{\ell_t + \epsilon} \nabla \ell_t, \qquad
              c = \Bigl(\sum_t \frac{z_t}{\ell_t + \epsilon}\Bigr)^{-1},

    the gradient of :math:`\sum_t \operatorname{sg}(c)\, z_t \log(\ell_t + \epsilon)` (the paper's
    :math:`b_t = 0`, losses :math:`\ge 0`). What is back-propagated is
    :math:`\sum_t \operatorname{sg}(w_t)\, \ell_t` with the effective loss weights
    :math:`w_t = c z_t / (\ell_t + \epsilon)` — the same gradient — because under DDP :math:`w_t`
    must come from the losses averaged over the ranks, not from each rank's own. The weights are
    positive and sum to 1. After a step, with the
    losses :math:`\ell'` of the next step,

    .. math:: \delta_t = \log(\ell_t + \epsilon) - \log(\ell'_t + \epsilon), \qquad
              \xi \leftarrow \xi - \beta \bigl(J_z(\xi)^\top \delta + \gamma\, \xi\bigr),
              \quad J_z = \operatorname{diag}(z) - z z^\top,

    which raises the weight of tasks whose log-loss fell least. Alg. 1 compares the losses before and
    after one update on the same objective; here :math:`\ell'` is the next step's loss, on the next
    batch, which saves a forward pass but adds the batch-to-batch variation to :math:`\delta`. The
    authors' code instead re-evaluates the same batch after the step, moves :math:`\xi` with Adam
    rather than the plain step above, and clips the shared gradient's norm (``max_norm=1`` by
    default); none of that is done here. Multiplying a task's loss by a
    constant changes neither :math:`\delta` nor the direction of :math:`d` (only :math:`c`, a
    common factor), so FAMO is invariant to loss scales up to :math:`\epsilon`.

    :math:`\xi` and the last losses are buffers (checkpointed). Under DDP the losses are averaged
    over the ranks before they update :math:`\xi`, so every rank keeps the same logits.

    Args:
        tasks: the task names.
        lr: :math:`\beta`, the logits' step size (paper: 0.025).
        weight_decay: :math:`\gamma` (paper: 0.001).
        eps: :math:`\epsilon > 0`, keeps :math:`\log` finite for losses that are exactly 0.

    Example:
        >>> import torch
        >>> famo = FAMO(("a", "b"))
        >>> total = famo({"a": torch.tensor(1.0), "b": torch.tensor(4.0)})
        >>> {k: round(v, 3) for k, v in famo.last_weights.items()}  # c z_t / l_t: scale-balanced
        {'a': 0.8, 'b': 0.2}
    """

    logits: torch.Tensor
    previous_log_loss: torch.Tensor

    def __init__(self, tasks: Sequence[str], lr: float = 0.025, weight_decay: float = 0.001, eps: float = 1e-8) -> None:
        super().__init__(tasks)
        for name, value in (("lr", lr), ("weight_decay", weight_decay)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {value}")
        if not (math.isfinite(eps) and eps > 0):
            raise ValueError(f"eps must be finite and > 0, got {eps}")
        self.lr, self.weight_decay, self.eps = float(lr), float(weight_decay), float(eps)
        n = len(self.tasks)
        self.register_buffer("logits", torch.zeros(n, dtype=torch.float64))
        self.register_buffer("previous_log_loss", torch.full((n,), math.nan, dtype=torch.float64))

    def _update_logits(self, index: list[int], log_loss: torch.Tensor) -> None:
        previous = self.previous_log_loss[index]
        known = ~torch.isnan(previous)
        if bool(known.any()):
            delta = torch.where(known, previous - log_loss, torch.zeros_like(log_loss))
            xi = self.logits[index]
            z = torch.softmax(xi, dim=0)
            jacobian_t_delta = z * delta - z * (z * delta).sum()
            self.logits[index] = xi - self.lr * (jacobian_t_delta + self.weight_decay * xi)
        self.previous_log_loss[index] = log_loss

    def terms(self, losses: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        names = list(losses)
        index = [self.tasks.index(task) for task in names]
        for task in names:
            value = float(losses[task].detach())
            if value < 0:
                raise ValueError(f"FAMO needs losses >= 0 (it takes their log), task '{task}' has {value}")
        with torch.no_grad():
            values = average_over_ranks(torch.stack([losses[task].detach().double() for task in names]))
            self._update_logits(index, torch.log(values + self.eps))
            z = torch.softmax(self.logits[index], dim=0)
            inverse = z / (values + self.eps)
            c = 1.0 / inverse.sum()
            weights = c * inverse
        self.last_weights = {task: float(weights[k]) for k, task in enumerate(names)}
        return {task: weights[k].to(losses[task].dtype) * losses[task] for k, task in enumerate(names)}

    def extra_repr(self) -> str:
        return f"tasks={self.tasks}, lr={self.lr}, weight_decay={self.weight_decay}"
