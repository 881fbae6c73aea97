"""Hand learned parameters from one network to another: whole tensors, or some output rows.

The pooled-dataset seed pre-trains one network on the union of several datasets, whose output
layer spans their concatenated label spaces, then initialises one single-task network per
dataset from it: every trunk parameter is copied, and the output layer keeps only the rows of
its own dataset's classes.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from mtlkit.label_space import PooledLabelSpace
from mtlkit.nn import MultiTaskModel

__all__ = ["hand_over_pooled", "output_layer", "transfer_parameters"]

Rows = slice | torch.Tensor


def _source_name(name: str, rename: Mapping[str, str]) -> str:
    for target_prefix, source_prefix in rename.items():
        if name.startswith(target_prefix):
            return source_prefix + name[len(target_prefix) :]
    return name


@torch.no_grad()
def transfer_parameters(
    source: nn.Module,
    target: nn.Module,
    *,
    rename: Mapping[str, str] | None = None,
    rows: Mapping[str, Rows] | None = None,
    skip: tuple[str, ...] = (),
) -> list[str]:
    r"""Copy ``source``'s parameters and buffers into ``target``, in place.

    For every entry :math:`\theta^{tgt}_k` of ``target.state_dict()``:

    .. math:: \theta^{tgt}_k \leftarrow \theta^{src}_{\rho(k)}[R_k]

    where :math:`\rho` replaces the first matching prefix of ``rename`` (target prefix ->
    source prefix) and :math:`R_k` are the rows (first-dimension indices) given in ``rows`` —
    all rows if ``k`` is not there. Shapes must then agree exactly; a missing or mis-shaped
    source entry is an error, so a hand-over never silently leaves a layer at its random
    initialisation. Entries whose target name starts with a prefix in ``skip`` are left alone.

    Args:
        source: the trained network.
        target: the network to initialise.
        rename: target-name prefix -> source-name prefix.
        rows: target name -> rows of the source tensor (a slice or an index tensor).
        skip: target-name prefixes not to copy.

    Returns:
        The target names that were copied.

    >>> src, tgt = nn.Linear(3, 6), nn.Linear(3, 2)
    >>> copied = transfer_parameters(src, tgt, rows={"weight": slice(2, 4), "bias": slice(2, 4)})
    >>> copied, bool((tgt.weight == src.weight[2:4]).all())
    (['weight', 'bias'], True)
    """
    rename = dict(rename or {})
    rows = dict(rows or {})
    source_state = source.state_dict()
    target_state = target.state_dict()
    unknown_rows = sorted(set(rows) - set(target_state))
    if unknown_rows:
        raise KeyError(f"rows given for {unknown_rows}, which the target does not have")
    copied: list[str] = []
    for name, tensor in target_state.items():
        if any(name.startswith(prefix) for prefix in skip):
            continue
        source_name = _source_name(name, rename)
        if source_name not in source_state:
            raise KeyError(f"target entry {name!r} has no source entry {source_name!r}")
        value = source_state[source_name]
        if name in rows:
            value = value[rows[name]]
        if value.shape != tensor.shape:
            raise ValueError(
                f"cannot copy {source_name!r} (shape {tuple(value.shape)} after row selection) "
                f"into {name!r} (shape {tuple(tensor.shape)})"
            )
        tensor.copy_(value)
        copied.append(name)
    return copied


def output_layer(head: nn.Module) -> tuple[str, nn.Linear | nn.Conv1d | nn.Conv2d]:
    """Name and module of the last ``Linear`` / ``Conv`` layer of a head (its output layer).

    >>> from mtlkit.nn import MLPHead
    >>> output_layer(MLPHead(8, [4], 3))[0]
    'body.blocks.1.0'
    """
    found: list[tuple[str, nn.Linear | nn.Conv1d | nn.Conv2d]] = [
        (n, m) for n, m in head.named_modules() if isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d)
    ]
    if not found:
        raise ValueError(f"head {type(head).__name__} has no Linear or Conv layer to hand over")
    return found[-1]


def hand_over_pooled(
    pooled: MultiTaskModel,
    single: MultiTaskModel,
    task: str,
    label_space: PooledLabelSpace,
    *,
    pooled_task: str = "pooled",
    single_task: str | None = None,
) -> list[str]:
    r"""Initialise a single-task network from a network trained on a pooled label space.

    ``pooled`` has a shared trunk and a head ``pooled_task`` with ``label_space.total``
    outputs; ``single`` has the same trunk architecture (shared, or per task) and one head
    ``single_task`` (default ``task``) of the same architecture with
    ``label_space.num_classes[task]`` outputs. The trunk and the head's hidden layers are
    copied; the head's output layer (:func:`output_layer`) gets the rows
    ``label_space.slice(task)`` of the pooled one, so right after the hand-over

    .. math:: f_{\text{single}}(x) = f_{\text{pooled}}(x)_{[o_t,\, o_t + K_t)}

    for every input (the seed's Fig. 5).

    Returns:
        The names of ``single``'s entries that were copied (all of them).

    >>> import torch
    >>> from mtlkit.nn import LinearHead, MLP
    >>> space = PooledLabelSpace({"a": 2, "b": 3})
    >>> pooled = MultiTaskModel(MLP(4, [8]), {"pooled": LinearHead(8, 5)})
    >>> single = MultiTaskModel(MLP(4, [8]), {"b": LinearHead(8, 3)})
    >>> _ = hand_over_pooled(pooled, single, "b", space)
    >>> x = torch.randn(2, 4)
    >>> torch.allclose(single(x)["b"], pooled(x)["pooled"][:, 2:5], atol=1e-6)
    True
    """
    single_task = task if single_task is None else single_task
    if not pooled.shared_trunk:
        raise ValueError("the pooled network must have one shared trunk")
    if pooled_task not in pooled.heads:
        raise KeyError(f"pooled network has no head {pooled_task!r}; heads: {list(pooled.heads)}")
    if single_task not in single.heads:
        raise KeyError(f"single-task network has no head {single_task!r}; heads: {list(single.heads)}")
    if list(single.heads) != [single_task]:
        raise ValueError(f"the single-task network must have exactly one head, got {list(single.heads)}")
    out_name, out_module = output_layer(pooled.heads[pooled_task])
    out_size = out_module.weight.shape[0]
    if out_size != label_space.total:
        raise ValueError(
            f"pooled output layer {out_name!r} has {out_size} outputs, the label space has {label_space.total}"
        )
    target_head = f"heads.{single_task}."
    rename = {target_head: f"heads.{pooled_task}."}
    if not single.shared_trunk:
        rename[f"trunk.{single_task}."] = "trunk."
    span = label_space.slice(task)
    rows: dict[str, Rows] = {f"{target_head}{out_name}.weight": span}
    if out_module.bias is not None:
        rows[f"{target_head}{out_name}.bias"] = span
    return transfer_parameters(pooled, single, rename=rename, rows=rows)
