"""Interleaved, repeated timing so that both sides of a ratio see the same machine noise."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``fn`` over ``repeats`` calls, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def compare(
    baseline: Callable[[], object], ours: Callable[[], object], repeats: int, warmup: int = 1
) -> dict[str, float]:
    """Median seconds of each callable over ``repeats`` alternating runs, and their ratio.

    ``ratio = median(ours) / median(baseline)``: below 1 means ours is faster.
    """
    for _ in range(warmup):
        baseline()
        ours()
    base_times, our_times = [], []
    for _ in range(repeats):
        for fn, times in ((baseline, base_times), (ours, our_times)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    base, mine = statistics.median(base_times), statistics.median(our_times)
    ratios = sorted(o / b for o, b in zip(our_times, base_times, strict=True))
    return {
        "baseline_s": base,
        "ours_s": mine,
        "ratio": mine / base,
        "ratio_min": ratios[0],
        "ratio_max": ratios[-1],
        "repeats": repeats,
    }
