"""``python -m benchmarks [--quick]``: run every ``benchmarks/bench_*.py`` and write ``results/benchmarks.json``."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path

import torch

from mtlkit.results import hardware_description


def machine_info(device: torch.device) -> dict[str, object]:
    return {
        "hardware": hardware_description(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else str(device),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        # The machine is shared: the load average says how much the timings may be disturbed.
        "load_average_1_5_15min": os.getloadavg(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats (CI smoke)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for every benchmark (default 1)")
    parser.add_argument("--only", help="run only benchmark modules whose name contains this")
    parser.add_argument(
        "--device",
        default="cpu",
        help="torch device (e.g. cuda) for the modules that support one (RUNS_ON_ACCELERATORS); others are skipped",
    )
    parser.add_argument(
        "--out",
        default=None,
        help="default: results/benchmarks.json, results/benchmarks-<device>.json off the CPU "
        "(quick: runs/benchmarks-quick*.json)",
    )
    args = parser.parse_args(argv)
    device = _available_device(parser, args.device)
    torch.set_num_threads(args.threads)
    here = Path(__file__).parent
    entries: list[dict[str, object]] = []
    for path in sorted(here.glob("bench_*.py")):
        if args.only and args.only not in path.stem:
            continue
        module = importlib.import_module(f"benchmarks.{path.stem}")
        on_device = {}
        if device.type != "cpu":
            if not getattr(module, "RUNS_ON_ACCELERATORS", False):
                print(f"skipped {path.stem}: CPU only", flush=True)
                continue
            on_device = {"device": device}
        load = round(os.getloadavg()[0], 2)  # per module: with --only, entries come from different runs
        for measured in module.run(quick=args.quick, **on_device):
            entry = {"module": path.stem, **measured, "load_average_1min_at_start": load}
            entries.append(entry)
            ratio = entry.get("ratio")
            shown = f"{ratio:8.3f}" if isinstance(ratio, float) else f"{'-':>8}"
            print(f"{shown}  {entry['name']}  (target {entry.get('target', '-')})", flush=True)
    suffix = "" if device.type == "cpu" else f"-{device.type}"
    default_out = f"runs/benchmarks-quick{suffix}.json" if args.quick else f"results/benchmarks{suffix}.json"
    out = Path(args.out or default_out)
    if args.only and out.is_file():  # re-running some modules keeps the other modules' entries
        ran = {entry["module"] for entry in entries}
        kept = [e for e in json.loads(out.read_text())["entries"] if e["module"] not in ran]
        entries = sorted(kept + entries, key=lambda e: str(e["module"]))  # stable: module order, as a full run
    out.parent.mkdir(parents=True, exist_ok=True)
    results = {"quick": args.quick, "machine": machine_info(device), "entries": entries}
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


def _available_device(parser: argparse.ArgumentParser, name: str) -> torch.device:
    try:
        device = torch.device(name)
    except RuntimeError as error:
        parser.error(f"--device {name!r}: {error}")
    if device.type != "cpu":
        accelerator = torch.accelerator.current_accelerator() if torch.accelerator.is_available() else None
        if accelerator is None or accelerator.type != device.type:
            parser.error(f"--device {name!r}: not available here (torch's accelerator: {accelerator or 'none'})")
    return device


if __name__ == "__main__":
    raise SystemExit(main())
