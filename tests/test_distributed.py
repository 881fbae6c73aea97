import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("ddp_worker.py")


def _torchrun(cmd: list[str], env: dict[str, str]) -> None:
    """Run a torchrun command; on failure, show the workers' own error instead of only the exit code."""
    done = subprocess.run(cmd, env=env, timeout=180, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"torchrun exited {done.returncode}:\n{done.stderr[-4000:]}"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[1]), env.get("PYTHONPATH", "")])
    return env


@pytest.mark.slow
def test_two_process_ddp_matches_single_process(tmp_path):
    single, double = tmp_path / "single.pt", tmp_path / "ddp.pt"
    subprocess.run([sys.executable, str(WORKER), str(single)], check=True, env=_env(), timeout=120)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--standalone",  # torchrun binds a free local port itself: no pick-then-release race
        str(WORKER),
        str(double),
    ]
    _torchrun(cmd, _env())
    a, b = torch.load(single, weights_only=True), torch.load(double, weights_only=True)
    for p, q in zip(a["params"], b["params"], strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert a["acc"] == pytest.approx(b["acc"])


@pytest.mark.slow
@pytest.mark.parametrize(
    "method", ["uw", "dwa", "rlw", "famo", "mgda", "mgda-rep", "pcgrad", "nash-k", "upgrad", "gradnorm", "dbmtl"]
)
def test_adaptive_weightings_under_ddp_match_single_process(method, tmp_path):
    single, double = tmp_path / "single.pt", tmp_path / "ddp.pt"
    subprocess.run([sys.executable, str(WORKER), str(single), "fp32", method], check=True, env=_env(), timeout=120)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone", str(WORKER),
           str(double), "fp32", method]  # fmt: skip
    _torchrun(cmd, _env())
    a, b = torch.load(single, weights_only=True), torch.load(double, weights_only=True)
    for p, q in zip(a["params"], b["params"], strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_a_weighting_that_declares_no_ddp_support_is_refused(monkeypatch):
    from helpers import LOSSES, toy_model

    from mtlkit import Trainer
    from mtlkit.balancing import EqualWeighting

    class SingleProcessOnly(EqualWeighting):
        supports_distributed = False

    monkeypatch.setenv("WORLD_SIZE", "2")
    model = toy_model()
    with pytest.raises(ValueError, match="DistributedDataParallel"):
        Trainer(model, torch.optim.SGD(model.parameters(), 0.1), LOSSES, weighting=SingleProcessOnly(tuple(LOSSES)))
