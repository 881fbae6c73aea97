"""The campaign runner: worker processes, skip finished work, survive SIGKILL, status."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mtlkit.campaign import Campaign, experiment_status
from mtlkit.results import ResultsFile

ROOT = Path(__file__).resolve().parents[1]
# Three quick experiments that are deterministic on CPU and need only MNIST.
EXPERIMENTS = ["coursework-task5", "evolving-weights-table1b", "dmtrl-shallow"]
needs_data = pytest.mark.skipif(not os.environ.get("MTLKIT_DATA"), reason="needs MTLKIT_DATA")


def _command(tmp: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mtlkit.cli",
        "reproduce",
        *EXPERIMENTS,
        "--mode",
        "quick",
        "--jobs",
        "2",
        "--results-dir",
        str(tmp / "results"),
        "--runs-dir",
        str(tmp / "runs"),
        "--no-progress",
    ]


def _stable(value):
    """A results file without what differs between two identical runs (times, CPU seconds)."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if "time" not in k and "cpu_s" not in k}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def _results(folder: Path) -> dict:
    return {p.name: _stable(json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))}


@needs_data
@pytest.mark.slow
def test_a_campaign_killed_mid_way_and_restarted_gives_the_uninterrupted_results(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(_command(tmp_path / "whole"), check=True, env=env, cwd=ROOT, timeout=300, capture_output=True)

    cut = tmp_path / "cut"
    runner = subprocess.Popen(
        _command(cut), env=env, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    markers = cut / "runs" / "campaign" / "quick"
    deadline = time.monotonic() + 240
    while not list(markers.glob("*.done")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(runner.pid, signal.SIGKILL)  # the runner and its workers die at once, as in a lost session
    runner.wait()
    finished_before = {p.stem for p in markers.glob("*.done")}
    assert finished_before and finished_before != set(EXPERIMENTS), "the kill must land mid-campaign"

    again = subprocess.run(_command(cut), check=True, env=env, cwd=ROOT, timeout=300, capture_output=True, text=True)
    started_again = {line.split()[1] for line in again.stdout.splitlines() if line.startswith("started")}
    assert started_again == set(EXPERIMENTS) - finished_before
    assert _results(cut / "results") == _results(tmp_path / "whole" / "results")


def test_campaign_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="jobs must be >= 1, got 0"):
        Campaign(("a",), "quick", jobs=0)
    with pytest.raises(ValueError, match="at least one experiment"):
        Campaign((), "quick")


def test_status_reads_progress_and_gates_from_the_results_file(tmp_path):
    from mtlkit.gates import Gate

    results = ResultsFile(
        tmp_path / "toy_exp.json",
        experiment="toy_exp",
        seed_file="s",
        command="c",
        mode="reduced",
        gates=[Gate("trains", key="ours", below=50.0)],
    )
    results.plan(["a", "b", "c", "d"])
    # No rows yet (a protocol just started): its gates have nothing to judge, and none is shown as failed.
    assert experiment_status("toy-exp", "reduced", tmp_path, tmp_path / "runs").gates == ()
    results.record_done("a", 100.0)
    results.record_done("b", 300.0)
    results.add_row("a", "err", 10.0)
    status = experiment_status("toy-exp", "reduced", tmp_path, tmp_path / "runs")
    assert (status.done, status.total, status.cpu_s, status.eta_s) == (2, 4, 400.0, 400.0)
    assert status.gates == (("trains", True),) and not status.finished
    results.gates = (Gate("each trains", key="ours", below=5.0, per_row=True),)
    results.add_row("b", "err", 1.0)
    assert experiment_status("toy-exp", "reduced", tmp_path, tmp_path / "runs").gates == (
        ("each trains (fails on 1 of 2 rows)", False),
    )
    assert experiment_status("toy-exp", "full", tmp_path, tmp_path / "runs").mode == "reduced"
    assert ResultsFile(
        tmp_path / "toy_exp.json", experiment="toy_exp", seed_file="s", command="c", mode="reduced"
    ).is_done("b")


@needs_data
def test_mtlkit_status_prints_every_experiment(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "mtlkit.cli", "status", "--results-dir", str(ROOT / "results")],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.stdout.splitlines()[0].split() == ["experiment", "done", "cpu", "eta", "gates"]
    lines = {line.split()[0]: line for line in out.stdout.splitlines()[1:]}
    assert {"dmtrl-mnist", "multi-mnist", "toy-2d"} <= set(lines)
    # Each gate is shown with its mark; the committed files change as runs land, so only the form is
    # checked here (the marks: test_status_reads_progress_and_gates_from_the_results_file).
    assert "DMTRL shares (parameters) " in lines["dmtrl-mnist"] and lines["dmtrl-mnist"].rstrip()[-1] in "✓✗"
