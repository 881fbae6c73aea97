"""How close a training step of the coursework CNN runs to the machine's dense-GEMM throughput.

FLOPs of one forward + backward pass are counted by :class:`torch.utils.flop_counter.FlopCounterMode`
(exact per-operator counts, no hand-written formulas); the hardware reference is the measured
GFLOP/s of a large float32 matrix multiply on the same threads, in the same run.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from benchmarks._timing import median_seconds
from mtlkit.nn import Conv, ConvNet, Dense, Flatten


def coursework_cnn() -> ConvNet:
    """The coursework's Task-4 CNN: [32, 64, 128] 4×4 convs with strides 1, 2, 2, then FC 10."""
    return ConvNet(
        (1, 28, 28), [Conv(32, 4), Conv(64, 4, stride=2), Conv(128, 4, stride=2), Flatten(), Dense(10, activation=None)]
    )


def gemm_gflops(n: int = 1024, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / median_seconds(lambda: a @ b, repeats) / 1e9


def run(quick: bool = False) -> list[dict[str, object]]:
    torch.manual_seed(0)
    model = coursework_cnn()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    batch = 64 if quick else 128
    x, y = torch.randn(batch, 1, 28, 28), torch.randint(0, 10, (batch,))

    def step() -> None:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    repeats = 5 if quick else 20
    step_gflops = flops / median_seconds(step, repeats) / 1e9
    peak = gemm_gflops(768 if quick else 1024, repeats=3 if quick else 7)
    return [
        {
            "name": f"coursework CNN training step (batch {batch}): achieved / dense-GEMM GFLOP/s",
            "ratio": step_gflops / peak,
            "achieved_gflops": step_gflops,
            "gemm_gflops": peak,
            "flops_per_step": flops,
            "threads": torch.get_num_threads(),
            "target": "report (closer to 1 is better)",
        }
    ]


if __name__ == "__main__":
    for entry in run():
        print(entry)
