"""A pooled label space: several tasks' classes side by side in one output vector."""

from __future__ import annotations

from collections.abc import Mapping

import torch

__all__ = ["PooledLabelSpace"]


class PooledLabelSpace:
    r"""The concatenation of several tasks' label spaces, in a fixed task order.

    Task :math:`t` with :math:`K_t` classes owns the output slots
    :math:`[o_t, o_t + K_t)` with offset :math:`o_t = \sum_{s < t} K_s`, so its class :math:`c`
    is pooled class :math:`o_t + c` of a :math:`\sum_t K_t`-way problem. A one-hot target of
    task :math:`t` zero-padded to the pooled width (the seed's "[1x10] to [1x20] by
    zero-padding") is the one-hot vector of the pooled class, so cross-entropy on the pooled
    index equals cross-entropy on the zero-padded one-hot target.

    Args:
        num_classes: task name -> number of classes, in pooled order.

    >>> space = PooledLabelSpace({"mnist": 10, "notmnist": 10, "fashion": 10})
    >>> space.offsets, space.total
    ({'mnist': 0, 'notmnist': 10, 'fashion': 20}, 30)
    >>> space.pool("fashion", torch.tensor([0, 9])).tolist()
    [20, 29]
    >>> space.one_hot("notmnist", torch.tensor([1]))[0].nonzero().flatten().tolist()
    [11]
    >>> space.restrict("notmnist", torch.arange(30.0).unsqueeze(0)).tolist()
    [[10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, 19.0]]
    """

    def __init__(self, num_classes: Mapping[str, int]) -> None:
        if not num_classes:
            raise ValueError("a pooled label space needs at least one task")
        bad = {task: k for task, k in num_classes.items() if int(k) < 1}
        if bad:
            raise ValueError(f"every task needs at least one class, got {bad}")
        self.num_classes = {task: int(k) for task, k in num_classes.items()}
        self.offsets: dict[str, int] = {}
        offset = 0
        for task, k in self.num_classes.items():
            self.offsets[task] = offset
            offset += k
        self.total = offset

    @property
    def tasks(self) -> list[str]:
        return list(self.num_classes)

    def _check(self, task: str) -> None:
        if task not in self.num_classes:
            raise KeyError(f"task {task!r} is not in the pooled label space {self.tasks}")

    def slice(self, task: str) -> slice:
        """The output slots of ``task``."""
        self._check(task)
        return slice(self.offsets[task], self.offsets[task] + self.num_classes[task])

    def pool(self, task: str, labels: torch.Tensor) -> torch.Tensor:
        """Class indices of ``task`` -> pooled class indices (``label + offset``)."""
        self._check(task)
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes[task]):
            raise ValueError(
                f"labels of task {task!r} must lie in [0, {self.num_classes[task]}), "
                f"got range [{int(labels.min())}, {int(labels.max())}]"
            )
        return labels.long() + self.offsets[task]

    def one_hot(self, task: str, labels: torch.Tensor) -> torch.Tensor:
        """Zero-padded one-hot targets of width :attr:`total` (float32)."""
        return torch.nn.functional.one_hot(self.pool(task, labels), self.total).float()

    def restrict(self, task: str, pooled_output: torch.Tensor) -> torch.Tensor:
        """The columns of ``task`` in a ``(..., total)`` pooled output."""
        if pooled_output.shape[-1] != self.total:
            raise ValueError(f"pooled output must have {self.total} columns, got shape {tuple(pooled_output.shape)}")
        return pooled_output[..., self.slice(task)]

    def __repr__(self) -> str:
        return f"PooledLabelSpace({self.num_classes})"
