"""The registry of reproducible experiments behind ``mtlkit list`` / ``mtlkit reproduce``.

Each example script registers itself::

    @register_experiment("coursework-task6", seed_file="004_63daf360e7c99336.txt",
                         description="Fashion-MNIST item + group MTL, λ sweep")
    def run(ctx: RunContext) -> None:
        results = ctx.results(deviations=[...], seeds=[0, 1, 2])
        ...

and :func:`discover` loads every ``*.py`` under the examples folder that calls
:func:`register_experiment`, so adding a reproduction never touches a hand-kept list. An experiment
that reproduces no seed document (a benchmark an issue asked for) registers ``origin="issue 18"``
instead of a ``seed_file``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from mtlkit._example_loader import ExampleFolder
from mtlkit.gates import Gate
from mtlkit.precision import bf16_supported
from mtlkit.results import ResultsFile, _origin_problem, results_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MODES = ("quick", "reduced", "full")

__all__ = [
    "MODES",
    "ExamplesNotFoundError",
    "Experiment",
    "RunContext",
    "UnknownExperimentError",
    "cpu_settings",
    "discover",
    "find_experiment",
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
    seed_file: str | None
    mode: str
    results_dir: Path
    runs_dir: Path
    data_root: str | None = None
    progress: bool | None = None
    gates: tuple[Gate, ...] = ()
    origin: str | None = None

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

        The experiment's gates are evaluated into its ``checks`` on every save. A ``"bf16"``
        protocol refuses to run on a device without native bf16: the Trainer would fall back to
        fp32 there, and a campaign that spans machines would write fp32 rows into a file that says
        bf16.
        """
        if precision == "bf16" and not bf16_supported(torch.device(self.device)):
            raise RuntimeError(
                f"{self.experiment} ({self.mode}): its protocol trains in bf16 and this {self.device} has no "
                "native bf16 (AVX-512 BF16 / AMX on CPU): run it on a machine that has, or give the mode an "
                "fp32 protocol"
            )
        experiment = name or self.experiment.replace("-", "_")
        return ResultsFile(
            results_path(self.results_dir, experiment),
            experiment=experiment,
            seed_file=self.seed_file,
            origin=self.origin,
            command=self.command,
            mode=self.mode,
            deviations=deviations,
            seeds=seeds,
            gates=self.gates,
            precision=precision,
        )


@dataclass(frozen=True)
class Experiment:
    """A registered reproduction and the CPU settings it runs under (see :func:`cpu_settings`).

    Calling it calls ``run``, so a decorated function keeps working as one. ``seed_file`` is the seed
    document it reproduces, or None with ``origin`` saying where it comes from instead.
    """

    name: str
    seed_file: str | None
    description: str
    run: Callable[[RunContext], object] = field(repr=False)
    source: str = ""
    threads: int | None = None
    flush_denormal: bool = False
    gates: tuple[Gate, ...] = ()
    origin: str | None = None

    @property
    def provenance(self) -> str:
        """The seed document, or the origin of an experiment that reproduces none."""
        return self.seed_file if self.seed_file is not None else str(self.origin)

    def __call__(self, ctx: RunContext) -> object:
        return self.run(ctx)


def register_experiment(
    name: str,
    *,
    seed_file: str | None = None,
    origin: str | None = None,
    description: str,
    threads: int | None = None,
    flush_denormal: bool = False,
    gates: Sequence[Gate] = (),
) -> Callable[[Callable[[RunContext], object]], Experiment]:
    """Decorator that turns ``run(ctx)`` into the :class:`Experiment` ``name``, found by :func:`discover`.

    ``seed_file`` is the seed document the experiment reproduces; an experiment that reproduces none
    gives ``origin`` instead (e.g. ``"issue 18"``): exactly one of the two.
    ``threads`` and ``flush_denormal`` are the process-wide CPU settings the run wants; the CLI
    applies them with :func:`cpu_settings` (``--threads`` overrides) and restores them afterwards.
    ``gates`` are the run's sanity gates (:class:`mtlkit.gates.Gate`): evaluated into the results
    file's ``checks``, they decide whether its rows are results or uninformative.

    There is no global registry: the decorated name is an :class:`Experiment` in its module, and
    :func:`discover` collects the ones of the modules it loads.

    Example:
        >>> @register_experiment("toy", seed_file="000_x.txt", description="a toy")
        ... def run(ctx: RunContext) -> None:
        ...     pass
        >>> run.name, run.seed_file
        ('toy', '000_x.txt')
        >>> @register_experiment("bench", origin="issue 18", description="a benchmark")
        ... def bench(ctx: RunContext) -> None:
        ...     pass
        >>> bench.seed_file, bench.provenance
        (None, 'issue 18')
    """
    if not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    problem = _origin_problem(seed_file, origin)
    if problem:
        raise ValueError(f"experiment {name!r}: {problem}")

    def decorate(run: Callable[[RunContext], object]) -> Experiment:
        return Experiment(name, seed_file, description, run, "", threads, flush_denormal, tuple(gates), origin)

    return decorate


