r"""The two-objective toy problem on :math:`\mathbb R^2` of CAGrad, Nash-MTL and FAMO, and one run on it.

The objectives are those of Liu et al., "Conflict-Averse Gradient Descent for Multi-task
Learning" (NeurIPS 2021, Sec. 5.1 and its ``toy.py``), in the imbalanced form of Navon et al.,
"Multi-Task Learning as a Bargaining Game" (ICML 2022, Sec. 6.1) and Liu et al., "FAMO: Fast
Adaptive Multitask Optimization" (NeurIPS 2023, Sec. 5.1), who scale the first loss by
:math:`s = 0.1`. With :math:`p = (x, y)`, :math:`c_+ = \max(\tanh(y/2), 0)`,
:math:`c_- = \max(\tanh(-y/2), 0)` (at every point one of them is 0) and :math:`\delta = 5\cdot 10^{-6}`:

.. math::
    u_1 &= \log\max\bigl(\lvert -\tfrac{x + 7}{2} + \tanh y \rvert, \delta\bigr) + 6, &
    q_1 &= \tfrac{1}{10}\bigl((x - 7)^2 + 0.1 (y + 8)^2\bigr) - 20, \\
    u_2 &= \log\max\bigl(\lvert \tfrac{3 - x}{2} - \tanh y + 2 \rvert, \delta\bigr) + 6, &
    q_2 &= \tfrac{1}{10}\bigl((x + 7)^2 + 0.1 (y + 8)^2\bigr) - 20, \\
    f_1 &= s\,(c_+ u_1 + c_- q_1), & f_2 &= c_+ u_2 + c_- q_2 .

Above :math:`y = 0` each objective is the logarithm of a distance to a curved valley (the
log-scaled part, flat far from the valley, steep near it); below, a shallow quadratic bowl centred
at :math:`(\pm 7, -8)`. The Pareto set lies in the lower half-plane, where the two gradients are
anti-parallel (:func:`pareto_curve`); the valleys of the upper half-plane, where one task's
logarithm is clipped and its gradient vanishes, are far from it.

Every weighting and aggregator of :mod:`mtlkit.balancing` trains the point through
:meth:`mtlkit.Trainer.train_step`, the code path of any model: :class:`ToyPoint` is a
:class:`~mtlkit.nn.MultiTaskModule` whose only (shared) parameter is :math:`p`, and whose outputs
*are* the losses, :math:`\ell_t = f_t + 21 s_t` — the FAMO code's lower bounds
:math:`f_t > -21 s_t`, subtracted so that the methods that take logarithms or ratios of losses
(FAMO, DB-MTL, DWA, GradNorm, uncertainty weighting) see positive losses. The shift changes no
gradient.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mtlkit import Trainer
from mtlkit.balancing import (
    DBMTL,
    FAMO,
    IMTLG,
    MGDA,
    AlignedMTL,
    CAGrad,
    DynamicWeightAverage,
    EqualWeighting,
    GradNorm,
    NashMTL,
    PCGrad,
    RandomLossWeighting,
    TaskWeighting,
    UncertaintyWeighting,
    UPGrad,
)
from mtlkit.nn import MultiTaskModule

TASKS = ("f1", "f2")
#: The scale of the first objective (Nash-MTL and FAMO; CAGrad's own figure uses 1).
SCALE = 0.1
#: Where the logarithms are clipped (the papers' code).
DELTA = 5e-6
#: Lower bounds of the unscaled objectives, subtracted from the losses (:math:`f_t > -21 s_t`).
LOWER_BOUND = -21.0
#: The five starting points of Nash-MTL (Fig. 1) and FAMO (Fig. 2).
STARTS: tuple[tuple[float, float], ...] = ((-8.5, 7.5), (0.0, 0.0), (9.0, 9.0), (-7.5, -0.5), (9.0, -1.0))
#: Adam's learning rate for the point (all three papers), and for a method's own parameters
#: (uncertainty weighting's log-variances, GradNorm's weights: Nash-MTL's ``method_params_lr``).
LR, METHOD_LR = 1e-3, 0.025

#: Every method of :mod:`mtlkit.balancing`, built for the toy's two tasks. CAGrad's radius is its
#: toy value; FAMO's logit decay is 0 as in FAMO's toy run (the objective does not change).
METHODS: dict[str, Callable[[], TaskWeighting]] = {
    "EW": lambda: EqualWeighting(TASKS),
    "UW": lambda: UncertaintyWeighting(TASKS),
    "DWA": lambda: DynamicWeightAverage(TASKS),
    "RLW": lambda: RandomLossWeighting(TASKS, seed=0),
    "GradNorm": lambda: GradNorm(TASKS, alpha=1.5),
    "FAMO": lambda: FAMO(TASKS, weight_decay=0.0),
    "DB-MTL": lambda: DBMTL(TASKS),
    "MGDA-UB": lambda: MGDA(TASKS),
    "PCGrad": lambda: PCGrad(TASKS, seed=0),
    "CAGrad": lambda: CAGrad(TASKS, c=0.5),
    "Nash-MTL": lambda: NashMTL(TASKS),
    "IMTL-G": lambda: IMTLG(TASKS),
    "Aligned-MTL": lambda: AlignedMTL(TASKS),
    "UPGrad": lambda: UPGrad(TASKS),
}


def objectives(points: torch.Tensor, scale: float = SCALE) -> torch.Tensor:
    r""":math:`(f_1, f_2)` at ``points`` of shape ``(..., 2)``; result ``(..., 2)``.

    Example:
        >>> objectives(torch.tensor([0.0, -8.0]), scale=1.0)
        tensor([-15.0899, -15.0899])
    """
    x, y = points[..., 0], points[..., 1]
    up, down = torch.tanh(y / 2).clamp_min(0), torch.tanh(-y / 2).clamp_min(0)
    t = torch.tanh(y)
    u1 = ((-(x + 7) / 2 + t).abs().clamp_min(DELTA)).log() + 6
    u2 = (((3 - x) / 2 - t + 2).abs().clamp_min(DELTA)).log() + 6
    bowl = 0.01 * (y + 8) ** 2 - 20
    q1, q2 = (x - 7) ** 2 / 10 + bowl, (x + 7) ** 2 / 10 + bowl
    return torch.stack([scale * (up * u1 + down * q1), up * u2 + down * q2], dim=-1)


class _Point(nn.Module):
    def __init__(self, start: Sequence[float]) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor([float(v) for v in start], dtype=torch.float64))


class ToyPoint(MultiTaskModule):
    """The "model" of the toy problem: one shared parameter :math:`p \\in \\mathbb R^2`, no heads.

    Its input is ignored; its outputs are the shifted losses :math:`\\ell_t = f_t(p) + 21 s_t`.

    Example:
        >>> model = ToyPoint((0.0, -8.0), scale=1.0)
        >>> {t: round(v.item(), 4) for t, v in model(torch.zeros(1)).items()}
        {'f1': 5.9101, 'f2': 5.9101}
    """

    tasks = TASKS

    def __init__(self, start: Sequence[float], scale: float = SCALE) -> None:
        super().__init__()
        self.point = _Point(start)
        self.scale = float(scale)
        self._shift = -LOWER_BOUND * torch.tensor([self.scale, 1.0], dtype=torch.float64)

    def forward(self, x: torch.Tensor, tasks: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        losses = objectives(self.point.p, self.scale) + self._shift
        return {t: losses[TASKS.index(t)] for t in (tasks or TASKS)}

    def shared_modules(self) -> list[nn.Module]:
        return [self.point]


@dataclass(frozen=True)
class Trajectory:
    """The points kept of one run (the start first, the end last) and its CPU time per step."""

    method: str
    start: tuple[float, float]
    points: np.ndarray
    cpu_seconds_per_step: float


def trajectory(
    method: str,
    start: Sequence[float],
    steps: int,
    lr: float = LR,
    scale: float = SCALE,
    every: int = 1,
    anneal: bool = False,
) -> Trajectory:
    """``steps`` Adam steps of ``METHODS[method]`` from ``start`` through ``Trainer.train_step``.

    One step is one epoch of the toy's single batch (DWA's weights change per epoch). Every
    ``every``-th point is kept, and the last. ``anneal`` takes the point's rate to 0 by a cosine
    over the steps (a short run then ends at rest instead of jittering by about ``lr``).

    Example:
        >>> run = trajectory("EW", (0.0, -8.0), steps=3)
        >>> run.points.shape
        (4, 2)
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got steps={steps}")
    model = ToyPoint(start, scale)
    weighting = METHODS[method]()
    groups = [{"params": model.parameters(), "lr": lr}]
    own = [p for p in weighting.parameters() if p.requires_grad]
    if own:
        groups.append({"params": own, "lr": METHOD_LR})
    optimizer = torch.optim.Adam(groups)
    trainer = Trainer(model, optimizer, {t: None for t in TASKS}, weighting=weighting, progress=False)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps) if anneal else None
    batch = (torch.zeros(1), {})
    kept = [model.point.p.detach().numpy().copy()]
    began = time.process_time()
    for step in range(1, steps + 1):
        trainer.train_step(batch)
        weighting.on_epoch_end()
        if schedule is not None:
            schedule.step()
        if step % every == 0 or step == steps:
            kept.append(model.point.p.detach().numpy().copy())
    elapsed = time.process_time() - began
    return Trajectory(method, (float(start[0]), float(start[1])), np.stack(kept), elapsed / steps)


