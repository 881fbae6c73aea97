"""Probe for the LeNet conv1 grid misses (docs/factorized.rst): one fused 1 → T·32 convolution
(what a full-rank factorised conv1 runs after composing its kernels) against T separate 1 → 32
convolutions (the dense layers), forward + backward and forward alone, one thread, interleaved.

    OMP_NUM_THREADS=1 python benchmarks/conv1_fused_probe.py
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

TASKS, BATCH, CHANNELS, SIDE, KERNEL = 10, 64, 32, 28, 5
REPEATS = 15


def _median_ms(steps: dict[str, Callable[[], object]], grad: bool) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in steps}
    with torch.set_grad_enabled(grad):
        for step in steps.values():  # warm-up: oneDNN primitives built
            step()
        for _ in range(REPEATS):
            for name, step in steps.items():
                start = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def main() -> None:
    torch.set_num_threads(1)
    x = torch.randn(BATCH, 1, SIDE, SIDE)
    separate = [torch.randn(CHANNELS, 1, KERNEL, KERNEL, requires_grad=True) for _ in range(TASKS)]
    fused = torch.randn(TASKS * CHANNELS, 1, KERNEL, KERNEL, requires_grad=True)

    def dense_step() -> None:
        torch.stack([F.conv2d(x, w).sum() for w in separate]).sum().backward()

    def fused_step() -> None:
        F.conv2d(x, fused).sum().backward()

    train = _median_ms({"T separate convolutions": dense_step, "one fused convolution": fused_step}, grad=True)
    forward = _median_ms(
        {"T separate convolutions": lambda: [F.conv2d(x, w) for w in separate],
         "one fused convolution": lambda: F.conv2d(x, fused)},
        grad=False,
    )  # fmt: skip
    for name in train:
        print(f"{name}: forward + backward {train[name]:.1f} ms, forward {forward[name]:.1f} ms")


if __name__ == "__main__":
    main()
