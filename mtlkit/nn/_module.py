"""The interface every multi-task model implements, written down once."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence

import torch
from torch import nn

TaskInput = torch.Tensor | Mapping[str, torch.Tensor]

__all__ = ["MultiTaskModule", "TaskInput"]


class MultiTaskModule(nn.Module, ABC):
    r"""Base of multi-task models: ``tasks`` and ``forward(x, tasks) -> {task: output}``.

    The :class:`~mtlkit.Trainer`, the reconstruction wrapper and the task weightings rely on this
    interface and nothing else, instead of probing a model's attributes.

    * ``tasks``: the task names, in the model's order (a subclass sets it, usually in
      ``__init__``, or defines it as a property).
    * ``forward(x, tasks=None)``: the outputs of the requested tasks (all when ``None``), keyed by
      task name; ``x`` is one batch shared by all tasks or a mapping ``task → batch``.
    * :meth:`shared_modules`: the modules whose parameters *every* task's output depends on, in
      forward order (hard sharing's trunk). Gradient-based weightings (GradNorm, DB-MTL) read it;
      a model without shared parameters returns ``[]``.

    Example:
        >>> import torch
        >>> class TwoHeads(MultiTaskModule):
        ...     tasks = ("a", "b")
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.trunk = torch.nn.Linear(3, 4)
        ...         self.heads = torch.nn.ModuleDict({t: torch.nn.Linear(4, 1) for t in self.tasks})
        ...     def forward(self, x, tasks=None):
        ...         h = self.trunk(x)
        ...         return {t: self.heads[t](h) for t in (tasks or self.tasks)}
        ...     def shared_modules(self):
        ...         return [self.trunk]
        >>> model = TwoHeads()
        >>> sorted(model(torch.zeros(2, 3)))
        ['a', 'b']
        >>> len(model.shared_parameters())
        2
    """

    tasks: tuple[str, ...]

    @abstractmethod
    def forward(self, x: TaskInput, tasks: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Outputs of ``tasks`` (all tasks when ``None``) for the batch ``x``."""

    def shared_modules(self) -> list[nn.Module]:
        """Leaf modules with parameters that every task uses, in forward order; ``[]`` by default."""
        return []

    def shared_parameters(self) -> list[nn.Parameter]:
        """Trainable parameters of :meth:`shared_modules`, each once, in forward order."""
        seen: set[int] = set()
        parameters: list[nn.Parameter] = []
        for module in self.shared_modules():
            for p in module.parameters():
                if p.requires_grad and id(p) not in seen:
                    seen.add(id(p))
                    parameters.append(p)
        return parameters
