"""Shared test helpers: small synthetic multi-task problems, and quick reproduction runs."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import torch
from torch.nn import functional as F

from mtlkit import LinearHead, MultiTaskModel
from mtlkit.cli import main
from mtlkit.nn import MLP
from mtlkit.results import results_path


class ShuffledBatches:
    """Minimal re-iterable batch source whose shuffling comes only from ``self.generator``."""

    def __init__(self, x: torch.Tensor, targets: dict[str, torch.Tensor], batch_size: int, seed: int = 0):
        self.x, self.targets, self.batch_size = x, targets, batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self):
        order = torch.randperm(len(self.x), generator=self.generator)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            yield self.x[idx], {k: v[idx] for k, v in self.targets.items()}

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)  # noqa: PLE0303 - ceil division of non-negatives


def toy_problem(n: int = 96, seed: int = 0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    targets = {"a": (x[:, 0] > 0).long() + (x[:, 1] > 0).long(), "b": (x[:, 2] + x[:, 3] > 0).long()}
    return x, targets


def toy_model(seed: int = 0, dropout: float = 0.0) -> MultiTaskModel:
    torch.manual_seed(seed)
    return MultiTaskModel(MLP(6, [16], dropout=dropout), {"a": LinearHead(16, 3), "b": LinearHead(16, 2)})


LOSSES = {"a": F.cross_entropy, "b": F.cross_entropy}


def reproduce_quick(name: str, out: Path, data_root: str | None = None) -> dict:
    """``mtlkit reproduce <name> --mode quick`` into ``out`` (checkpoints under ``out/runs``); its results JSON.

    Without ``data_root`` the run finds its data through ``MTLKIT_DATA``, as a user's would.
    """
    args = ["reproduce", name, "--mode", "quick", "--results-dir", str(out), "--runs-dir", str(out / "runs"),
            "--no-progress"]  # fmt: skip
    if data_root is not None:
        args += ["--data", data_root]
    assert main(args) == 0
    return json.loads(results_path(out, name).read_text())


@contextmanager
def example_modules(folder: str, *names: str) -> Iterator[tuple[ModuleType, ...]]:
    """The scripts ``names`` of ``examples/<folder>``, imported by bare name as they import their siblings;
    ``sys.path`` is restored afterwards."""
    path = str(Path(__file__).resolve().parents[1] / "examples" / folder)
    sys.path.insert(0, path)
    try:
        yield tuple(importlib.import_module(name) for name in names)
    finally:
        sys.path.remove(path)


def docs_generator() -> ModuleType:
    """``docs/generate_results.py`` as a module (it is a script, not part of the package)."""
    path = Path(__file__).resolve().parents[1] / "docs" / "generate_results.py"
    spec = importlib.util.spec_from_file_location("generate_results", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