def gradients(point: Sequence[float], scale: float = SCALE) -> torch.Tensor:
    """The ``2 × 2`` Jacobian :math:`[\\nabla f_1; \\nabla f_2]` at ``point`` (float64)."""
    p = torch.tensor([float(v) for v in point], dtype=torch.float64, requires_grad=True)
    rows = [torch.autograd.grad(f, p, retain_graph=True)[0] for f in objectives(p, scale)]
    return torch.stack(rows)


def stationarity(point: Sequence[float], scale: float = SCALE) -> float:
    r"""The norm of the min-norm convex combination of the two *unit* gradients at ``point``.

    0 exactly at a Pareto-stationary point (anti-parallel gradients, or a zero one); 1 where the
    gradients agree. For unit :math:`u_1, u_2` it is :math:`\sqrt{(1 + u_1^\top u_2)/2}`, and it does not
    depend on :math:`s`.

    Example:
        >>> round(stationarity((0.0, 5.0)), 3) > 0.1  # upper half-plane, away from the valleys
        True
    """
    g = gradients(point, scale)
    norms = g.norm(dim=1)
    if float(norms.min()) == 0.0:
        return 0.0
    cosine = float((g[0] @ g[1]) / (norms[0] * norms[1]))
    return math.sqrt(max(0.0, (1.0 + cosine) / 2.0))


