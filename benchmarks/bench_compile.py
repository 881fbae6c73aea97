"""torch.compile vs eager: one training step of the two-task coursework CNN on the CPU.

The same model (``bench_trainer``'s Fashion-MNIST item + group CNN), the same batches and the same
weighted loss; ``torch.compile`` (inductor) compiles the model's forward and backward once, in the
warm-up, and that compile time is reported apart from the steps. ``ratio = compiled / eager``: below
1 means compiling pays off per step.
"""

from __future__ import annotations

import copy
import time

import torch
from torch.nn import functional as F

from benchmarks._timing import compare
from benchmarks.bench_trainer import _model


def run(quick: bool = False) -> list[dict[str, object]]:
    batch_size, n_batches = 64, (4 if quick else 20)
    g = torch.Generator().manual_seed(0)
    batches = [
        (
            torch.randn(batch_size, 1, 28, 28, generator=g),
            {
                "item": torch.randint(0, 10, (batch_size,), generator=g),
                "group": torch.randint(0, 3, (batch_size,), generator=g),
            },
        )
        for _ in range(n_batches)
    ]
    eager = _model()
    compiled_model = copy.deepcopy(eager)
    compiled = torch.compile(compiled_model)

    def steps(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
        for x, y in batches:
            out = model(x)
            loss = 0.5 * F.cross_entropy(out["item"], y["item"]) + 0.5 * F.cross_entropy(out["group"], y["group"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    eager_opt = torch.optim.SGD(eager.parameters(), lr=0.01)
    compiled_opt = torch.optim.SGD(compiled_model.parameters(), lr=0.01)
    start = time.perf_counter()
    steps(compiled, compiled_opt)  # first call compiles
    compile_s = time.perf_counter() - start
    result = compare(lambda: steps(eager, eager_opt), lambda: steps(compiled, compiled_opt), repeats=2 if quick else 5)
    return [
        {
            "name": f"torch.compile vs eager training step (coursework CNN, 2 tasks, {n_batches}×{batch_size})",
            "target": "report (below 1: compiled is faster)",
            "first_call_with_compile_s": round(compile_s, 2),
            **result,
        }
    ]


if __name__ == "__main__":
    for entry in run():
        print(entry)
