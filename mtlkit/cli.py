"""The ``mtlkit`` command: ``demo``, ``list``, ``reproduce``, ``status``, ``check``.

The benchmarks live in the source checkout, not in the package: run them with ``python -m benchmarks``
from the repository root.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from mtlkit._version import __version__
from mtlkit.campaign import Campaign, experiment_status, format_status
from mtlkit.experiments import (
    MODES,
    ExamplesNotFoundError,
    Experiment,
    RunContext,
    UnknownExperimentError,
    cpu_settings,
    discover,
    find_experiment,
)
from mtlkit.results import refresh_checks, results_path, unfinished


def _demo(args: argparse.Namespace) -> int:
    from mtlkit.demo import format_table, run_demo  # noqa: PLC0415 - the demo's imports load only for `mtlkit demo`

    rows = run_demo(epochs=args.epochs, seed=args.seed, progress=args.progress)
    print(format_table(rows))
    return 0


def _list(args: argparse.Namespace) -> int:
    registry = discover(args.examples)
    if not registry:
        print(f"no experiments in {args.examples or 'the examples folder'}; pass --examples DIR or set MTLKIT_EXAMPLES")
        return 1
    width = max(len(name) for name in registry)
    for name, exp in registry.items():
        print(f"{name:<{width}}  {exp.provenance:<26}  {exp.description}")
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    if not args.names and not args.all:
        print("name an experiment (see `mtlkit list`) or pass --all")
        return 2
    registry = discover(args.examples)
    names = list(registry) if args.all else args.names
    experiments = [find_experiment(name, registry, args.examples) for name in names]  # unknown names fail first
    if len(names) > 1 or args.jobs > 1 or args.all:
        return _campaign(args, names)
    return _reproduce_one(args, experiments[0])


def _campaign(args: argparse.Namespace, names: list[str]) -> int:
    extra = [*(["--data", args.data] if args.data else []), *(["--examples", args.examples] if args.examples else [])]
    campaign = Campaign(
        tuple(names),
        args.mode,
        jobs=args.jobs,
        threads=args.threads or 1,
        results_dir=Path(_results_dir(args)),
        runs_dir=Path(args.runs_dir),
        extra_args=tuple(extra),
        rerun=args.rerun,
    )
    codes = campaign.run(progress=args.progress)
    failed = [name for name, code in codes.items() if code != 0]
    print(
        f"campaign ({args.mode}): {len(codes) - len(failed)} of {len(codes)} experiments done"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


def _results_dir(args: argparse.Namespace) -> str:
    return args.results_dir or ("runs/results-quick" if args.mode == "quick" else "results")


def _reproduce_one(args: argparse.Namespace, experiment: Experiment) -> int:
    results_dir = _results_dir(args)
    ctx = RunContext(
        experiment=experiment.name,
        seed_file=experiment.seed_file,
        origin=experiment.origin,
        mode=args.mode,
        results_dir=Path(results_dir),
        runs_dir=Path(args.runs_dir),
        data_root=args.data or os.environ.get("MTLKIT_DATA"),
        progress=args.progress,
        gates=experiment.gates,
    )
    threads = args.threads if args.threads is not None else experiment.threads
    with cpu_settings(threads=threads, flush_denormal=experiment.flush_denormal):
        experiment.run(ctx)
    print(f"{experiment.name} ({args.mode}) done; results in {ctx.results_dir}")
    return 0


def _status(args: argparse.Namespace) -> int:
    registry = discover(args.examples)
    results_dir = Path(_results_dir(args))
    statuses = [experiment_status(name, args.mode, results_dir, Path(args.runs_dir)) for name in registry]
    print(format_status(statuses))
    return 0


def _check(args: argparse.Namespace) -> int:
    registry = discover(args.examples)
    names = args.names or list(registry)
    results_dir = Path(_results_dir(args))
    for name in names:
        experiment = find_experiment(name, registry, args.examples)
        path = results_path(results_dir, name)
        data = json.loads(path.read_text()) if path.is_file() else {}
        if data.get("mode") != args.mode:
            print(f"{name}: no {args.mode}-mode results file at {path}")
            continue
        if unfinished(data) and not args.force:
            print(f"{name}: {unfinished(data)} of {len(data['planned'])} planned configurations unfinished; its run "
                  "re-evaluates the gates on every save, so it is left alone (--force rewrites it anyway)")  # fmt: skip
            continue
        failed = refresh_checks(path, experiment.gates)
        verdict = "; ".join(f"{c['name']} FAILED ({c.get('note') or c['value']})" for c in failed) or "all pass"
        print(f"{name}: {len(experiment.gates)} gates, {verdict}" if experiment.gates else f"{name}: no gates declared")
    return 0


_EXAMPLES_HELP = "examples folder (default: $MTLKIT_EXAMPLES, else the source checkout's examples/)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mtlkit", description=__doc__)
    parser.add_argument("--version", action="version", version=f"mtlkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="hard-shared MTL vs single-task nets on the embedded Fashion-MNIST subset")
    demo.add_argument("--epochs", type=int, default=3)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    demo.set_defaults(func=_demo)

    lst = sub.add_parser("list", help="list the reproducible experiments")
    lst.add_argument("--examples", help=_EXAMPLES_HELP)
    lst.set_defaults(func=_list)

    rep = sub.add_parser(
        "reproduce", help="run experiments; several (or --all, or --jobs > 1) run as a resumable campaign"
    )
    rep.add_argument("names", nargs="*", metavar="NAME")
    rep.add_argument("--all", action="store_true", help="every registered experiment")
    rep.add_argument("--jobs", type=int, default=1, help="worker processes at once (campaign)")
    rep.add_argument("--rerun", action="store_true", help="campaign: start finished experiments again too")
    rep.add_argument("--mode", choices=MODES, default="quick")
    rep.add_argument("--results-dir", help="default: results/ (quick: runs/results-quick/)")
    rep.add_argument("--runs-dir", default="runs", help="checkpoints and logs")
    rep.add_argument("--data", help="data root (default: $MTLKIT_DATA)")
    rep.add_argument("--examples", help=_EXAMPLES_HELP)
    rep.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    rep.add_argument(
        "--threads", type=int, help="torch intra-op threads (default: what the experiment asks for, else torch's)"
    )
    rep.set_defaults(func=_reproduce)

    status = sub.add_parser("status", help="per experiment: configurations done, CPU time, ETA, gates")
    status.add_argument("--mode", choices=MODES, default="reduced")
    status.add_argument("--results-dir", help="default: results/ (quick: runs/results-quick/)")
    status.add_argument("--runs-dir", default="runs")
    status.add_argument("--examples", help=_EXAMPLES_HELP)
    status.set_defaults(func=_status)

    check = sub.add_parser(
        "check", help="re-evaluate the registered gates on finished results files (rewrites their checks; no training)"
    )
    check.add_argument("names", nargs="*", metavar="NAME", help="default: every registered experiment")
    check.add_argument("--mode", choices=MODES, default="reduced")
    check.add_argument("--results-dir", help="default: results/ (quick: runs/results-quick/)")
    check.add_argument("--examples", help=_EXAMPLES_HELP)
    check.add_argument(
        "--force", action="store_true", help="also rewrite files with unfinished configurations (no run writing them)"
    )
    check.set_defaults(func=_check)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; a missing examples folder or an unknown experiment is one line on stderr and exit code 2."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ExamplesNotFoundError, UnknownExperimentError) as error:
        print(f"mtlkit: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
