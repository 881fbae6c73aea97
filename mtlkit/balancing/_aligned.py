"""Aligned-MTL: aligning the principal components of the task gradients (Senushkin et al., 2023)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from mtlkit.balancing._aggregator import GradientAggregator

__all__ = ["AlignedMTL"]

#: Eigenvalues of G below this fraction of the largest are taken as 0 (the rank of the
#: gradients): float64 resolves them to about 1e-16 of the largest, so singular values within 1e-7
#: of the largest are kept, and gradients further apart than that count as dependent.
RANK_TOLERANCE = 1e-14


class AlignedMTL(GradientAggregator):
    r"""Aligned-MTL (Senushkin et al., "Independent Component Alignment for Multi-Task Learning",
    CVPR 2023, Sec. 4 and Alg. 1): make the matrix of task gradients perfectly conditioned before
    summing. With the eigendecomposition :math:`G = V \Lambda V^\top` (rank :math:`R`) and
    :math:`\sigma = \sqrt{\lambda_R}` its smallest non-zero singular value,

    .. math:: \hat J^\top = J^\top B, \qquad B = \sigma\, V_R \Lambda_R^{-1/2} V_R^\top, \qquad
              d = \hat J^\top \omega = \sum_t (B\omega)_t\, g_t ,

    so that the aligned gradients have all singular values equal to :math:`\sigma`
    (:math:`\hat J \hat J^\top = \sigma^2 V_R V_R^\top`). :math:`\omega` are the pre-defined task
    weights (default 1 each, so orthogonal gradients of equal norms give plain summing). Weights
    do not change when every gradient is multiplied by one constant; eigenvalues below
    :data:`RANK_TOLERANCE` times the largest count as 0, so a zero or colinear gradient lowers the
    rank instead of dividing by 0.

    ``representation=True`` is the paper's Aligned-MTL-UB (gradients of the shared representation).

    Args:
        tasks: the task names.
        task_weights: :math:`\omega`, one non-negative weight per task; default 1 each.
        representation: see :class:`~mtlkit.balancing.GradientAggregator`.

    Example:
        >>> import torch
        >>> aligned = AlignedMTL(("a", "b"))
        >>> aligned.aggregate(torch.tensor([[1.0, 0.0], [0.0, 4.0]]))  # both rescaled to norm 1
        tensor([1., 1.])
    """

    allows_representation = True

    def __init__(
        self,
        tasks: Sequence[str],
        task_weights: Mapping[str, float] | None = None,
        representation: bool | nn.Module = False,
    ) -> None:
        super().__init__(tasks, representation=representation)
        given = dict(task_weights) if task_weights is not None else {t: 1.0 for t in self.tasks}
        if set(given) != set(self.tasks) or any(not (float(v) >= 0) for v in given.values()):
            raise ValueError(f"task_weights must give a weight >= 0 to each of {self.tasks}, got {task_weights!r}")
        self.task_weights = {t: float(given[t]) for t in self.tasks}

    def weights(self, gramian: torch.Tensor) -> torch.Tensor:
        g = gramian.cpu()
        omega = torch.tensor([self.task_weights[t] for t in self.step_tasks], dtype=torch.float64)
        values, vectors = torch.linalg.eigh(g)
        kept = values > RANK_TOLERANCE * values.max()
        values, vectors = values[kept], vectors[:, kept]
        sigma = values.min().sqrt()
        b = sigma * (vectors * values.rsqrt()[None, :]) @ vectors.T
        weights: torch.Tensor = b @ omega
        return weights
