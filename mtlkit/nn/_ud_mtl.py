"""User-defined hard sharing (UD-MTL): the first ``N`` layers tied across tasks, the rest per task.

The deep-MTL baseline of DMTRL (Yang & Hospedales 2017, Sec. 4): one network per task with the
same architecture, where the user picks how many bottom layers are hard-shared (the paper searches
``N`` by cross-validation; ``N = 0`` is single-task learning, ``N = len(layers)`` full sharing).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from torch import Tensor, nn

__all__ = ["LayerFactory", "LayerSpec", "UserDefinedSharing", "count_parameters"]

LayerFactory = Callable[[], nn.Module]
# One factory for every task, or one per task (heterogeneous layers such as different heads).
LayerSpec = LayerFactory | Mapping[str, LayerFactory]


class UserDefinedSharing(nn.Module):
    """Hard sharing of the first ``num_shared`` layers; the remaining layers are built per task.

    Every layer is built by calling its factory, so each task tower gets fresh, independent
    parameters. A per-task spec (``{task: factory}``) describes heterogeneous layers, e.g. output
    heads of different sizes; such a layer cannot be shared.

    ``forward`` takes a shared batch ``(B, ...)`` — the shared trunk runs once — or a mapping
    ``{task: (B_t, ...)}`` of per-task batches, and returns ``{task: output}``.

    Args:
        layers: the architecture bottom-up, as layer specs.
        num_shared: ``N``, how many bottom layers are tied across tasks (``0 ≤ N ≤ len(layers)``).
        task_names: task keys of the output dict.

    >>> import torch
    >>> net = UserDefinedSharing(
    ...     [lambda: nn.Linear(4, 8), nn.ReLU,
    ...      {"a": lambda: nn.Linear(8, 1), "b": lambda: nn.Linear(8, 3)}],
    ...     num_shared=2, task_names=["a", "b"])
    >>> {task: tuple(out.shape) for task, out in net(torch.randn(5, 4)).items()}
    {'a': (5, 1), 'b': (5, 3)}
    """

    def __init__(self, layers: Sequence[LayerSpec], num_shared: int, task_names: Sequence[str]) -> None:
        super().__init__()
        self.task_names = [str(name) for name in task_names]
        if not self.task_names or len(set(self.task_names)) != len(self.task_names):
            raise ValueError(f"UserDefinedSharing: task_names must be unique and non-empty, got {task_names!r}")
        if not 0 <= num_shared <= len(layers):
            raise ValueError(
                f"UserDefinedSharing: num_shared={num_shared} must be in [0, {len(layers)}] (number of layers)"
            )
        for index, spec in enumerate(layers):
            if isinstance(spec, Mapping):
                if index < num_shared:
                    raise ValueError(
                        f"UserDefinedSharing: layer {index} is specified per task, so it cannot be "
                        f"among the first num_shared={num_shared} shared layers"
                    )
                if set(spec) != set(self.task_names):
                    raise ValueError(
                        f"UserDefinedSharing: layer {index} has specs for tasks {sorted(spec)}, "
                        f"expected exactly {sorted(self.task_names)}"
                    )
        self.num_shared = num_shared
        self.shared = nn.Sequential(*(_build(spec, None) for spec in layers[:num_shared]))
        self.towers = nn.ModuleDict(
            {task: nn.Sequential(*(_build(spec, task) for spec in layers[num_shared:])) for task in self.task_names}
        )

    def forward(self, inputs: Tensor | Mapping[str, Tensor], tasks: Sequence[str] | None = None) -> dict[str, Tensor]:
        """Shared batch → trunk once, then every tower; per-task batches → trunk per task.

        ``tasks`` (as the Trainer passes it) restricts which towers run (default: all).
        """
        wanted = self.task_names if tasks is None else list(tasks)
        if isinstance(inputs, Mapping):
            missing = set(wanted) - set(inputs)
            if missing:
                raise ValueError(f"UserDefinedSharing: per-task inputs miss tasks {sorted(missing)}")
            return {task: self.towers[task](self.shared(inputs[task])) for task in wanted}
        features = self.shared(inputs)
        return {task: self.towers[task](features) for task in wanted}


def _build(spec: LayerSpec, task: str | None) -> nn.Module:
    factory = spec[task] if isinstance(spec, Mapping) and task is not None else spec
    if not callable(factory):
        raise TypeError(
            f"a shared layer's spec must be a factory (per-task mappings are for task-specific layers), got {spec!r}"
        )
    module = factory()
    if not isinstance(module, nn.Module):
        raise TypeError(f"UserDefinedSharing: a layer factory returned {type(module).__name__}, not an nn.Module")
    return module


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters, each shared tensor counted once (paper App. B).

    >>> count_parameters(nn.Linear(3, 2))
    8
    """
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
