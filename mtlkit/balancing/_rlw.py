"""Random loss weighting (Lin, Ye, Xu, Shi & Zhang, TMLR 2022)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from mtlkit.balancing._base import TaskWeighting

__all__ = ["RandomLossWeighting"]


class RandomLossWeighting(TaskWeighting):
    r"""RLW (Lin et al., "Reasonable Effectiveness of Random Weighting: A Litmus Test for
    Multi-Task Learning", TMLR 2022, Eq. 4 with the normal distribution of their experiments):

    .. math:: \lambda = \operatorname{softmax}(z), \quad z \sim \mathcal N(0, I_T)
              \text{ drawn afresh every step}, \qquad L = \sum_t \lambda_t L_t

    The weights are positive and sum to 1. They come from this module's own generator, seeded
    by ``seed`` and checkpointed with it, so runs are reproducible, a resumed run draws the same
    weights, and every DDP rank draws the same ones; the global random streams are not touched.

    Args:
        tasks: the task names.
        seed: seed of the weights' generator.

    Example:
        >>> import torch
        >>> rlw = RandomLossWeighting(("a", "b", "c"), seed=0)
        >>> _ = rlw({t: torch.tensor(1.0) for t in ("a", "b", "c")})
        >>> round(sum(rlw.last_weights.values()), 6)
        1.0
    """

    def __init__(self, tasks: Sequence[str], seed: int = 0) -> None:
        super().__init__(tasks)
        if not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {seed!r}")
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)

    def terms(self, losses: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        z = torch.randn(len(self.tasks), generator=self.generator, dtype=torch.float64)
        present = torch.tensor([task in losses for task in self.tasks])
        weights = torch.softmax(z[present], dim=0)
        names = [task for task in self.tasks if task in losses]
        self.last_weights = {task: float(w) for task, w in zip(names, weights, strict=True)}
        return {task: self.last_weights[task] * losses[task] for task in names}

    def get_extra_state(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def set_extra_state(self, state: Any) -> None:
        self.generator.set_state(state["generator"])

    def extra_repr(self) -> str:
        return f"tasks={self.tasks}, seed={self.seed}"
