"""Cost of each gradient aggregator: Trainer step time and peak memory, as ratios, on LeNets with T = 2 and 10.

Every method trains the same LeNet (shared trunk, one head per task) from the same weights on the
same pre-built batches through ``Trainer(weighting=...)``. All callables of one network are timed
in turn within each repeat, so every ratio compares runs that saw the same machine load:

* ``plain``: :class:`~mtlkit.balancing.EqualWeighting` (one backward pass of the summed loss);
* ``T backward passes``: the per-task Jacobian machinery with the trivial aggregation
  :math:`d = \\sum_t g_t` (one backward pass per task, no solver) — the reference of issue #19's
  target, "each method ≤ 1.3 × the cost of T backward passes through the shared trunk";
* each method; Nash-MTL also with ``update_every`` = 10 and 25 (target ≤ 1.5 × plain). Its
  amortised cost is :math:`1 + (c - 1)/k` times plain, with :math:`c` the cost of a full step, so
  the target needs :math:`k \\ge 2(c - 1)`; :math:`c` grows with :math:`T` (the T backward passes).
  50 steps per timing make every ``k`` here update the same number of times in each repeat.

Peak memory is what torch allocates on the CPU during one training step above what was allocated
before it, from the profiler's memory events (``profile_memory=True``); on CUDA it is
``torch.cuda.max_memory_allocated`` over one step. A last entry times one per-task
``torch.autograd.grad`` loop against one batched call (``is_grads_batched=True``).
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable

import torch
from torch.nn import functional as F
from torch.profiler import ProfilerActivity, profile

from mtlkit import MultiTaskModel, Trainer
from mtlkit.balancing import (
    IMTLG,
    MGDA,
    AlignedMTL,
    CAGrad,
    EqualWeighting,
    GradientAggregator,
    NashMTL,
    PCGrad,
    TaskWeighting,
    UPGrad,
)
from mtlkit.nn import lenet_head, lenet_trunk

RUNS_ON_ACCELERATORS = True


class SumOfTaskGradients(GradientAggregator):
    """The reference: the per-task Jacobian, aggregated by plain summing (no solver)."""

    def weights(self, gramian: torch.Tensor) -> torch.Tensor:
        return torch.ones(len(gramian), dtype=torch.float64)


Make = Callable[[tuple[str, ...]], TaskWeighting]
METHODS: dict[str, Make] = {
    "MGDA-UB": MGDA,
    "MGDA-UB (representation)": lambda tasks: MGDA(tasks, representation=True),
    "PCGrad": PCGrad,
    "CAGrad": lambda tasks: CAGrad(tasks, c=0.4),
    "Nash-MTL": NashMTL,
    "Nash-MTL (update every 10)": lambda tasks: NashMTL(tasks, update_every=10),
    "Nash-MTL (update every 25)": lambda tasks: NashMTL(tasks, update_every=25),
    "IMTL-G": IMTLG,
    "Aligned-MTL": AlignedMTL,
    "UPGrad": UPGrad,
}


def _peak_bytes(step: Callable[[], None], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        step()
        torch.cuda.synchronize(device)
        return float(torch.cuda.max_memory_allocated(device) - before)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    running = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        # allocations are charged to the op that made them, frees to "[memory]" events
        running += event.cpu_memory_usage if event.name == "[memory]" else event.self_cpu_memory_usage
        peak = max(peak, running)
    return float(peak)


def _network(n_tasks: int, quick: bool, device: torch.device) -> list[dict[str, object]]:
    tasks = ("left", "right") if n_tasks == 2 else tuple(f"digit{k}" for k in range(n_tasks))
    classes = 10 if n_tasks == 2 else 2
    steps, batch_size, repeats = (3, 32, 2) if quick else (50, 256, 5)
    g = torch.Generator().manual_seed(0)
    batches = [
        (torch.rand(batch_size, 1, 28, 28, generator=g),
         {t: torch.randint(0, classes, (batch_size,), generator=g) for t in tasks})
        for _ in range(steps)
    ]  # fmt: skip
    torch.manual_seed(0)
    base = MultiTaskModel(lenet_trunk(), {t: lenet_head(classes) for t in tasks})
    candidates: dict[str, Make] = {"plain": EqualWeighting, "T backward passes": SumOfTaskGradients, **METHODS}
    trainers: dict[str, Trainer] = {}
    for name, make in candidates.items():
        model = copy.deepcopy(base)
        weighting = make(tasks)
        trainers[name] = Trainer(model, torch.optim.SGD(model.parameters(), 1e-3), {t: F.cross_entropy for t in tasks},
                                 weighting=weighting, progress=False, device=device)  # fmt: skip

    def run_steps(trainer: Trainer) -> None:
        for batch in batches:
            trainer.train_step(batch)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    times: dict[str, list[float]] = {name: [] for name in trainers}
    for trainer in trainers.values():
        run_steps(trainer)  # warm-up: solvers built, first weights computed
    for _ in range(repeats):
        for name, trainer in trainers.items():
            start = time.perf_counter()
            run_steps(trainer)
            times[name].append(time.perf_counter() - start)
    peak = {name: _peak_bytes(lambda t=trainer: t.train_step(batches[0]), device) for name, trainer in trainers.items()}
    median = {name: statistics.median(t) for name, t in times.items()}
    net = f"LeNet, T = {n_tasks}, {steps} Trainer steps of batch {batch_size}"
    entries: list[dict[str, object]] = []
    for name in METHODS:
        versus_t = [m / r for m, r in zip(times[name], times["T backward passes"], strict=True)]
        versus_plain = [m / r for m, r in zip(times[name], times["plain"], strict=True)]
        nash_k = "update every" in name
        entries.append(
            {
                "name": f"{name} step time vs {'plain summing' if nash_k else 'T backward passes'} ({net})",
                "target": "<= 1.5 (vs plain summing)" if nash_k else "<= 1.3 (vs T backward passes)",
                "ratio": median[name] / median["plain" if nash_k else "T backward passes"],
                "ratio_min": min(versus_plain if nash_k else versus_t),
                "ratio_max": max(versus_plain if nash_k else versus_t),
                "time_ratio_vs_plain": median[name] / median["plain"],
                "time_ratio_vs_T_backward": median[name] / median["T backward passes"],
                "T_backward_vs_plain": median["T backward passes"] / median["plain"],
                "peak_memory_ratio_vs_plain": peak[name] / peak["plain"] if peak["plain"] > 0 else None,
                "peak_memory_mb": round(peak[name] / 2**20, 2),
                "plain_peak_memory_mb": round(peak["plain"] / 2**20, 2),
                "ours_s": median[name],
                "baseline_s": median["plain" if nash_k else "T backward passes"],
                "repeats": repeats,
            }
        )
    return entries


def _batched_versus_loop(quick: bool, device: torch.device) -> dict[str, object]:
    n_tasks, batch_size, repeats = (10, 32, 2) if quick else (10, 256, 7)
    tasks = tuple(f"t{k}" for k in range(n_tasks))
    torch.manual_seed(0)
    model = MultiTaskModel(lenet_trunk(), {t: lenet_head(2) for t in tasks}).to(device)
    x = torch.rand(batch_size, 1, 28, 28, device=device)
    y = {t: torch.randint(0, 2, (batch_size,), device=device) for t in tasks}
    params = list(model.parameters())

    def losses() -> list[torch.Tensor]:
        out = model(x)
        return [F.cross_entropy(out[t], y[t]) for t in tasks]

    def loop() -> None:
        ls = losses()
        for k, loss in enumerate(ls):
            torch.autograd.grad(loss, params, retain_graph=k < len(ls) - 1, allow_unused=True)

    def batched() -> None:
        stacked = torch.stack(losses())
        eye = torch.eye(n_tasks, device=device)
        torch.autograd.grad(stacked, params, grad_outputs=eye, is_grads_batched=True, allow_unused=True)

    loop(), batched()
    loop_times, batched_times = [], []
    for _ in range(repeats):
        for fn, out in ((loop, loop_times), (batched, batched_times)):
            start = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            out.append(time.perf_counter() - start)
    return {
        "name": f"per-task Jacobian: one batched autograd.grad (is_grads_batched) vs a loop of {n_tasks} "
        f"(LeNet, batch {batch_size})",
        "target": "informational: < 1 would favour the batched call",
        "ratio": statistics.median(batched_times) / statistics.median(loop_times),
        "ours_s": statistics.median(batched_times),
        "baseline_s": statistics.median(loop_times),
        "repeats": repeats,
    }


def run(quick: bool = False, device: torch.device | None = None) -> list[dict[str, object]]:
    device = device or torch.device("cpu")
    return [*_network(2, quick, device), *_network(10, quick, device), _batched_versus_loop(quick, device)]


if __name__ == "__main__":
    for entry in run():
        print(entry)
