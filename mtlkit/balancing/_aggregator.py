"""Gradient aggregation: the per-task gradients of the shared parameters become one update."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from mtlkit.balancing._base import TaskWeighting
from mtlkit.balancing._jacobian import (
    add_to_grad,
    at_least_float32,
    average_over_ranks,
    distributed_world,
    flatten,
    leaves_of,
    task_jacobian,
)
from mtlkit.balancing._shared import split_parameters
from mtlkit.nn._multitask import MultiTaskModel

__all__ = ["GradientAggregator", "gram"]


def gram(jacobian: torch.Tensor) -> torch.Tensor:
    """:math:`G = J J^\\top` in float64, multiplied in the Jacobian's own precision (at least float32):
    a float64 copy of a large Jacobian would double its memory for a ``T × T`` result."""
    return (jacobian @ jacobian.T).double()


class GradientAggregator(TaskWeighting):
    r"""Base of the gradient methods: the Jacobian of the shared parameters becomes the update.

    With :math:`g_t = \nabla_\theta L_t` the gradient of task :math:`t` on the shared parameters
    :math:`\theta` (the model's ``shared_modules()``), :math:`J = [g_1, \dots, g_T]^\top` and its
    Gramian :math:`G = J J^\top`, a method gives weights :math:`w = \mathcal W(G)` and the shared
    parameters get :math:`d = J^\top w = \sum_t w_t g_t`. Every method here (MGDA-UB, PCGrad,
    CAGrad, Nash-MTL, IMTL-G, Aligned-MTL, UPGrad) is such a function of :math:`G` alone, which is
    what a subclass implements (:meth:`weights`); a method that needs the Jacobian itself overrides
    :meth:`aggregate`. Task-specific parameters get the gradient of :math:`\sum_t L_t` — with one
    head per task, each head its own task's gradient — from the same backward passes.

    **Cost.** One backward pass per task through the shared trunk (the heads' gradients come from
    the same passes), the :math:`T \times P` Jacobian in float32 (:math:`P` the number of shared
    parameters), a :math:`T \times T` solve in float64. Gradients are float32 also under bf16
    autocast (the parameters are float32), so aggregation never runs in bf16.

    **Representation-level gradients** (``representation=True``, Sener & Koltun's "upper bound"):
    :math:`g_t = \nabla_z L_t` for the shared representation :math:`z` (the output of the model's
    shared trunk) instead of the parameters: the backward passes per task stop at :math:`z`, and
    the weights' combination :math:`\sum_t w_t \nabla_z L_t` goes once through the trunk. Allowed
    where the method's paper defines it (:attr:`allows_representation`); the others raise
    ``ValueError``. Here :math:`G` is the Gramian of the per-example feature gradients, and under
    bf16 autocast :math:`\nabla_z L_t` itself is bf16 (it is cast to float32 before the solve).

    **Distributed.** Under DDP each rank's per-task gradients are averaged over the ranks before
    :math:`G` is formed (with representation gradients, the ranks' Gramians are summed), so every
    rank computes the same weights and applies the same update; the aggregator writes ``.grad``
    itself and DDP's own all-reduce is not used.

    Args:
        tasks: the task names.
        representation: ``False`` (gradients of the shared parameters), ``True`` (of the shared
            trunk's output: needs a :class:`~mtlkit.MultiTaskModel` with a shared trunk), or the
            ``nn.Module`` whose output is the shared representation.

    Raises:
        ValueError: ``representation`` for a method that does not allow it; at :meth:`attach`, a
            model without shared parameters.

    Example:
        >>> import torch
        >>> class Mean(GradientAggregator):
        ...     def weights(self, gramian):
        ...         return torch.full((len(gramian),), 1 / len(gramian), dtype=gramian.dtype)
        >>> Mean(("a", "b")).aggregate(torch.tensor([[1.0, 0.0], [0.0, 3.0]]))
        tensor([0.5000, 1.5000])
    """

    #: Whether the method's paper defines it on representation-level gradients.
    allows_representation: bool = False

    def __init__(self, tasks: Sequence[str], representation: bool | nn.Module = False) -> None:
        super().__init__(tasks)
        if not isinstance(representation, bool | nn.Module):
            raise TypeError(f"representation must be a bool or an nn.Module, got representation={representation!r}")
        if representation is not False and not self.allows_representation:
            raise ValueError(
                f"{type(self).__name__} is defined on the gradients of the shared parameters only; "
                f"got representation={representation!r} (methods that allow it: MGDA-UB, IMTL-G, Aligned-MTL)"
            )
        # A module is held outside the registry: the trunk's parameters are the model's, not the weighting's.
        self.representation = representation is not False
        self._given_module: list[nn.Module] = [representation] if isinstance(representation, nn.Module) else []
        self._shared: list[nn.Parameter] = []
        self._specific: list[nn.Parameter] = []
        self._features: torch.Tensor | None = None
        self._dtype = torch.float32  # of the Jacobian and the update: the shared parameters' (>= float32)
        #: The tasks of the Gramian that :meth:`weights` is solving, in its order.
        self.step_tasks: tuple[str, ...] = self.tasks
        # For the single-pass shortcut: the tasks of a step -> for each task-specific parameter, the
        # position of the one task whose loss reaches it (None: no task; -1: several tasks).
        self._owners: dict[tuple[str, ...], list[int | None]] = {}
        self._hook: Any = None

    # ------------------------------------------------------------------ what subclasses give
    @abstractmethod
    def weights(self, gramian: torch.Tensor) -> torch.Tensor:
        r"""Weights :math:`w` (float64, one per row) of the update :math:`d = J^\top w`.

        ``gramian`` is :math:`G = J J^\top` in float64 for the tasks of this step, in the order of
        :attr:`tasks`; it is symmetric positive semi-definite and may be singular (colinear or
        zero gradients) or badly scaled (losses of :math:`10^{\pm 4}`): the weights must stay finite.
        """

    def reusable_weights(self, names: Sequence[str]) -> torch.Tensor | None:
        r"""Weights known before this step's gradients, or ``None`` (the default: solve on :math:`G`).

        Called once per step with the tasks of the step. A method that keeps its weights for
        several steps (Nash-MTL's ``update_every``) returns them here; the step then costs one
        backward pass of :math:`\sum_t w_t L_t` instead of one per task (the heads' gradients are
        divided by their task's weight, so they stay each task's own gradient).
        """
        return None

    def aggregate(self, jacobian: torch.Tensor) -> torch.Tensor:
        r"""The update :math:`d = J^\top \mathcal W(J J^\top)` of a ``T × P`` Jacobian."""
        if jacobian.dim() != 2:
            raise ValueError(f"jacobian must be T x P, got shape {tuple(jacobian.shape)}")
        if len(jacobian) != len(self.tasks):
            raise ValueError(f"jacobian has {len(jacobian)} rows for the {len(self.tasks)} tasks {self.tasks}")
        w = self._weights_of(list(self.tasks), gram(jacobian))
        return w.to(jacobian.dtype) @ jacobian

    # ------------------------------------------------------------------ the Trainer slot
    def terms(self, losses: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The losses themselves: what ``forward`` sums is plain summing's loss (for logging)."""
        return dict(losses)

    def attach(self, model: nn.Module) -> None:
        self._shared, self._specific = split_parameters(model, type(self).__name__)
        self._dtype = at_least_float32(self._shared[0].dtype)
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        if self.representation:
            module = self._representation_module(model)
            self._hook = module.register_forward_hook(self._keep_features)

    def _representation_module(self, model: nn.Module) -> nn.Module:
        if self._given_module:
            given = self._given_module[0]
            if not any(m is given for m in model.modules()):
                raise ValueError("representation= must be a submodule of the model the weighting is attached to")
            return given
        if isinstance(model, MultiTaskModel) and model.shared_trunk:
            return model.trunk
        raise ValueError(
            f"representation=True takes the output of a MultiTaskModel's shared trunk; {type(model).__name__} has "
            "none: pass the module whose output is the shared representation, representation=model.<module>"
        )

    def _keep_features(self, module: nn.Module, inputs: Any, output: Any) -> None:
        if not isinstance(output, torch.Tensor):
            raise TypeError(
                f"representation-level gradients need one tensor out of {type(module).__name__}, got {type(output)}"
            )
        self._features = output if output.requires_grad else None

    def backward(self, losses: Mapping[str, torch.Tensor], scales: Mapping[str, float] | None = None) -> bool:
        if not self._shared:
            raise RuntimeError(
                f"{type(self).__name__} is not attached to a model: call attach(model) (the Trainer does)"
            )
        checked = self.checked_losses(losses)
        if not checked:
            return False
        names = list(checked)
        scaled = [checked[t] if scales is None else float(scales[t]) * checked[t] for t in names]
        reused = self.reusable_weights(names)
        if reused is not None:
            if not self._single_pass(names, scaled, reused.to(torch.float64)):
                raise ValueError(
                    f"{type(self).__name__} reuses its weights between updates, which needs every task-specific "
                    "parameter to belong to one task with a non-zero weight (no label-reuse heads)"
                )
            return True
        if self.representation:
            self._backward_representation(names, scaled)
        else:
            self._backward_parameters(names, scaled)
        return True

    def _single_pass(self, names: list[str], losses: list[torch.Tensor], w: torch.Tensor) -> bool:
        """Known weights: one backward pass of sum_t w_t L_t; False when the heads cannot be told apart."""
        key = tuple(names)
        if key not in self._owners:
            reach = [leaves_of(loss) for loss in losses]
            owners: list[int | None] = []
            for p in self._specific:
                tasks = [k for k, leaves in enumerate(reach) if id(p) in leaves]
                owners.append(None if not tasks else tasks[0] if len(tasks) == 1 else -1)
            self._owners[key] = owners
        owner = self._owners[key]
        if len(w) != len(names) or any(k == -1 or (k is not None and float(w[k]) == 0.0) for k in owner):
            return False
        self._features = None
        total = torch.stack([float(w[k]) * loss for k, loss in enumerate(losses)]).sum()
        grads = torch.autograd.grad(total, [*self._shared, *self._specific], allow_unused=True)
        shared = flatten(grads[: len(self._shared)], self._shared, self._dtype)
        specific = [
            None if g is None or k is None else g / float(w[k])
            for g, k in zip(grads[len(self._shared) :], owner, strict=True)
        ]
        if distributed_world() > 1:
            packed = average_over_ranks(torch.cat([shared, flatten(specific, self._specific, self._dtype)]))
            add_to_grad(self._shared, packed[: shared.numel()])
            add_to_grad(self._specific, packed[shared.numel() :])
        else:
            add_to_grad(self._shared, shared)
            self._add_specific(specific)
        self.last_weights = {task: float(w[k]) for k, task in enumerate(names)}
        return True

    def _backward_parameters(self, names: list[str], losses: list[torch.Tensor]) -> None:
        jacobian, specific = task_jacobian(losses, self._shared, self._specific)
        if distributed_world() > 1:
            # One all-reduce for the Jacobian and the heads' gradients: every rank then holds the
            # gradients of the global batch and computes the same weights.
            packed = average_over_ranks(
                torch.cat([jacobian.reshape(-1), flatten(specific, self._specific, jacobian.dtype)])
            )
            jacobian = packed[: jacobian.numel()].view_as(jacobian)
            add_to_grad(self._specific, packed[jacobian.numel() :])
        else:
            self._add_specific(specific)
        w = self._weights_of(names, gram(jacobian))
        add_to_grad(self._shared, w.to(jacobian.dtype) @ jacobian)

    def _backward_representation(self, names: list[str], losses: list[torch.Tensor]) -> None:
        features = self._features
        if features is None:
            raise RuntimeError(
                "no shared representation was recorded in this forward pass (representation=True needs the "
                "attached model's trunk to run with gradients before backward)"
            )
        self._features = None
        jacobian, specific = task_jacobian(losses, [features], self._specific, retain_graph=True)
        gramian = gram(jacobian)
        world = distributed_world()
        if world > 1:
            # Rank r's features enter the global loss with factor 1/R: G = sum_r G_r / R^2.
            dist.all_reduce(gramian)
            gramian /= world**2
        w = self._weights_of(names, gramian)
        direction = (w.to(jacobian.dtype) @ jacobian).view_as(features).to(features.dtype)
        grads = torch.autograd.grad(features, self._shared, grad_outputs=direction, allow_unused=True)
        flat = flatten(grads, self._shared, self._dtype)
        if world > 1:
            packed = average_over_ranks(torch.cat([flat, flatten(specific, self._specific, self._dtype)]))
            add_to_grad(self._shared, packed[: flat.numel()])
            add_to_grad(self._specific, packed[flat.numel() :])
        else:
            add_to_grad(self._shared, flat)
            self._add_specific(specific)

    def _add_specific(self, specific: list[torch.Tensor | None]) -> None:
        for p, g in zip(self._specific, specific, strict=True):
            if g is not None:
                p.grad = g.detach().to(p.dtype) if p.grad is None else p.grad + g.to(p.dtype)

    def _weights_of(self, names: list[str], gramian: torch.Tensor) -> torch.Tensor:
        if not bool(torch.isfinite(gramian).all()):
            raise FloatingPointError(f"{type(self).__name__}: the task gradients are not finite (tasks {names})")
        self.step_tasks = tuple(names)
        if float(gramian.diagonal().max()) == 0.0:  # every gradient is 0: nothing to aggregate
            w = torch.zeros(len(names), dtype=torch.float64, device=gramian.device)
        else:
            w = self.weights(gramian).to(torch.float64)
            if w.shape != (len(names),) or not bool(torch.isfinite(w).all()):
                raise FloatingPointError(f"{type(self).__name__}.weights gave {w} for {len(names)} tasks")
        self.last_weights = {task: float(w[k]) for k, task in enumerate(names)}
        return w

    def extra_repr(self) -> str:
        rep = ", representation=True" if self.representation else ""
        return f"tasks={self.tasks}{rep}"