def pareto_curve(n: int = 201) -> np.ndarray:
    r"""Points of the Pareto set, ``(n, 2)``: for :math:`x \in (-7, 7)` the :math:`y < 0` where the
    gradients are anti-parallel.

    Below :math:`y = 0`, :math:`f_t = s_t\, c(y)\, h_t(x, y)` with :math:`c = \tanh(-y/2)`, and the
    gradients are parallel where :math:`\det[\nabla f_1; \nabla f_2] = 0`, i.e.

    .. math:: c'(y)\,\bigl(\partial_x h_1\, h_2 - \partial_x h_2\, h_1\bigr)
              + c(y)\, \partial_y h\, (\partial_x h_1 - \partial_x h_2) = 0 ,

    anti-parallel for :math:`-7 < x < 7`, where :math:`\partial_x h_1 = (x - 7)/5 < 0 <
    \partial_x h_2`. For each :math:`x` the root in :math:`y` is found by Brent's method (SciPy, which
    comes with cvxpy) on :math:`[-14, -1]`, where the left side changes sign once.

    Example:
        >>> curve = pareto_curve(3)
        >>> [round(float(v), 3) for v in curve[1]]  # at x = 0
        [0.0, -8.355]
    """
    from scipy.optimize import brentq

    xs = np.linspace(-7, 7, n + 2)[1:-1]
    ys = np.array([brentq(lambda y, x=x: _parallel_residual(x, y), -14.0, -1.0, xtol=1e-12) for x in xs])
    return np.stack([xs, ys], axis=1)


def _parallel_residual(x: float, y: float) -> float:
    c, dc = math.tanh(-y / 2), -0.5 / math.cosh(y / 2) ** 2
    bowl = 0.01 * (y + 8) ** 2 - 20
    h1, h2 = (x - 7) ** 2 / 10 + bowl, (x + 7) ** 2 / 10 + bowl
    h1x, h2x, hy = (x - 7) / 5, (x + 7) / 5, 0.02 * (y + 8)
    return dc * (h1x * h2 - h2x * h1) + c * hy * (h1x - h2x)
