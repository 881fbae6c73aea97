"""InMemoryBatches vs torch DataLoader over the same in-memory data, and MNIST load time.

Both sides produce identical float32, normalised batches (the tests check
this); the DataLoader converts per item (``ImageDataset.__getitem__``) and
collates, InMemoryBatches gathers and converts one whole batch at a time.
Times are medians over ``repeats`` epochs measured in one run.

Uses MNIST from ``$MTLKIT_DATA`` when available, else the Fashion-MNIST
subset shipped with mtlkit. ``python benchmarks/bench_batches.py [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterable

import torch
from torch.utils.data import DataLoader

from mtlkit.data import DataError, ImageDataset, _root, load

BATCH = 128


def _median_seconds(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _drain(batches: Iterable[tuple[torch.Tensor, dict[str, torch.Tensor]]]) -> int:
    # Touch every batch so lazy work cannot be skipped.
    return sum(int(x.shape[0]) for x, _ in batches)


def _dataset(quick: bool) -> tuple[str, ImageDataset]:
    try:
        ds = load("mnist", "train")
        name = "MNIST"
    except DataError:
        ds = load("fashion_mnist_small", "train")
        name = "Fashion-MNIST small"
    if quick:
        ds = ds.subset(range(min(len(ds), 10_000)))
    return name, ds


def _load_times(repeats: int) -> list[dict[str, object]]:
    try:
        load("mnist", "test")
    except DataError:
        return []

    def cold() -> None:
        # Forget remembered checksums so this includes hashing the files.
        _root._verdicts.clear()
        _root._verdicts_loaded = True
        load("mnist", "train")

    return [
        {
            "name": "load('mnist', 'train') from gz, sha256 verdict cached",
            "seconds": _median_seconds(lambda: load("mnist", "train"), repeats),
            "repeats": repeats,
            "target_s": 2.0,
        },
        {
            "name": "load('mnist', 'train') from gz, including sha256 of every file",
            "seconds": _median_seconds(cold, repeats),
            "repeats": repeats,
            "target_s": 2.0,
        },
    ]


def run(quick: bool) -> list[dict[str, object]]:
    """Measure and return one dict per comparison (ratio = baseline_s / ours_s)."""
    repeats = 3 if quick else 5
    torch.set_num_threads(1)  # the shared machine; and DataLoader runs single-process too
    name, ds = _dataset(quick)
    ours = ds.batches(BATCH, shuffle=True, seed=0)
    loader = DataLoader(ds, batch_size=BATCH, shuffle=True, generator=torch.Generator())
    assert _drain(ours) == _drain(loader) == len(ds)
    baseline_s = _median_seconds(lambda: _drain(loader), repeats)
    ours_s = _median_seconds(lambda: _drain(ours), repeats)
    results: list[dict[str, object]] = [
        {
            "name": f"InMemoryBatches vs DataLoader ({name}, {len(ds)} images, batch {BATCH})",
            "ratio": baseline_s / ours_s,
            "baseline_s": baseline_s,
            "ours_s": ours_s,
            "repeats": repeats,
        }
    ]
    return results + _load_times(repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images and repeats")
    args = parser.parse_args()
    for entry in run(args.quick):
        print(
            ", ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in entry.items()
            )
        )


if __name__ == "__main__":
    main()
