"""``DMTRLNet``: ``T`` same-architecture task networks whose layers are softly shared (DMTRL).

Yang & Hospedales (ICLR 2017), Sec. 3.3: train one network per task (STL), stack the weights of
every shareable layer along a last task axis, decompose each stack with relative error ``ε``
(which picks the ranks), and train the resulting factorised network end-to-end. This module turns
any ``T`` trained ``nn.Sequential`` networks of identical architecture into that network.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping, Sequence
from typing import Literal, cast

import torch
from torch import Tensor, nn

from mtlkit.factorized import RankRule
from mtlkit.nn._factorized_base import FactorizationType, FactorizedLayer, resolve_factorization
from mtlkit.nn._factorized_conv import FactorizedConv2d
from mtlkit.nn._factorized_linear import FactorizedLinear

__all__ = ["DMTRLNet", "PerTask", "leaf_layers"]


class PerTask(nn.Module):
    """One independent module per task, applied to that task's slice of a ``(T, B, ...)`` tensor.

    Used for layers that cannot be shared — e.g. the output layers of heterogeneous tasks, whose
    sizes differ — so the outputs are returned as a list (shapes may differ between tasks).

    >>> layer = PerTask([nn.Linear(3, 2), nn.Linear(3, 5)])
    >>> [tuple(o.shape) for o in layer(torch.randn(2, 4, 3))]
    [(4, 2), (4, 5)]
    """

    def __init__(self, modules: Sequence[nn.Module]) -> None:
        super().__init__()
        self.tasks = nn.ModuleList(modules)

    def forward(self, inputs: Tensor | Sequence[Tensor]) -> list[Tensor]:
        if len(inputs) != len(self.tasks):
            raise ValueError(f"PerTask: {len(inputs)} task inputs for {len(self.tasks)} task modules")
        return [module(x) for module, x in zip(self.tasks, inputs, strict=True)]


def leaf_layers(net: nn.Module) -> list[nn.Module]:
    """The layers of ``net`` in execution order, with nested ``nn.Sequential`` flattened.

    >>> net = nn.Sequential(nn.Sequential(nn.Linear(2, 3), nn.ReLU()), nn.Linear(3, 1))
    >>> [type(m).__name__ for m in leaf_layers(net)]
    ['Linear', 'ReLU', 'Linear']
    """
    if isinstance(net, nn.Sequential):
        return [leaf for child in net for leaf in leaf_layers(child)]
    return [net]


# Parameter-free layers that act on each channel of an image batch on its own.
_CHANNELWISE = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.Dropout, nn.MaxPool2d, nn.AvgPool2d)


def _apply_to_all_tasks(layer: nn.Module, state: Tensor) -> Tensor:
    """Apply a parameter-free ``layer`` to every task of a ``(T, B, ...)`` state at once.

    Factorised convolutions return a ``(T, B, C, H, W)`` view of a batch-major ``(B, T·C, H, W)``
    buffer; a channel-wise layer runs on that buffer directly, so no copy is made either way.
    Anything else runs on the ``(T·B, ...)`` flattening.
    """
    if state.dim() == 5 and isinstance(layer, _CHANNELWISE):
        tasks, _, channels = state.shape[:3]
        outputs = layer(state.transpose(0, 1).flatten(1, 2))
        return cast(Tensor, outputs.unflatten(1, (tasks, channels)).transpose(0, 1))
    return cast(Tensor, layer(state.flatten(0, 1)).unflatten(0, state.shape[:2]))


def _shareable(layers: Sequence[nn.Module]) -> bool:
    """Whether the ``T`` corresponding layers can be stacked into one factorised layer."""
    first = layers[0]
    if type(first) not in (nn.Linear, nn.Conv2d):
        return False
    return all(type(layer) is type(first) and layer.weight.shape == first.weight.shape for layer in layers)


class DMTRLNet(nn.Module):
    r"""``T`` task networks with factorised (softly shared) layers, returning ``{task: output}``.

    Built from a sequence of layers of three kinds, applied in order to a ``(T, B, ...)`` state:

    * :class:`~mtlkit.nn.FactorizedLayer` — weights of all tasks composed from shared and
      task-specific factors, :math:`W = \mathrm{compose}(\text{factors})` with ``W[..., t]`` the
      weight of task ``t``; it accepts a shared ``(B, ...)`` input, so the first layer of a
      homogeneous problem runs once for all tasks;
    * :class:`PerTask` — independent per-task modules (heterogeneous output layers, batch norm);
    * parameter-free modules (activations, pooling, flatten, dropout), applied to all tasks at once
      on the ``(T·B, ...)`` view.

    ``execution`` chooses how the layers between the factorised ones see the tasks. Either way a
    factorised layer runs one planned contraction for all tasks (task batches of one size).
    ``"batched"`` — the parameter-free layers run once on the ``(T·B, ...)`` view (one kernel per
    layer: what an accelerator wants); ``"per_task"`` — :meth:`FactorizedLayer.forward_tasks` hands
    the outputs on per task, and the parameter-free layers run on each task's activations on their
    own, which on a CPU keeps them in cache (``network/<method> batched_vs_per_task`` in
    ``results/benchmarks.json``). ``"auto"`` (default) is ``per_task`` on CPU inputs and
    ``batched`` otherwise. Both give the same outputs.

    ``forward(x, tasks=None)`` takes one batch shared by all tasks, ``(B, ...)``, or per-task
    batches ``{task: (B_t, ...)}`` (different tasks may have different inputs and sizes: they are
    zero-padded to the largest ``B_t`` and the padding is cut from the outputs; tasks missing from
    the mapping run on padding only and are not returned; layers that mix examples within a batch,
    such as batch norm, would see the padding). The Trainer passes ``tasks``; only those outputs
    are returned.

    Use :meth:`from_single_task` for the paper's STL initialisation.

    >>> _ = torch.manual_seed(0)
    >>> stl = {t: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1)) for t in "abc"}
    >>> from mtlkit.factorized import RelativeError, Tucker
    >>> net = DMTRLNet.from_single_task(stl, Tucker, RelativeError(0.0))
    >>> x = torch.randn(5, 4)
    >>> torch.allclose(net(x)["b"], stl["b"](x), atol=1e-5)
    True
    """

    def __init__(self, layers: Sequence[nn.Module], task_names: Sequence[str]) -> None:
        super().__init__()
        self.task_names = [str(t) for t in task_names]
        self.execution: Literal["auto", "batched", "per_task"] = "auto"
        if not self.task_names or len(set(self.task_names)) != len(self.task_names):
            raise ValueError(f"DMTRLNet: task names must be unique and non-empty, got {task_names!r}")
        count = len(self.task_names)
        for index, layer in enumerate(layers):
            tasks = layer.num_tasks if isinstance(layer, FactorizedLayer) else None
            tasks = len(layer.tasks) if isinstance(layer, PerTask) else tasks
            if tasks is not None and tasks != count:
                raise ValueError(f"DMTRLNet: layer {index} has {tasks} tasks, expected {count}")
            if tasks is None and any(True for _ in layer.parameters()):
                raise ValueError(
                    f"DMTRLNet: layer {index} ({type(layer).__name__}) has parameters but is neither "
                    "a FactorizedLayer nor PerTask; wrap task-specific layers in PerTask"
                )
        self.layers = nn.ModuleList(layers)

    @property
    def tasks(self) -> list[str]:
        return list(self.task_names)

    @classmethod
    def from_single_task(
        cls,
        nets: Mapping[str, nn.Module],
        factorization: FactorizationType | str,
        rule: RankRule | None = None,
        *,
        rules: Mapping[int, RankRule] | None = None,
        shared_layers: Sequence[int] | None = None,
        split_tasks: bool | None = None,
        eps: float | None = None,
        ranks: Mapping[int, object] | None = None,
    ) -> DMTRLNet:
        """Factorise ``T`` trained single-task networks of identical architecture (paper Sec. 4).

        The nets' layers (nested ``nn.Sequential`` flattened, see :func:`leaf_layers`) are walked
        in step. Position ``i`` becomes a :class:`FactorizedLinear` / :class:`FactorizedConv2d`
        initialised by ``from_dense(..., factorization, rule)`` when all ``T`` layers are
        ``nn.Linear`` / ``nn.Conv2d`` of one shape (and ``i`` is in ``shared_layers``, if given);
        other layers with parameters are copied into :class:`PerTask`; parameter-free layers are
        kept once. The input nets are not modified.

        Args:
            nets: ``{task: trained network}``, all with the same sequence of layers.
            factorization: :class:`~mtlkit.factorized.LAF`, ``Tucker``, ``TT`` or ``CP``.
            rule: rank rule of every factorised layer; default ``RelativeError(0.1)`` (the paper's ε).
            rules: rank rules per leaf-layer index, overriding ``rule`` there.
            shared_layers: leaf-layer indices to factorise; default every shareable one.
            split_tasks: passed to every :class:`FactorizedConv2d` (``True``: each convolution whose
                kernel carries the task axis runs as ``T`` per-task convolutions, the same arithmetic;
                on CPU often faster for few input channels, e.g. the LeNet's conv1). ``None`` keeps
                the planner's default, one convolution.
            eps, ranks: deprecated (``eps`` → ``rule=RelativeError(eps)``; ``ranks`` per index → ``rules``).
        """
        what = "DMTRLNet.from_single_task"
        kind, default = resolve_factorization(factorization, rule, eps=eps, ranks=None, what=what)
        per_layer: dict[int, object] = dict(rules or {})
        if ranks is not None:
            warnings.warn(f"{what}: ranks= is deprecated; pass rules={{index: Ranks(...)}}", DeprecationWarning, 2)
            per_layer.update(ranks)
        if not nets:
            raise ValueError("DMTRLNet.from_single_task: need at least one network")
        names = list(nets)
        leaves = [leaf_layers(nets[name]) for name in names]
        depth = len(leaves[0])
        if any(len(seq) != depth for seq in leaves):
            raise ValueError(
                "DMTRLNet.from_single_task: the networks have different numbers of layers "
                f"{[len(seq) for seq in leaves]}"
            )
        layers: list[nn.Module] = []
        for index in range(depth):
            column = [seq[index] for seq in leaves]
            kinds = {type(layer).__name__ for layer in column}
            if len(kinds) != 1:
                raise ValueError(f"DMTRLNet.from_single_task: layer {index} differs between tasks: {kinds}")
            wanted = shared_layers is None or index in shared_layers
            if wanted and _shareable(column):
                layer_rule = per_layer.get(index, default)
                if isinstance(column[0], nn.Linear):
                    layers.append(FactorizedLinear.from_dense(column, kind, layer_rule))  # type: ignore[arg-type]
                else:
                    layers.append(
                        FactorizedConv2d.from_dense(column, kind, layer_rule, split_tasks=split_tasks)  # type: ignore[arg-type]
                    )
            elif any(True for _ in column[0].parameters()):
                layers.append(PerTask([copy.deepcopy(layer) for layer in column]))
            else:
                layers.append(copy.deepcopy(column[0]))
        return cls(layers, names)

    def factorized_layers(self) -> dict[str, FactorizedLayer]:
        """``{qualified name: layer}`` of the softly shared layers, bottom-up."""
        return {n: m for n, m in self.named_modules() if isinstance(m, FactorizedLayer)}

    def forward(  # noqa: PLR0912 - input layouts (shared, per-task, ragged) × execution modes, checked in one place
        self, inputs: Tensor | Mapping[str, Tensor], tasks: Sequence[str] | None = None
    ) -> dict[str, Tensor]:
        wanted = self.task_names if tasks is None else list(tasks)
        unknown = [t for t in wanted if t not in self.task_names]
        if unknown:
            raise ValueError(f"DMTRLNet: unknown task(s) {unknown}; tasks are {self.task_names}")
        lengths: list[int] | None = None
        state: Tensor | list[Tensor]
        shared = not isinstance(inputs, Mapping)
        if shared:
            state = inputs  # type: ignore[assignment]
        else:
            state, lengths = self._stack_task_inputs(inputs)  # type: ignore[arg-type]
        per_task = self._runs_per_task(inputs)
        for layer in self.layers:
            if isinstance(layer, FactorizedLayer) and per_task:
                state = layer.forward_tasks(state)
                shared = False
            elif isinstance(layer, FactorizedLayer):
                state = layer(torch.stack(state) if isinstance(state, list) else state)
                shared = False
            elif isinstance(layer, PerTask):
                if shared:
                    state = [state] * len(self.task_names)  # type: ignore[list-item]
                    shared = False
                state = layer(state)
            elif isinstance(state, list):
                state = [layer(x) for x in state]
            elif shared:
                state = layer(state)
            else:
                state = _apply_to_all_tasks(layer, state)
        if shared:
            raise ValueError("DMTRLNet: no task-specific layer, so every task would get the same output")
        outputs = dict(zip(self.task_names, state, strict=True))
        if lengths is not None:
            outputs = {t: y[:n] for (t, y), n in zip(outputs.items(), lengths, strict=True)}
        return {task: outputs[task] for task in wanted if lengths is None or task in inputs}

    def _runs_per_task(self, inputs: Tensor | Mapping[str, Tensor]) -> bool:
        if self.execution not in ("auto", "batched", "per_task"):
            raise ValueError(f"DMTRLNet: execution must be 'auto', 'batched' or 'per_task', got {self.execution!r}")
        if self.execution != "auto":
            return self.execution == "per_task"
        example = inputs if isinstance(inputs, Tensor) else next(iter(inputs.values()))
        return example.device.type == "cpu"

    def _stack_task_inputs(self, inputs: Mapping[str, Tensor]) -> tuple[Tensor, list[int]]:
        """Zero-pad per-task batches to a common size and stack them to ``(T, B_max, ...)``."""
        extra = [t for t in inputs if t not in self.task_names]
        if extra or not inputs:
            raise ValueError(f"DMTRLNet: per-task inputs for unknown tasks {extra}; tasks are {self.task_names}")
        example = next(iter(inputs.values()))
        size = max(int(x.shape[0]) for x in inputs.values())
        stacked = example.new_zeros((len(self.task_names), size, *example.shape[1:]))
        lengths = []
        for index, task in enumerate(self.task_names):
            batch = inputs.get(task)
            if batch is None:
                lengths.append(0)
                continue
            if batch.shape[1:] != example.shape[1:]:
                raise ValueError(
                    f"DMTRLNet: task {task!r} input has shape {tuple(batch.shape)}, others "
                    f"(B, {', '.join(map(str, example.shape[1:]))})"
                )
            stacked[index, : batch.shape[0]] = batch
            lengths.append(int(batch.shape[0]))
        return stacked, lengths
