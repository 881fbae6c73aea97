"""The slot of the Trainer that turns ``{task: loss}`` into one update."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence

import torch
from torch import nn

__all__ = ["TaskWeighting"]


class TaskWeighting(nn.Module, ABC):
    r"""Base class: how the per-task losses of a step become what is back-propagated.

    A weighting is an ``nn.Module`` so that learnable weights (uncertainty weighting's
    :math:`\log\sigma^2`, GradNorm's :math:`w`) live in ``parameters()`` and everything a method
    remembers between steps lives in ``state_dict()`` — the Trainer checkpoints it, so a resumed
    run continues with the same weights.

    A subclass implements :meth:`terms`, the per-task terms :math:`\tau_t` whose sum is
    back-propagated; ``forward(losses, scales)`` returns :math:`\sum_t s_t \tau_t` (scales
    :math:`s_t = 1` by default; a schedule composed on top, :class:`~mtlkit.balancing.Scheduled`,
    passes its weights as the scales). A method whose update is not the gradient of one scalar
    (DB-MTL) overrides :meth:`backward` instead. The Trainer calls :meth:`attach` once with the
    model, :meth:`counts` for every phase of every step and :meth:`backward` for every phase that
    computed a loss, :meth:`on_iteration_end` after every
    optimiser step and :meth:`on_epoch_end` after every epoch.

    Losses are combined in at least float32, whatever precision the forward pass ran in, so
    bf16 autocast cannot underflow a method's statistics.

    Args:
        tasks: the names of the tasks this weighting balances.

    Example:
        >>> import torch
        >>> class Halves(TaskWeighting):
        ...     def terms(self, losses):
        ...         return {task: 0.5 * loss for task, loss in losses.items()}
        >>> Halves(("a", "b"))({"a": torch.tensor(2.0), "b": torch.tensor(4.0)})
        tensor(3.)
    """

    #: Whether the method gives the same update on every rank under DistributedDataParallel.
    supports_distributed: bool = True

    def __init__(self, tasks: Sequence[str]) -> None:
        super().__init__()
        if isinstance(tasks, str):
            raise TypeError(f"tasks must be a sequence of task names, not one string: got tasks={tasks!r}")
        tasks = tuple(tasks)
        if not tasks:
            raise ValueError("a task weighting needs at least one task, got tasks=()")
        if any(not isinstance(t, str) for t in tasks):
            raise TypeError(f"task names must be strings, got tasks={tasks!r}")
        if len(set(tasks)) != len(tasks):
            raise ValueError(f"task names must be unique, got tasks={tasks!r}")
        self.tasks: tuple[str, ...] = tasks
        self.last_weights: dict[str, float] = {}

    # ------------------------------------------------------------------ what subclasses give
    @abstractmethod
    def terms(self, losses: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        r"""Per-task terms :math:`\tau_t` (one per task of ``losses``) whose sum is back-propagated.

        ``losses`` is never empty and holds only tasks of :attr:`tasks`, as scalar tensors of at
        least float32.
        """

    def counts(self, task: str) -> bool:
        """Whether ``task``'s loss can enter this step's update, known before any loss is computed.

        ``True`` unless the method knows its weight is exactly 0 now (a schedule that has switched
        the task off): the Trainer skips a phase none of whose tasks counts, forward pass included.

        Example:
            >>> from mtlkit import StairsSchedule
            >>> from mtlkit.balancing import Scheduled
            >>> weighting = Scheduled(StairsSchedule(1, supervised="class", reconstruction="rec", unit="iteration"))
            >>> weighting.counts("class"), weighting.counts("rec")  # t = 0: pre-training only
            (False, True)
            >>> weighting.on_iteration_end(); weighting.counts("class"), weighting.counts("rec")
            (True, False)
        """
        return True

    def attach(self, model: nn.Module) -> None:
        """Called once by the Trainer with the (unwrapped) model; methods that need its shared
        parameters take them here and raise ``ValueError`` when there are none."""

    def on_iteration_end(self) -> None:
        """Called after every optimiser step (e.g. to renormalise learnable weights)."""

    def on_epoch_end(self) -> None:
        """Called after every epoch (e.g. to record per-epoch average losses)."""

    # ------------------------------------------------------------------ shared machinery
    def checked_losses(self, losses: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``losses`` in the order of :attr:`tasks`, as scalars of at least float32."""
        unknown = [task for task in losses if task not in self.tasks]
        if unknown:
            raise ValueError(f"losses name task(s) {unknown} that this weighting does not know; tasks={self.tasks}")
        checked: dict[str, torch.Tensor] = {}
        for task in self.tasks:
            if task not in losses:
                continue
            loss = losses[task]
            if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
                raise ValueError(f"loss of task '{task}' must be a scalar tensor, got {loss!r}")
            checked[task] = loss if loss.dtype in (torch.float32, torch.float64) else loss.float()
        return checked

    def forward(
        self, losses: Mapping[str, torch.Tensor], scales: Mapping[str, float] | None = None
    ) -> torch.Tensor | None:
        r""":math:`\sum_t s_t \tau_t` over the tasks of ``losses``; ``None`` when there are none."""
        checked = self.checked_losses(losses)
        if not checked:
            return None
        terms = self.terms(checked)
        if scales is None:
            return torch.stack(list(terms.values())).sum()
        return torch.stack([scales[task] * term for task, term in terms.items()]).sum()

    def backward(self, losses: Mapping[str, torch.Tensor], scales: Mapping[str, float] | None = None) -> bool:
        """Back-propagate the combined loss into ``.grad``; ``False`` when there was nothing to do."""
        total = self(losses, scales)
        if total is None:
            return False
        total.backward()
        return True

    def extra_repr(self) -> str:
        return f"tasks={self.tasks}"
