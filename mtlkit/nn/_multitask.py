"""Multi-task models: a trunk (shared or per task) and one head per task."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

import torch
from torch import nn

from mtlkit._validate import TaskMismatchError
from mtlkit.nn._module import MultiTaskModule, TaskInput


class MultiTaskModel(MultiTaskModule):
    r"""Trunk + per-task heads; ``forward`` returns ``{task: output}``.

    * ``trunk`` an ``nn.Module``: **hard sharing** — every task reads the same features
      :math:`h = f(x)` and :math:`y_t = g_t(h)`.
    * ``trunk`` a mapping ``task → nn.Module``: **no sharing** of the trunk —
      :math:`y_t = g_t(f_t(x))`; together with :class:`~mtlkit.nn.LabelReuseHead` this expresses
      "independent nets + label reuse".

    The input is either one batch shared by all tasks, or a mapping ``task → batch`` for pooled
    data where each task brings its own examples. With a shared trunk the per-task batches go
    through the trunk as one concatenated batch (one kernel launch per layer instead of T).

    Heads that have a ``source_task`` attribute (label-reuse heads) are called as
    ``head(features, outputs[source_task])`` after their source; cycles are rejected.

    Example:
        >>> import torch
        >>> from mtlkit.nn import MLP, LinearHead
        >>> model = MultiTaskModel(MLP(784, [64]), {"item": LinearHead(64, 10), "group": LinearHead(64, 3)})
        >>> out = model(torch.zeros(5, 1, 28, 28))
        >>> {task: tuple(y.shape) for task, y in out.items()}
        {'item': (5, 10), 'group': (5, 3)}
        >>> list(model(torch.zeros(5, 1, 28, 28), tasks=["group"]))
        ['group']
    """

    def __init__(self, trunk: nn.Module | Mapping[str, nn.Module], heads: Mapping[str, nn.Module]) -> None:
        super().__init__()
        if not isinstance(heads, Mapping):
            raise TypeError(f"heads must be a mapping task -> head module, got {type(heads).__name__}")
        if not heads:
            raise ValueError("a MultiTaskModel needs at least one head")
        if not isinstance(trunk, nn.Module | Mapping):
            raise TypeError(f"trunk must be an nn.Module or a mapping task -> module, got {type(trunk).__name__}")
        self.heads = nn.ModuleDict(dict(heads))
        if isinstance(trunk, Mapping):
            missing = sorted(set(heads) - set(trunk))
            extra = sorted(set(trunk) - set(heads))
            if missing or extra:
                raise ValueError(
                    f"per-task trunks and heads must name the same tasks; no trunk for {missing}, no head for {extra}"
                )
            self.trunk: nn.Module = nn.ModuleDict(dict(trunk))
            self.shared_trunk = False
        else:
            self.trunk = trunk
            self.shared_trunk = True
        self.tasks: tuple[str, ...] = tuple(heads)
        self._order = _dependency_order(self.heads)

    def shared_modules(self) -> list[nn.Module]:
        """The shared trunk's leaf modules that own parameters (``[]`` with per-task trunks)."""
        if not self.shared_trunk:
            return []
        return [m for m in self.trunk.modules() if any(True for _ in m.parameters(recurse=False))]

    def _sources(self, task: str) -> str | None:
        return getattr(self.heads[task], "source_task", None)

    def _needed(self, tasks: Sequence[str]) -> list[str]:
        """Requested tasks plus the label-reuse sources they depend on, in dependency order."""
        needed: set[str] = set()
        stack = list(tasks)
        while stack:
            task = stack.pop()
            if task in needed:
                continue
            needed.add(task)
            if (source := self._sources(task)) is not None:
                stack.append(source)
        return [task for task in self._order if task in needed]

    def features(self, x: TaskInput, tasks: Sequence[str]) -> dict[str, torch.Tensor]:
        """Trunk features for each task in ``tasks``."""
        if isinstance(x, Mapping):
            unknown = sorted(set(x) - set(self.tasks))
            if unknown:
                raise TaskMismatchError(f"inputs given for unknown task(s) {unknown}; model tasks: {list(self.tasks)}")
            missing = [task for task in tasks if task not in x]
            if missing:
                raise TaskMismatchError(f"no input for task(s) {missing}; inputs given for {sorted(x)}")
            if self.shared_trunk:
                sizes = [x[task].shape[0] for task in tasks]
                joined = self.trunk(torch.cat([x[task] for task in tasks]))
                return dict(zip(tasks, joined.split(sizes), strict=True))
            per_task = cast(nn.ModuleDict, self.trunk)  # not shared_trunk: __init__ made it a ModuleDict
            return {task: per_task[task](x[task]) for task in tasks}
        if self.shared_trunk:
            shared = self.trunk(x)
            return {task: shared for task in tasks}
        per_task = cast(nn.ModuleDict, self.trunk)
        return {task: per_task[task](x) for task in tasks}

    def forward(self, x: TaskInput, tasks: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        if isinstance(tasks, str):
            raise TypeError(f"tasks must be a sequence of task names, got the string {tasks!r}")
        if not isinstance(x, torch.Tensor | Mapping):
            raise TypeError(f"x must be a tensor or a mapping task -> tensor, got {type(x).__name__}")
        requested = list(self.tasks) if tasks is None else list(tasks)
        unknown = [task for task in requested if task not in self.heads]
        if unknown:
            raise TaskMismatchError(f"unknown task(s) {unknown}; model tasks: {list(self.tasks)}")
        needed = self._needed(requested)
        if isinstance(x, Mapping) and any(self._sources(t) for t in needed):
            raise ValueError("label-reuse heads need one input shared by all tasks, not per-task inputs")
        feats = self.features(x, needed)
        outputs: dict[str, torch.Tensor] = {}
        for task in needed:
            head = self.heads[task]
            source = self._sources(task)
            outputs[task] = head(feats[task]) if source is None else head(feats[task], outputs[source])
        return {task: outputs[task] for task in requested}


class SingleTaskModels(MultiTaskModel):
    """One complete network per task behind the :class:`MultiTaskModel` interface.

    The single-task baseline of every example: same ``forward(x, tasks=...)``, same dict
    output, same Trainer — only nothing is shared.

    Example:
        >>> import torch
        >>> from mtlkit.nn import MLP
        >>> stl = SingleTaskModels({"a": MLP(4, [8, 2], final_activation=False), "b": MLP(4, [3])})
        >>> {task: tuple(y.shape) for task, y in stl(torch.zeros(1, 4)).items()}
        {'a': (1, 2), 'b': (1, 3)}
    """

    def __init__(self, networks: Mapping[str, nn.Module]) -> None:
        super().__init__(dict(networks), {task: nn.Identity() for task in networks})


def _dependency_order(heads: Mapping[str, nn.Module] | nn.ModuleDict) -> list[str]:
    """Tasks ordered so that every label-reuse source comes before its consumer."""
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(task: str, path: list[str]) -> None:
        if state.get(task) == "done":
            return
        if state.get(task) == "visiting":
            raise ValueError(f"label-reuse heads form a cycle: {' -> '.join([*path, task])}")
        state[task] = "visiting"
        source = getattr(heads[task], "source_task", None)
        if source is not None:
            if source not in heads:
                raise ValueError(f"head of task '{task}' reuses unknown task '{source}'")
            visit(source, [*path, task])
        state[task] = "done"
        order.append(task)

    for task in heads:
        visit(task, [])
    return order
