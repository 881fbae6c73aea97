"""Per-task gradients: one backward pass per task, stacked into a ``T × P`` Jacobian.

The machinery every gradient method shares (the aggregators, DB-MTL, GradNorm): the gradients of
each task's loss with respect to some tensors (the shared parameters, or the shared
representation), the summed gradients of the other parameters from the same passes, averaging
over the ranks of a data-parallel run, and writing an update into ``.grad``.

One ``torch.autograd.grad`` call per task was measured against a single batched call
(``is_grads_batched=True``, which vmaps the backward pass over the rows of an identity): on the
Multi-MNIST LeNet (batch 256, one CPU thread) the loop took 0.14 s for T = 2 and 0.39 s for T = 10,
the batched call 0.16 s and 0.39 s (``python -m benchmarks --only aggregation`` re-measures it). The
loop is as fast, works for every operator (the batched call needs a vmap rule for each backward
kernel) and holds one task's gradients at a time, so it is what is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.distributed as dist

__all__ = [
    "add_to_grad",
    "at_least_float32",
    "average_over_ranks",
    "distributed_world",
    "flatten",
    "leaves_of",
    "task_jacobian",
]


def flatten(grads: Sequence[torch.Tensor | None], like: Sequence[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    """One flat vector of ``grads`` (``None`` as zeros shaped like ``like``) in ``dtype``."""
    return torch.cat(
        [
            (torch.zeros(t.numel(), dtype=dtype, device=t.device) if g is None else g.reshape(-1).to(dtype))
            for g, t in zip(grads, like, strict=True)
        ]
    )


def task_jacobian(
    losses: Sequence[torch.Tensor],
    wrt: Sequence[torch.Tensor],
    others: Sequence[torch.Tensor] = (),
    *,
    retain_graph: bool = False,
    dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
    r"""The Jacobian :math:`J_{tp} = \partial L_t / \partial w_p` and :math:`\sum_t \nabla_o L_t`.

    One backward pass per loss. ``wrt`` are the tensors whose per-task gradients are kept apart
    (rows of :math:`J`, flattened and concatenated in order, in ``dtype``; by default that of the
    first of ``wrt`` but at least float32, so bf16 gradients of a representation are aggregated in
    float32); ``others`` (e.g. the heads'
    parameters) get the sum over tasks of their gradients from the same passes — with one head per
    task that is each head's own task gradient. ``None`` in the second result: no loss reaches that
    tensor. The graph is freed after the last pass unless ``retain_graph``.

    Example:
        >>> import torch
        >>> w = torch.tensor([1.0, 2.0], requires_grad=True)
        >>> head = torch.tensor(3.0, requires_grad=True)
        >>> jacobian, (g,) = task_jacobian([w.sum(), head * (w**2).sum()], [w], [head])
        >>> jacobian
        tensor([[ 1.,  1.],
                [ 6., 12.]])
        >>> g
        tensor(5.)
    """
    if not losses:
        raise ValueError("task_jacobian needs at least one loss, got losses=[]")
    wrt, others = list(wrt), list(others)
    if dtype is None:
        dtype = at_least_float32(wrt[0].dtype)
    inputs = wrt + others
    rows: list[torch.Tensor] = []
    summed: list[torch.Tensor | None] = [None] * len(others)
    for k, loss in enumerate(losses):
        if not loss.requires_grad:  # a task whose loss is a constant (e.g. exactly 0) has zero gradients
            rows.append(flatten([None] * len(wrt), wrt, dtype))
            continue
        keep = retain_graph or k < len(losses) - 1
        grads = torch.autograd.grad(loss, inputs, retain_graph=keep, allow_unused=True)
        rows.append(flatten(grads[: len(wrt)], wrt, dtype))
        for i, g in enumerate(grads[len(wrt) :]):
            if g is not None:
                previous = summed[i]
                summed[i] = g if previous is None else previous + g

    return torch.stack(rows), summed


def at_least_float32(dtype: torch.dtype) -> torch.dtype:
    """``dtype`` promoted to at least float32 (float64 stays float64)."""
    return torch.promote_types(dtype, torch.float32)


def distributed_world() -> int:
    """The number of ranks of the default process group; 1 when not distributed."""
    if dist.is_available() and dist.is_initialized():
        return int(dist.get_world_size())
    return 1


def average_over_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` averaged over the ranks, in place (a no-op on one process); returns it."""
    world = distributed_world()
    if world > 1:
        dist.all_reduce(tensor)
        tensor /= world
    return tensor


def add_to_grad(params: Sequence[torch.Tensor], flat: torch.Tensor) -> None:
    """Add the flat vector ``flat`` (concatenated in the order of ``params``) to their ``.grad``."""
    offset = 0
    for p in params:
        piece = flat[offset : offset + p.numel()].view_as(p).to(p.dtype)
        offset += p.numel()
        p.grad = piece.clone() if p.grad is None else p.grad + piece
    if offset != flat.numel():
        raise ValueError(f"update has {flat.numel()} entries but the parameters have {offset}")


def leaves_of(loss: torch.Tensor) -> set[int]:
    """``id`` of every leaf tensor (parameter) that ``loss``'s graph reaches; no gradient is computed."""
    leaves: set[int] = set()
    seen: set[int] = set()
    stack: list[Any] = [loss.grad_fn] if loss.grad_fn is not None else []
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        variable = getattr(node, "variable", None)  # AccumulateGrad nodes hold their leaf
        if isinstance(variable, torch.Tensor):
            leaves.add(id(variable))
        stack.extend(next_node for next_node, _ in node.next_functions)
    return leaves
