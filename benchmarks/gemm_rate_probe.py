"""The multiply-add rate of ``torch.mm`` on the GEMM shapes of a ``ParameterBudget(0.25)`` grid point.

``OMP_NUM_THREADS=1 python -m benchmarks.gemm_rate_probe``: for the Tucker ``T = 2``, 512 → 512,
batch 64 grid point (ranks 106, 106, 2), the dense layers' ``(64, 512) @ (512, 512)`` GEMM and the
plan's thinner ``(64, 512) @ (512, 106)``, ``(64, 106) @ (106, 106)``, ``(128, 106) @ (106, 512)``:
if the thin GEMMs run at the dense one's rate, what keeps such a point's time above its FLOP ratio
is per-operation cost (einsum's permutes and copies, the extra calls of forward and backward),
not the GEMMs. Prints GMAC/s, the median of 50 calls after 5 warm-up calls.
"""

from __future__ import annotations

import statistics
import time

import torch

SHAPES = ((64, 512, 512), (64, 512, 106), (64, 106, 106), (128, 106, 512))


def rate(m: int, k: int, n: int, calls: int = 50) -> float:
    """Multiply-adds per second (G) of ``(m, k) @ (k, n)`` in float32."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    for _ in range(5):
        a @ b
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return m * k * n / statistics.median(times) / 1e9


if __name__ == "__main__":
    torch.set_num_threads(1)
    for shape in SHAPES:
        print(f"({shape[0]}, {shape[1]}) @ ({shape[1]}, {shape[2]}): {rate(*shape):.1f} GMAC/s")
