"""PCGrad: projecting conflicting gradients (Yu et al., 2020)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from mtlkit.balancing._aggregator import GradientAggregator

__all__ = ["PCGrad"]


class PCGrad(GradientAggregator):
    r"""PCGrad (Yu et al., "Gradient Surgery for Multi-Task Learning", NeurIPS 2020, Alg. 1).

    For every task :math:`i`, start from :math:`g_i^{PC} = g_i` and, for the tasks :math:`j` in a
    random order, remove the component along :math:`g_j` when the two conflict:

    .. math:: \text{if } g_i^{PC} \cdot g_j < 0: \quad
              g_i^{PC} \leftarrow g_i^{PC} - \frac{g_i^{PC} \cdot g_j}{\lVert g_j \rVert^2}\, g_j,
              \qquad d = \sum_i g_i^{PC}.

    Only the *other* tasks' gradients are projected against ("the normal plane of the gradient of
    any other task that it conflicts with"). Each projection leaves :math:`g_i^{PC} \cdot g_j = 0`
    at that moment. For two tasks, the case the paper analyses, this means that after projection
    neither gradient conflicts with the other task's, and :math:`d \cdot g_t \ge 0` for both. For
    more tasks a later projection can bring back a conflict with an earlier :math:`g_j`; the paper
    makes no claim there. The update is a combination of the original gradients whose coefficients depend only
    on their inner products, so it is computed on the Gramian: :math:`g_i^{PC} = \sum_j C_{ij} g_j`.

    The order comes from this module's own generator, seeded by ``seed`` and checkpointed, so a
    run is reproducible, a resumed run draws the same orders, and every DDP rank the same ones.

    Args:
        tasks: the task names.
        seed: seed of the projection order's generator.
        representation: not allowed (the paper defines the method on the gradients of the shared
            parameters): anything but ``False`` raises ``ValueError``.

    Example:
        >>> import torch
        >>> pcgrad = PCGrad(("a", "b"))
        >>> pcgrad.aggregate(torch.tensor([[1.0, 0.0], [-1.0, 1.0]]))  # (0.5, 0.5) + (0, 1)
        tensor([0.5000, 1.5000])
    """

    def __init__(self, tasks: Sequence[str], seed: int = 0, representation: bool | nn.Module = False) -> None:
        super().__init__(tasks, representation=representation)
        if not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got seed={seed!r}")
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)

    def weights(self, gramian: torch.Tensor) -> torch.Tensor:
        g = gramian.cpu()
        n = len(g)
        coefficients = torch.eye(n, dtype=torch.float64)
        for i in range(n):
            for j in torch.randperm(n, generator=self.generator).tolist():
                if j == i:
                    continue
                dot = float(coefficients[i] @ g[:, j])  # g_i^PC . g_j
                if dot < 0 and g[j, j] > 0:
                    coefficients[i, j] -= dot / float(g[j, j])
        return coefficients.sum(dim=0)

    def get_extra_state(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def set_extra_state(self, state: Any) -> None:
        self.generator.set_state(state["generator"])

    def extra_repr(self) -> str:
        return f"tasks={self.tasks}, seed={self.seed}"
