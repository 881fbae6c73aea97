"""A thin Trainer: fit / evaluate / checkpoint / resume / DDP for multi-task models.

The Trainer owns no modelling decision. It asks the model for ``{task: output}``, scores each
task with its loss function, hands the losses to its task weighting
(:class:`~mtlkit.balancing.TaskWeighting`: fixed weights, a schedule, an adaptive method) to
back-propagate, and steps the optimiser — once per batch, or once per
*phase* when a batch is used for several updates in turn (Alg. 1 of the evolving-weights paper:
first a step on the reconstruction loss, then one on the supervised loss).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from mtlkit.balancing import Scheduled, TaskWeighting
from mtlkit.checkpoint import load_checkpoint, save_checkpoint
from mtlkit.metrics import IGNORE_INDEX, MetricFn, accuracy
from mtlkit.nn._module import MultiTaskModule
from mtlkit.precision import autocast, resolve_precision
from mtlkit.schedules import ConstantWeights, WeightSchedule
from mtlkit.seeding import rng_state, seed_everything, set_rng_state

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Batch = tuple[torch.Tensor | Mapping[str, torch.Tensor], Mapping[str, torch.Tensor]]

__all__ = ["NonFiniteLossError", "Phase", "Trainer"]


class NonFiniteLossError(FloatingPointError):
    """A task loss became NaN or infinite; training stopped before the optimiser step.

    The message names the task, the epoch and the step. The last checkpoint is left as it was.

    Example:
        >>> import torch
        >>> from mtlkit import MultiTaskModel, LinearHead, Trainer
        >>> model = MultiTaskModel(torch.nn.Identity(), {"y": LinearHead(2, 2)})
        >>> trainer = Trainer(model, torch.optim.SGD(model.parameters(), 0.1),
        ...                   {"y": lambda out, target: out.sum() * float("nan")}, progress=False)
        >>> try:
        ...     trainer.fit([(torch.ones(1, 2), {"y": torch.zeros(1, dtype=torch.long)})], epochs=1)
        ... except NonFiniteLossError as error:
        ...     print(str(error).split(";")[0])
        loss of task 'y' is nan at epoch 1, step 0 (global step 0)
    """


@dataclass(frozen=True)
class Phase:
    """One optimiser update per batch on the weighted loss of ``tasks``.

    ``optimizer=None`` uses the Trainer's optimiser. Alg. 1 of the evolving-weights paper — a step
    on the reconstruction loss, then one on the supervised loss, for every batch — is
    ``phases=[Phase(("reconstruction",)), Phase(("class",))]``.

    A phase none of whose tasks counts at a step (:meth:`~mtlkit.balancing.TaskWeighting.counts`:
    every weight exactly 0, e.g. the reconstruction phase once a ``stairs`` or ``lin100`` schedule
    has switched it off) is skipped, forward pass included, since no step would follow; on the
    evolving-weights networks that makes such an iteration 3.4–4.8× cheaper (NN4 / NN1). Its loss is
    then not logged for that step; an epoch's logged loss is the mean over the steps that computed
    it. The weights are bitwise those of running the phase, unless its forward pass draws random
    numbers (dropout, masking noise) and something after it draws from the same generator: skipping
    the draws shifts that stream. (In Alg. 1 nothing after the DAE phase does: the supervised phase
    draws nothing and the batches shuffle with their own generator.)

    Example:
        >>> Phase(("reconstruction",))
        Phase(tasks=('reconstruction',), optimizer=None)
    """

    tasks: tuple[str, ...]
    optimizer: torch.optim.Optimizer | None = None


class Trainer:
    r"""Train a multi-task model on batches of ``(x, {task: target})``.

    The loss of a step is :math:`L = \sum_{t \in \text{phase}} w_t L_t`, where :math:`w_t` comes
    from ``weights`` (a dict, or a schedule that is stepped per epoch or per iteration), or
    whatever ``weighting`` makes of the losses (see :mod:`mtlkit.balancing`).

    Args:
        model: a :class:`~mtlkit.nn.MultiTaskModule` (e.g. :class:`~mtlkit.MultiTaskModel`): ``tasks``
            and ``forward(x, tasks=None) -> dict[str, Tensor]``. Any module with that forward works;
            only a ``MultiTaskModule`` has its task names checked against ``losses``.
        optimizer: the optimiser of the default phase.
        losses: ``task → loss_fn(output, target)``; ``None`` marks an auxiliary task whose model
            output already *is* its loss (e.g. :class:`~mtlkit.aux.WithReconstruction`).
        weights: per-task weights or a :class:`~mtlkit.schedules.WeightSchedule`; default 1 each.
            Shorthand for ``weighting=Scheduled(schedule)``.
        weighting: a :class:`~mtlkit.balancing.TaskWeighting` (e.g.
            ``UncertaintyWeighting(tasks)``); give ``weights`` or ``weighting``, not both. Its
            learnable parameters, if any, must be in one of the optimisers; its state is
            checkpointed.
        metrics: ``task → {name: metric_fn}``; default ``{"acc": accuracy}`` for every task with a
            loss function.
        phases: the updates made per batch; default one phase over all tasks of ``losses``.
        lr_scheduler: stepped once per epoch.
        device: ``"cpu"``, ``"cuda"``, or a :class:`torch.device`.
        checkpoint_dir: where ``last.pt`` is written atomically after every epoch.
        log_dir: where ``metrics.jsonl`` (and TensorBoard events, if enabled) go.
        tensorboard: also log scalars with :class:`torch.utils.tensorboard.SummaryWriter`.
        progress: tqdm bar per epoch; ``None`` shows it only when stderr is a terminal.
        seed: seed every generator at the start of a fresh (not resumed) :meth:`fit`.
        grad_clip: clip the gradient norm of each step to this value.
        precision: ``"fp32"``, or ``"bf16"``: forward passes and losses under bf16 autocast, weights,
            gradients, optimiser state and checkpoints in fp32 (see :mod:`mtlkit.precision`); falls
            back to fp32 with a warning where the device has no native bf16. A checkpoint resumes
            only at the precision it was trained in.

    Under ``torchrun`` (``WORLD_SIZE > 1``) the model is wrapped in
    :class:`~torch.nn.parallel.DistributedDataParallel` (gloo on CPU, NCCL on CUDA), each rank
    takes rows ``rank::world_size`` of every global batch, metrics are all-reduced and only
    rank 0 writes checkpoints and logs.

    Example:
        >>> import torch
        >>> from torch.nn import functional as F
        >>> from mtlkit import MultiTaskModel, Trainer
        >>> from mtlkit.nn import MLP, LinearHead
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> model = MultiTaskModel(MLP(4, [16]), {"a": LinearHead(16, 3), "b": LinearHead(16, 2)})
        >>> x = torch.randn(32, 4)
        >>> data = [(x, {"a": (x[:, 0] > 0).long() + (x[:, 1] > 0).long(), "b": (x[:, 2] > 0).long()})]
        >>> lam = 0.5
        >>> trainer = Trainer(model, torch.optim.Adam(model.parameters(), 1e-2),
        ...                   {"a": F.cross_entropy, "b": F.cross_entropy},
        ...                   weights={"a": lam, "b": 1 - lam}, progress=False)
        >>> history = trainer.fit(data, epochs=20)
        >>> trainer.evaluate(data)["b/acc"] > 0.8
        True
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        losses: Mapping[str, LossFn | None],
        *,
        weights: Mapping[str, float] | WeightSchedule | None = None,
        weighting: TaskWeighting | None = None,
        metrics: Mapping[str, Mapping[str, MetricFn]] | None = None,
        phases: Sequence[Phase] | None = None,
        lr_scheduler: Any | None = None,
        device: str | torch.device = "cpu",
        checkpoint_dir: str | os.PathLike[str] | None = None,
        log_dir: str | os.PathLike[str] | None = None,
        tensorboard: bool = False,
        progress: bool | None = None,
        seed: int | None = None,
        grad_clip: float | None = None,
        precision: str = "fp32",
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        if not losses:
            raise ValueError("Trainer needs at least one task loss")
        bad_losses = {task: loss for task, loss in losses.items() if loss is not None and not callable(loss)}
        if bad_losses:
            raise TypeError(f"losses must map tasks to callables (or None), got {bad_losses!r}")
        self.tasks = tuple(losses)
        if isinstance(model, MultiTaskModule):
            missing = [task for task in self.tasks if task not in model.tasks]
            if missing:
                raise ValueError(f"no head for task(s) {missing}: the model has heads for {list(model.tasks)}")
        self.losses = dict(losses)
        self.weighting = _weighting(weights, weighting, self.tasks)
        unweighted = [task for task in self.tasks if task not in self.weighting.tasks]
        if unweighted:
            raise ValueError(f"no loss weight for task(s) {unweighted}; weights name {list(self.weighting.tasks)}")
        self.metrics = (
            {task: dict(m) for task, m in metrics.items()}
            if metrics is not None
            else {task: {"acc": accuracy} for task, fn in self.losses.items() if fn is not None}
        )
        self.optimizer = optimizer
        self.phases = tuple(phases) if phases else (Phase(self.tasks),)
        for phase in self.phases:
            unknown = [task for task in phase.tasks if task not in self.losses]
            if unknown:
                raise ValueError(f"phase {phase.tasks} names task(s) {unknown} without a loss function")
        self.lr_scheduler = lr_scheduler
        self.device = torch.device(device)
        self.precision = resolve_precision(precision, self.device)
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.tensorboard = tensorboard
        self.progress = progress
        self.seed = seed
        self.grad_clip = grad_clip
        self.history: list[dict[str, float]] = []
        self.epoch = 0
        self.global_step = 0

        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.model = model.to(self.device)
        self.weighting.to(self.device)
        self.weighting.attach(self.model)
        self._check_weighting_is_optimised()
        self._train_model: nn.Module = self.model
        if self.world_size > 1:
            if not self.weighting.supports_distributed:
                raise ValueError(
                    f"weighting={type(self.weighting).__name__} does not support DistributedDataParallel "
                    f"(WORLD_SIZE={self.world_size}); train it on one process"
                )
            self._init_distributed()
        self._writer: Any = None

    def _check_weighting_is_optimised(self) -> None:
        optimised = {id(p) for opt in self._optimizers() for group in opt.param_groups for p in group["params"]}
        left_out = [name for name, p in self.weighting.named_parameters() if p.requires_grad and id(p) not in optimised]
        if left_out:
            raise ValueError(
                f"the parameters {left_out} of weighting={type(self.weighting).__name__} are in no optimiser; "
                "pass e.g. [*model.parameters(), *weighting.parameters()] to the optimiser"
            )

    def _average_weighting_gradients(self) -> None:
        """The weighting's parameters live outside DDP: average their gradients like DDP does the model's."""
        for p in self.weighting.parameters():
            if p.grad is not None:
                dist.all_reduce(p.grad)
                p.grad /= self.world_size

    # ------------------------------------------------------------------ distributed
    def _init_distributed(self) -> None:
        if not dist.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            dist.init_process_group(backend)
        if self.device.type == "cuda":
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            self.model.to(self.device)
        # Phases over subsets of tasks leave some heads unused in a forward pass.
        self._train_model = nn.parallel.DistributedDataParallel(self.model, find_unused_parameters=len(self.phases) > 1)

    @property
    def is_main_process(self) -> bool:
        return self.rank == 0

    def _shard(self, batch: Batch) -> Batch:
        """This rank's rows of a global batch (all rows when not distributed)."""
        x, targets = batch
        if self.world_size == 1:
            return x, targets

        def take(t: torch.Tensor) -> torch.Tensor:
            return t[self.rank :: self.world_size]

        x = {k: take(v) for k, v in x.items()} if isinstance(x, Mapping) else take(x)
        return x, {k: take(v) for k, v in targets.items()}

    # ------------------------------------------------------------------ losses
    def _check_targets(self, outputs: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]) -> None:
        model_tasks = self.model.tasks if isinstance(self.model, MultiTaskModule) else self.tasks
        unknown = [task for task in targets if task not in self.losses and task not in model_tasks]
        if unknown:
            raise KeyError(f"batch has targets for unknown task(s) {unknown}; known tasks: {list(self.tasks)}")
        for task, output in outputs.items():
            if self.losses.get(task) is None or task not in targets:
                continue
            target = targets[task]
            if target.is_floating_point():
                expected = (
                    output.shape[:-1] if output.dim() == target.dim() + 1 and output.shape[-1] == 1 else output.shape
                )
                if target.shape != expected:
                    raise ValueError(
                        f"task '{task}': target shape {tuple(target.shape)} does not fit "
                        f"output shape {tuple(output.shape)}"
                    )
            else:
                if output.dim() != 2 or target.shape != output.shape[:1]:
                    raise ValueError(
                        f"task '{task}': class-index target of shape {tuple(target.shape)} does not fit "
                        f"output shape {tuple(output.shape)} (expected target shape ({output.shape[0]},))"
                    )
                labeled = target[target != IGNORE_INDEX]
                if labeled.numel() and (int(labeled.min()) < 0 or int(labeled.max()) >= output.shape[1]):
                    raise ValueError(
                        f"task '{task}': labels must lie in [0, {output.shape[1]}), "
                        f"got range [{int(labeled.min())}, {int(labeled.max())}]"
                    )

    def _task_losses(
        self, outputs: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor], tasks: Sequence[str]
    ) -> tuple[dict[str, torch.Tensor], set[str]]:
        """Per-task losses, and the tasks whose loss is only an exact-zero stand-in.

        A task with no target or only unlabeled (-100) targets is left out; under DDP it gets the
        stand-in instead, so that every rank runs the same backward passes (it is not a measurement).
        """
        losses: dict[str, torch.Tensor] = {}
        stand_ins: set[str] = set()
        for task in tasks:
            fn = self.losses[task]
            if fn is None:
                losses[task] = outputs[task]
                continue
            if task not in targets:
                continue
            target = targets[task]
            if not target.is_floating_point() and bool((target == IGNORE_INDEX).all()):
                if self.world_size == 1:
                    continue
                losses[task] = outputs[task].sum() * 0.0
                stand_ins.add(task)
                continue
            losses[task] = fn(outputs[task], target)
        return losses, stand_ins

    def _check_finite(self, losses: Mapping[str, torch.Tensor], where: str) -> None:
        for task, loss in losses.items():
            value = float(loss.detach())
            if not math.isfinite(value):
                raise NonFiniteLossError(
                    f"loss of task '{task}' is {value} at {where}; stopped before the optimiser step "
                    f"(the last checkpoint, if any, is intact)"
                )

    # ------------------------------------------------------------------ steps
    def _to_device(self, batch: Batch) -> Batch:
        x, targets = batch
        if isinstance(x, Mapping):
            x = {k: v.to(self.device, non_blocking=True) for k, v in x.items()}
        else:
            x = x.to(self.device, non_blocking=True)
        return x, {k: v.to(self.device, non_blocking=True) for k, v in targets.items()}

    def train_step(self, batch: Batch, step_in_epoch: int = 0) -> dict[str, float]:
        """All phases on one batch; returns the per-task losses that were optimised."""
        x, targets = self._to_device(self._shard(batch))
        self._train_model.train()
        logged: dict[str, float] = {}
        for phase in self.phases:
            optimizer = phase.optimizer or self.optimizer
            if not any(self.weighting.counts(task) for task in phase.tasks):
                # Every weight is exactly 0, so no step would follow: the forward pass would serve only the log.
                # Its gradients are still cleared, as a step on zero-weighted losses would, so that no stale
                # gradient of this phase's parameters enters a later phase's gradient clipping.
                optimizer.zero_grad(set_to_none=True)
                continue
            with autocast(self.precision, self.device):
                outputs = self._train_model(x, tasks=list(phase.tasks))
                self._check_targets(outputs, targets)
                losses, stand_ins = self._task_losses(outputs, targets, phase.tasks)
            if not losses:
                continue
            self._check_finite(losses, f"epoch {self.epoch + 1}, step {step_in_epoch} (global step {self.global_step})")
            logged.update({task: float(loss.detach()) for task, loss in losses.items() if task not in stand_ins})
            optimizer.zero_grad(set_to_none=True)
            # False: no task of this phase counted (those with weight 0 and a loss), so no step at all.
            if not self.weighting.backward(losses):
                continue
            if self.world_size > 1:
                self._average_weighting_gradients()
            if self.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            optimizer.step()
        self.global_step += 1
        self.weighting.on_iteration_end()
        return logged

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self, data: Iterable[Batch]) -> dict[str, float]:
        """Per-task mean loss and metrics over ``data``, as ``{"task/loss": …, "task/acc": …}``."""
        self.model.eval()
        sums: dict[str, float] = {}
        counts: dict[str, float] = {}

        def add(key: str, value: float, count: float) -> None:
            sums[key] = sums.get(key, 0.0) + value
            counts[key] = counts.get(key, 0.0) + count

        seen = False
        for batch in data:
            seen = True
            x, targets = self._to_device(self._shard(batch))
            tasks = [t for t in self.tasks if t in targets or self.losses[t] is None]
            with autocast(self.precision, self.device):
                outputs = self.model(x, tasks=tasks)
                self._check_targets(outputs, targets)
                task_losses, _ = self._task_losses(outputs, targets, tasks)
            outputs = {task: out.float() for task, out in outputs.items()}
            for task, loss in task_losses.items():
                n = _labeled_count(targets.get(task), outputs[task])
                add(f"{task}/loss", float(loss) * n, n)
            for task, fns in self.metrics.items():
                if task in outputs and task in targets:
                    for name, fn in fns.items():
                        value, n = fn(outputs[task], targets[task])
                        add(f"{task}/{name}", value, n)
        if not seen:
            raise ValueError("evaluation data yielded no batches")
        if self.world_size > 1:
            keys = sorted(sums)
            packed = torch.tensor([[sums[k], counts[k]] for k in keys], dtype=torch.float64)
            dist.all_reduce(packed)
            sums = {k: float(v[0]) for k, v in zip(keys, packed, strict=True)}
            counts = {k: float(v[1]) for k, v in zip(keys, packed, strict=True)}
        return {k: sums[k] / counts[k] for k in sorted(sums) if counts[k] > 0}

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        train_data: Iterable[Batch],
        epochs: int,
        val_data: Iterable[Batch] | None = None,
        resume: bool = True,
    ) -> list[dict[str, float]]:
        """Train until ``epochs`` epochs are done; returns the per-epoch history.

        With ``resume=True`` and a ``last.pt`` in ``checkpoint_dir``, training continues after the
        checkpointed epoch; the result is bitwise identical to an uninterrupted run on CPU,
        provided ``train_data`` draws its shuffling from its ``generator`` attribute (as
        :class:`~mtlkit.data.InMemoryBatches` and :class:`~torch.utils.data.DataLoader` with a
        generator do) or from the global generators, all of which are checkpointed.
        """
        if epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {epochs}")
        checkpoint = self.checkpoint_path
        if resume and checkpoint is not None and checkpoint.is_file():
            self._restore(load_checkpoint(checkpoint), train_data)
        elif self.seed is not None:
            seed_everything(self.seed)
        if self.log_dir is not None and self.is_main_process:
            self._rewrite_log()
        while self.epoch < epochs:
            start = time.perf_counter()
            train_metrics = self._train_epoch(train_data, epochs)
            record: dict[str, float] = {"epoch": float(self.epoch + 1)}
            record.update({f"train/{k}": v for k, v in train_metrics.items()})
            if val_data is not None:
                record.update({f"val/{k}": v for k, v in self.evaluate(val_data).items()})
            record["time_s"] = time.perf_counter() - start
            self.epoch += 1
            if self.lr_scheduler is not None:
                self.lr_scheduler.step()
            self.weighting.on_epoch_end()
            self.history.append(record)
            if self.is_main_process:
                if checkpoint is not None:
                    save_checkpoint(self._state(train_data), checkpoint)
                self._log(record)
            if self.world_size > 1:
                dist.barrier()
        return self.history

    def _train_epoch(self, train_data: Iterable[Batch], epochs: int) -> dict[str, float]:
        """Each task's mean training loss over the steps that computed it (a batch without its
        labels, or a phase that was switched off, does not count as a zero)."""
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        steps = 0
        bar = self._progress_bar(train_data, f"epoch {self.epoch + 1}/{epochs}")
        for step, batch in enumerate(bar):
            for task, value in self.train_step(batch, step).items():
                sums[task] = sums.get(task, 0.0) + value
                counts[task] = counts.get(task, 0) + 1
            steps += 1
            if hasattr(bar, "set_postfix") and sums:
                bar.set_postfix({t: f"{v / counts[t]:.3f}" for t, v in sums.items()}, refresh=False)
        if steps == 0:
            raise ValueError("training data yielded no batches (is the dataset empty, or drop_last too strict?)")
        return {f"{task}/loss": value / counts[task] for task, value in sums.items()}

    def _progress_bar(self, data: Iterable[Batch], desc: str) -> Iterable[Batch]:
        show = self.progress if self.progress is not None else sys.stderr.isatty()
        if not show or not self.is_main_process:
            return data
        from tqdm.auto import tqdm  # noqa: PLC0415 - tqdm only for a terminal

        bar: Iterable[Batch] = tqdm(data, desc=desc, leave=False)
        return bar

    # ------------------------------------------------------------------ state
    @property
    def checkpoint_path(self) -> Path | None:
        return self.checkpoint_dir / "last.pt" if self.checkpoint_dir is not None else None

    def _optimizers(self) -> list[torch.optim.Optimizer]:
        seen: list[torch.optim.Optimizer] = []
        for opt in [self.optimizer, *(p.optimizer for p in self.phases)]:
            if opt is not None and all(opt is not s for s in seen):
                seen.append(opt)
        return seen

    def _state(self, train_data: Iterable[Batch]) -> dict[str, Any]:
        generator = getattr(train_data, "generator", None)
        weighting_state = self.weighting.state_dict()
        return {
            "epoch": self.epoch,
            "global_step": self.global_step,
            "model": self.model.state_dict(),
            "optimizers": [opt.state_dict() for opt in self._optimizers()],
            "lr_scheduler": self.lr_scheduler.state_dict() if self.lr_scheduler is not None else None,
            # One dict under both keys (pickled once): "schedule" is where checkpoints kept it before
            # the weighting slot, and older readers look there.
            "weighting": weighting_state,
            "schedule": weighting_state,
            "rng": rng_state(),
            "data_generator": generator.get_state() if isinstance(generator, torch.Generator) else None,
            "history": self.history,
            "precision": self.precision,
        }

    def _restore(self, state: Mapping[str, Any], train_data: Iterable[Batch]) -> None:
        trained_in = state.get("precision", "fp32")
        if trained_in != self.precision:
            raise ValueError(
                f"checkpoint was trained with precision={trained_in!r}, this Trainer has precision={self.precision!r}"
            )
        self.model.load_state_dict(state["model"])
        optimizers = self._optimizers()
        if len(optimizers) != len(state["optimizers"]):
            raise ValueError(
                f"checkpoint has {len(state['optimizers'])} optimiser states, this Trainer has {len(optimizers)}"
            )
        for opt, opt_state in zip(optimizers, state["optimizers"], strict=True):
            opt.load_state_dict(opt_state)
        if (self.lr_scheduler is None) != (state["lr_scheduler"] is None):
            # Resuming across that difference would silently restart (or drop) the schedule.
            raise ValueError(
                f"checkpoint was trained {'without' if state['lr_scheduler'] is None else 'with'} an lr_scheduler, "
                f"this Trainer has lr_scheduler={type(self.lr_scheduler).__name__ if self.lr_scheduler else None}"
            )
        if self.lr_scheduler is not None:
            self.lr_scheduler.load_state_dict(state["lr_scheduler"])
        if "weighting" in state:
            self.weighting.load_state_dict(state["weighting"])
        elif isinstance(self.weighting, Scheduled):  # a checkpoint from before the weighting slot
            self.weighting.schedule.load_state_dict(state["schedule"])
        else:
            raise ValueError(f"checkpoint has no weighting state for weighting={type(self.weighting).__name__}")
        set_rng_state(state["rng"])
        generator = getattr(train_data, "generator", None)
        if isinstance(generator, torch.Generator) and state["data_generator"] is not None:
            generator.set_state(state["data_generator"])
        self.epoch = int(state["epoch"])
        self.global_step = int(state["global_step"])
        self.history = [dict(r) for r in state["history"]]

    # ------------------------------------------------------------------ logging
    def _rewrite_log(self) -> None:
        """Make ``metrics.jsonl`` match the (possibly restored) history exactly."""
        assert self.log_dir is not None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        path = self.log_dir / "metrics.jsonl"
        tmp = path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in self.history))
        os.replace(tmp, path)

    def _log(self, record: Mapping[str, float]) -> None:
        if self.log_dir is None:
            return
        with open(self.log_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.tensorboard:
            if self._writer is None:
                from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415 - tensorboard is the optional [log] extra

                self._writer = SummaryWriter(str(self.log_dir))
            for key, value in record.items():
                if key != "epoch":
                    self._writer.add_scalar(key, value, int(record["epoch"]))
            self._writer.flush()


def _weighting(
    weights: Mapping[str, float] | WeightSchedule | None, weighting: TaskWeighting | None, tasks: tuple[str, ...]
) -> TaskWeighting:
    """The Trainer's weighting from its ``weights=`` shorthand or its ``weighting=`` argument."""
    if weighting is not None:
        if weights is not None:
            raise ValueError(
                "give weights= or weighting=, not both (a schedule over a method: Scheduled(schedule, method))"
            )
        if not isinstance(weighting, TaskWeighting):
            raise TypeError(f"weighting must be a mtlkit.balancing.TaskWeighting, got {weighting!r}")
        return weighting
    if weights is None:
        weights = {task: 1.0 for task in tasks}
    return Scheduled(weights if isinstance(weights, WeightSchedule) else ConstantWeights(weights))


def _labeled_count(target: torch.Tensor | None, output: torch.Tensor) -> int:
    if target is None:
        return 1
    if target.is_floating_point():
        return target.numel() if target.dim() <= 1 else target.shape[0]
    return int((target != IGNORE_INDEX).sum())