class ExamplesNotFoundError(ValueError):
    """No examples folder was given and none was found; the message says what to pass."""


def default_examples_dir() -> Path:
    """``$MTLKIT_EXAMPLES``, else the ``examples/`` folder of the source checkout mtlkit runs from.

    An installed wheel has no checkout around it: then :class:`ExamplesNotFoundError` says to pass
    ``--examples DIR`` or set ``MTLKIT_EXAMPLES``.
    """
    env = os.environ.get("MTLKIT_EXAMPLES")
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parents[1]
    # The pyproject.toml check keeps an unrelated site-packages/examples folder from being taken for ours.
    if (checkout / "pyproject.toml").is_file() and (checkout / "examples").is_dir():
        return checkout / "examples"
    raise ExamplesNotFoundError(
        "no examples folder: pass --examples DIR (the repository's examples/) or set MTLKIT_EXAMPLES"
    )


def discover(examples_dir: str | os.PathLike[str] | None = None) -> dict[str, Experiment]:
    """Load every example that registers an experiment; the experiments by name.

    Each folder under ``examples_dir`` is loaded by a fresh :class:`~mtlkit._example_loader.ExampleFolder`:
    scripts import their siblings by bare name, and neither ``sys.path`` nor ``sys.modules`` keeps
    anything afterwards. Only files that mention ``register_experiment`` are executed.
    """
    root = Path(examples_dir) if examples_dir is not None else default_examples_dir()
    if not root.is_dir():
        raise ExamplesNotFoundError(f"examples folder {str(root)!r} is not a folder")
    found: dict[str, Experiment] = {}
    folders: dict[Path, ExampleFolder] = {}
    for path in sorted(root.rglob("*.py")):
        if "register_experiment" not in path.read_text(encoding="utf-8"):
            continue
        if path.parent not in folders:
            folders[path.parent] = ExampleFolder(path.parent)
        folder = folders[path.parent]
        module = folder.load(path.stem)
        for value in vars(module).values():
            # An experiment imported from a sibling is the same object; the module that
            # defines it is the one whose name the run function carries.
            if not isinstance(value, Experiment) or getattr(value.run, "__module__", None) != module.__name__:
                continue
            if value.name in found:
                first = found[value.name].source
                raise ValueError(f"experiment '{value.name}' is registered twice: {first} and {path}")
            found[value.name] = replace(value, source=str(path))
    return dict(sorted(found.items()))


class UnknownExperimentError(KeyError):
    """``get_experiment`` of a name that no example registers."""

    def __str__(self) -> str:
        return str(self.args[0])


def get_experiment(name: str, examples_dir: str | os.PathLike[str] | None = None) -> Experiment:
    """The experiment ``name`` of :func:`discover` (:class:`UnknownExperimentError` names the known ones)."""
    return find_experiment(name, discover(examples_dir), examples_dir)


def find_experiment(
    name: str, registry: Mapping[str, Experiment], examples_dir: str | os.PathLike[str] | None = None
) -> Experiment:
    """``registry[name]``, or :class:`UnknownExperimentError` listing what ``registry`` knows."""
    if name not in registry:
        where = examples_dir or default_examples_dir()
        raise UnknownExperimentError(f"no experiment named '{name}' in {where}; known: {', '.join(registry) or 'none'}")
    return registry[name]
