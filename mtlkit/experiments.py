"""The registry of reproducible experiments behind ``mtlkit list`` / ``mtlkit reproduce``.

Each example script registers itself::

    @register_experiment("coursework-task6", seed_file="004_63daf360e7c99336.txt",
                         description="Fashion-MNIST item + group MTL, λ sweep")
    def run(ctx: RunContext) -> None:
        results = ctx.results(deviations=[...], seeds=[0, 1, 2])
        ...

and :func:`discover` imports every ``*.py`` under the examples folder that calls
:func:`register_experiment`, so adding a reproduction never touches a hand-kept list.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from mtlkit.gates import Gate
from mtlkit.results import ResultsFile

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MODES = ("quick", "reduced", "full")

__all__ = [
    "MODES",
    "Experiment",
    "RunContext",
    "cpu_settings",
    "discover",
    "get_experiment",
    "register_experiment",
]


@contextmanager
def cpu_settings(threads: int | None = None, flush_denormal: bool = False) -> Iterator[None]:
    """Process-wide CPU settings for the duration of a run, restored afterwards.

    ``flush_denormal=True`` flushes float32 denormals to zero: schedules like
    :math:`e^{-t/\\sigma}` and saturated sigmoids produce them, and they make CPU arithmetic 10–100×
    slower while changing no value above 1e-38. Restoring matters because runs also happen inside
    other processes (tests), where flushed denormals would break IEEE-754 assumptions.

    Example:
        >>> import torch
        >>> before = torch.get_num_threads()
        >>> with cpu_settings(threads=1, flush_denormal=True):
        ...     torch.get_num_threads()
        1
        >>> torch.get_num_threads() == before
        True
    """
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    torch.set_flush_denormal(flush_denormal)
    try:
        yield
    finally:
        torch.set_num_threads(previous_threads)
        torch.set_flush_denormal(False)


@dataclass(frozen=True)
class RunContext:
    """Where a run reads and writes, and at which budget.

    ``results_dir`` receives ``<experiment>.json`` (quick runs default to a scratch folder so a
    smoke run never overwrites committed results); ``runs_dir`` holds checkpoints and logs.
    """

    experiment: str
    seed_file: str
    mode: str
    results_dir: Path
    runs_dir: Path
    data_root: str | None = None
    progress: bool | None = None
    gates: tuple[Gate, ...] = ()

    @property
    def device(self) -> str:
        """``"cuda"`` when a GPU is visible (the ``full`` protocols are meant for one), else ``"cpu"``."""
        return "cuda" if torch.cuda.is_available() else "cpu"

    @property
    def command(self) -> str:
        return f"mtlkit reproduce {self.experiment} --mode {self.mode}"

    @property
    def figures_dir(self) -> Path:
        path = self.results_dir / "figures"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def save_figure(self, fig: Figure, name: str, dpi: int = 110) -> str:
        """Save a matplotlib figure as ``figures/<name>.png``, close it, and return that path.

        The path is relative to the results folder, as results files list their figures.
        """
        import matplotlib.pyplot as plt  # noqa: PLC0415 - matplotlib is the optional [viz] extra

        fig.savefig(self.figures_dir / f"{name}.png", dpi=dpi)
        plt.close(fig)
        return f"figures/{name}.png"

    def run_dir(self, *parts: str) -> Path:
        """A checkpoint/log folder for one configuration, e.g. ``ctx.run_dir("lam0.5", "seed0")``."""
        path = self.runs_dir.joinpath(self.experiment, self.mode, *parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def results(
        self,
        deviations: Sequence[str] = (),
        seeds: Sequence[int] = (),
        name: str | None = None,
        precision: str = "fp32",
    ) -> ResultsFile:
        """The experiment's results file (continued if it already holds this mode's rows).

        The experiment's gates are evaluated into its ``checks`` on every save.
        """
        experiment = name or self.experiment.replace("-", "_")
        return ResultsFile(
            self.results_dir / f"{experiment}.json",
            experiment=experiment,
            seed_file=self.seed_file,
            command=self.command,
            mode=self.mode,
            deviations=deviations,
            seeds=seeds,
            gates=self.gates,
            precision=precision,
        )


@dataclass(frozen=True)
class Experiment:
    """A registered reproduction and the CPU settings it runs under (see :func:`cpu_settings`)."""

    name: str
    seed_file: str
    description: str
    run: Callable[[RunContext], object] = field(repr=False)
    source: str = ""
    threads: int | None = None
    flush_denormal: bool = False
    gates: tuple[Gate, ...] = ()


_REGISTRY: dict[str, Experiment] = {}


def register_experiment(
    name: str,
    *,
    seed_file: str,
    description: str,
    threads: int | None = None,
    flush_denormal: bool = False,
    gates: Sequence[Gate] = (),
) -> Callable[[Callable[[RunContext], object]], Callable[[RunContext], object]]:
    """Decorator that registers ``run(ctx)`` as the experiment ``name``.

    ``threads`` and ``flush_denormal`` are the process-wide CPU settings the run wants; the CLI
    applies them with :func:`cpu_settings` (``--threads`` overrides) and restores them afterwards.
    ``gates`` are the run's sanity gates (:class:`mtlkit.gates.Gate`): evaluated into the results
    file's ``checks``, they decide whether its rows are results or uninformative.
    """

    def decorate(run: Callable[[RunContext], object]) -> Callable[[RunContext], object]:
        existing = _REGISTRY.get(name)
        source = getattr(sys.modules.get(run.__module__), "__file__", "") or ""
        if existing is not None and existing.source != source:
            raise ValueError(f"experiment '{name}' is registered twice: {existing.source} and {source}")
        _REGISTRY[name] = Experiment(name, seed_file, description, run, source, threads, flush_denormal, tuple(gates))
        return run

    return decorate


def default_examples_dir() -> Path:
    """``$MTLKIT_EXAMPLES``, else the ``examples/`` folder of the source checkout."""
    env = os.environ.get("MTLKIT_EXAMPLES")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "examples"


def discover(examples_dir: str | os.PathLike[str] | None = None) -> dict[str, Experiment]:
    """Import every example that registers an experiment; returns the registry."""
    root = Path(examples_dir) if examples_dir is not None else default_examples_dir()
    if root.is_dir():
        for path in sorted(root.rglob("*.py")):
            if "register_experiment" not in path.read_text(encoding="utf-8"):
                continue
            module_name = "mtlkit_examples." + "_".join(path.relative_to(root).with_suffix("").parts)
            if module_name in sys.modules:
                continue
            spec = importlib.util.spec_from_file_location(module_name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            # Examples may import their sibling helper modules.
            sys.path.insert(0, str(path.parent))
            try:
                spec.loader.exec_module(module)
            finally:
                sys.path.remove(str(path.parent))
    return dict(sorted(_REGISTRY.items()))


def get_experiment(name: str, examples_dir: str | os.PathLike[str] | None = None) -> Experiment:
    registry = discover(examples_dir)
    if name not in registry:
        where = examples_dir or default_examples_dir()
        raise KeyError(f"no experiment named '{name}' in {where}; known: {', '.join(registry) or 'none'}")
    return registry[name]
