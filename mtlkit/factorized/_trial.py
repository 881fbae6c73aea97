r"""Plan choice by timed trial: of the candidate plans with few multiply-adds, the one that runs fastest.

Multiply-adds rank plans by time only while every step runs near the device's peak rate. A step
with little work per output element does not: a convolution with one or a few channels per image
or per group — the ``1 → K_h·K_w`` convolution of a Tucker kernel on each of ``K_in`` projected
channels, a depthwise convolution — runs at a few percent of a dense convolution's rate on CPU
(oneDNN), and its weight gradient slower still. Measured on the DMTRL LeNet's conv2 (``T = 10``,
32 → 64, 4 × 4, batch 64, Tucker ranks ``(2, 2, 16, 32, 5)``, one thread, forward + backward):
the fewest-multiply-adds plan (312 M: ``1×1`` to 16 channels, then that convolution on
``T·B·16`` single-channel images) takes about twice as long as one with 1.85× its multiply-adds
(578 M: ``1×1``, then one convolution grouped by task, 16 → 32 channels a group). How much slower
such steps run depends on the library's kernels and on the device, so no formula with constants
fitted to one machine predicts it; :func:`fastest` measures instead, once per layer and input
shape, in interleaved rounds (as ``benchmarks/_timing.py``), among the plans within ``within`` ×
the fewest multiply-adds (a plan that needs more would have to run at over ``within`` times the
cheapest plan's rate to win) and those the caller names in ``always``. A convolution names its
compose-first plans: they run ``T`` dense-shaped convolutions at a dense convolution's rate, which
is over ``within`` times the rate of few-channel steps (the DMTRL LeNet's conv1 at Tucker ranks
``(3, 3, 1, 16, 5)``: the fewest-multiply-adds plan has 0.39 × the dense multiply-adds, composing
1.0 ×, and composing runs faster). It keeps the fewest-multiply-adds plan
unless another is faster by more than ``margin`` (timing noise on a busy machine must not switch
plans), so the choice is repeatable wherever the candidates' speeds differ clearly, and is
skipped altogether where there is one candidate. A convolution plan's kernel that carries the
task axis is a candidate twice, at the same multiply-adds: run as one convolution (kept on a tie)
and as ``T`` convolutions, one per task; on CPU the LeNet's conv1 runs the latter about 1.6× faster.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

__all__ = ["fastest"]


class _Costed(Protocol):
    @property
    def multiply_adds(self) -> int: ...


Plan = TypeVar("Plan", bound=_Costed)


def fastest(
    plans: Sequence[Plan],
    trial: Callable[[Plan], Callable[[], object]],
    *,
    within: float = 2.0,
    margin: float = 1.1,
    repeats: int = 5,
    min_seconds: float = 0.02,
    always: Sequence[Plan] = (),
    timer: Callable[[], float] = time.perf_counter,
) -> Plan:
    """The plan of ``plans`` (fewest multiply-adds first) whose ``trial(plan)()`` takes least time.

    ``trial(plan)`` returns a function that runs ``plan`` once and waits for the device. Each
    candidate runs once to warm up (allocations, kernel selection: a first call can take a few
    times as long as the next, so it is not timed), then once timed; those whose timed run takes
    over twice the quickest are dropped, the others run in ``repeats`` interleaved rounds and
    their medians count. A round times each candidate over as many runs as the quickest timed
    run needs to fill ``min_seconds`` (a single millisecond run is mostly timer and scheduler noise).
    The first plan is kept unless another's median is below its own / ``margin``. ``always``: plans
    timed whatever their multiply-adds (a plan known to run near peak rate, such as composing
    first, may beat plans far cheaper in count). ``timer`` reads the time in seconds.

    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Candidate:
    ...     multiply_adds: int
    ...     seconds: float
    >>> clock = [0.0]  # a clock that each run advances by its plan's seconds
    >>> def trial(plan):
    ...     def run():
    ...         clock[0] += plan.seconds
    ...     return run
    >>> plans = [Candidate(10, 4.0), Candidate(20, 1.0), Candidate(30, 0.0)]
    >>> fastest(plans, trial, timer=lambda: clock[0])  # 30 > 2 × 10: never timed
    Candidate(multiply_adds=20, seconds=1.0)
    """
    if not plans:
        raise ValueError("fastest: plans must not be empty")
    if within < 1 or margin < 1 or repeats < 1 or min_seconds < 0:
        raise ValueError(
            f"fastest: within={within} and margin={margin} must be ≥ 1, repeats={repeats} ≥ 1, "
            f"min_seconds={min_seconds} ≥ 0"
        )
    if any(plan not in plans for plan in always):
        raise ValueError("fastest: every plan in always must be one of plans")
    least = min(plan.multiply_adds for plan in plans)
    candidates = [plan for plan in plans if plan.multiply_adds <= within * least or plan in always]
    if len(candidates) == 1:
        return candidates[0]

    def seconds(run: Callable[[], object], times: int = 1) -> float:
        start = timer()
        for _ in range(times):
            run()
        return timer() - start

    runs = [trial(plan) for plan in candidates]
    for run in runs:
        run()
    once = [seconds(run) for run in runs]
    kept = [n for n in range(len(runs)) if n == 0 or once[n] <= 2 * min(once)]
    per_round = max(1, math.ceil(min_seconds / min(once))) if min(once) > 0 else 1
    times: dict[int, list[float]] = {n: [] for n in kept}
    for _ in range(repeats):  # interleaved: every candidate sees the same machine noise
        for n in kept:
            times[n].append(seconds(runs[n], per_round))
    medians = [statistics.median(times[n]) if n in times else float("inf") for n in range(len(runs))]
    best = min(range(len(candidates)), key=medians.__getitem__)
    return candidates[best] if medians[best] * margin < medians[0] else candidates[0]
