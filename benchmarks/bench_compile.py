"""torch.compile vs eager: training steps of the coursework CNN and of the DMTRL LeNet on the CPU.

The same model (``bench_trainer``'s Fashion-MNIST item + group CNN; ``bench_precision``'s DMTRL
LeNet at the paper's width), the same batches and the same loss; ``torch.compile`` (inductor)
compiles the model's forward and backward once, in the warm-up, and that compile time is reported
apart from the steps. ``ratio = compiled / eager``: below 1 means compiling pays off per step.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import torch
from torch.nn import functional as F

from benchmarks._timing import compare
from benchmarks.bench_precision import _dmtrl_lenet, _hinge
from benchmarks.bench_trainer import _model


def _case_batches(targets: Callable[[torch.Generator], dict[str, torch.Tensor]], n_batches: int, batch_size: int):
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(batch_size, 1, 28, 28, generator=g), targets(g)) for _ in range(n_batches)]


def _measure(name: str, eager: torch.nn.Module, batches: list, loss: Callable, quick: bool) -> dict[str, object]:
    compiled_model = copy.deepcopy(eager)
    compiled = torch.compile(compiled_model)

    def steps(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
        for x, y in batches:
            total = loss(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()

    eager_opt = torch.optim.SGD(eager.parameters(), lr=0.01)
    compiled_opt = torch.optim.SGD(compiled_model.parameters(), lr=0.01)
    start = time.perf_counter()
    steps(compiled, compiled_opt)  # first call compiles
    compile_s = time.perf_counter() - start
    result = compare(lambda: steps(eager, eager_opt), lambda: steps(compiled, compiled_opt), repeats=2 if quick else 5)
    return {
        "name": f"torch.compile vs eager training step ({name}, {len(batches)}×{batches[0][0].shape[0]})",
        "target": "report (below 1: compiled is faster)",
        "first_call_with_compile_s": round(compile_s, 2),
        **result,
    }


def run(quick: bool = False) -> list[dict[str, object]]:
    batch_size, n_batches = 64, (4 if quick else 20)
    torch.manual_seed(0)
    coursework = _measure(
        "coursework CNN, 2 tasks",
        _model(),
        _case_batches(
            lambda g: {
                "item": torch.randint(0, 10, (batch_size,), generator=g),
                "group": torch.randint(0, 3, (batch_size,), generator=g),
            },
            n_batches,
            batch_size,
        ),
        lambda out, y: 0.5 * F.cross_entropy(out["item"], y["item"]) + 0.5 * F.cross_entropy(out["group"], y["group"]),
        quick,
    )
    torch.manual_seed(0)
    lenet = _measure(
        "DMTRL LeNet, one task, paper width",
        _dmtrl_lenet(),
        _case_batches(
            lambda g: {"digit": torch.randint(0, 2, (batch_size,), generator=g).float() * 2 - 1}, n_batches, batch_size
        ),
        lambda out, y: _hinge(out["digit"], y["digit"]),
        quick,
    )
    return [coursework, lenet]


if __name__ == "__main__":
    for entry in run():
        print(entry)
