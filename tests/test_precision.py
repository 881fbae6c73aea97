"""bf16 training: autocast forward, fp32 master weights, bitwise resume, NaN stop, fallback, DDP."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import LOSSES, ShuffledBatches, toy_model, toy_problem

from mtlkit import Trainer, experiments, load_checkpoint
from mtlkit import precision as precision_module
from mtlkit.precision import bf16_supported

needs_bf16 = pytest.mark.skipif(not bf16_supported(torch.device("cpu")), reason="this CPU has no native bf16")
WORKER = Path(__file__).with_name("ddp_worker.py")


def _trainer(model, tmp_path, **kw):
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return Trainer(model, opt, LOSSES, progress=False, checkpoint_dir=tmp_path / "ckpt", precision="bf16", **kw)


@needs_bf16
def test_bf16_runs_the_forward_in_bf16_and_keeps_fp32_master_weights(tmp_path):
    x, y = toy_problem()
    model = toy_model()
    seen = []
    model.heads["a"].register_forward_hook(lambda module, inputs, out: seen.append(out.dtype))
    trainer = _trainer(model, tmp_path, seed=0)
    history = trainer.fit(ShuffledBatches(x, y, 16), epochs=3)
    assert trainer.precision == "bf16" and set(seen) == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(t.dtype == torch.float32 for t in load_checkpoint(tmp_path / "ckpt" / "last.pt")["model"].values())
    assert history[-1]["train/a/loss"] < history[0]["train/a/loss"]


@needs_bf16
def test_bf16_learns_what_fp32_learns():
    x, y = toy_problem()
    accuracy = {}
    for precision in ("fp32", "bf16"):
        model = toy_model(seed=3)
        trainer = Trainer(
            model, torch.optim.SGD(model.parameters(), lr=0.1), LOSSES, progress=False, seed=1, precision=precision
        )
        trainer.fit(ShuffledBatches(x, y, 16), epochs=8)
        accuracy[precision] = trainer.evaluate(ShuffledBatches(x, y, 64))["b/acc"]
    assert accuracy["bf16"] > 0.8 and abs(accuracy["bf16"] - accuracy["fp32"]) < 0.1


@needs_bf16
def test_bf16_kill_and_resume_equals_uninterrupted_bitwise(tmp_path):
    x, y = toy_problem()
    full = toy_model(dropout=0.3)
    _trainer(full, tmp_path / "full", seed=5).fit(ShuffledBatches(x, y, 16), epochs=4)
    _trainer(toy_model(dropout=0.3), tmp_path / "cut", seed=5).fit(ShuffledBatches(x, y, 16), epochs=2)
    torch.manual_seed(12345)
    resumed = toy_model(seed=99, dropout=0.3)
    history = _trainer(resumed, tmp_path / "cut", seed=5).fit(ShuffledBatches(x, y, 16, seed=42), epochs=4)
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    for p, q in zip(full.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q)


@needs_bf16
def test_a_checkpoint_resumes_only_at_its_precision(tmp_path):
    x, y = toy_problem()
    _trainer(toy_model(), tmp_path).fit(ShuffledBatches(x, y, 32), epochs=1)
    model = toy_model()
    fp32 = Trainer(
        model, torch.optim.SGD(model.parameters(), lr=0.1), LOSSES, progress=False, checkpoint_dir=tmp_path / "ckpt"
    )
    with pytest.raises(ValueError, match=r"precision='bf16'.*precision='fp32'"):
        fp32.fit(ShuffledBatches(x, y, 32), epochs=2)


def test_without_native_bf16_it_falls_back_to_fp32_with_a_warning(monkeypatch):
    monkeypatch.setattr(precision_module, "bf16_supported", lambda device: False)
    model = toy_model()
    with pytest.warns(RuntimeWarning, match="no native bf16"):
        trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), LOSSES, precision="bf16")
    assert trainer.precision == "fp32"


def test_unknown_precision_is_named():
    model = toy_model()
    with pytest.raises(ValueError, match=r"precision must be one of .* got 'fp16'"):
        Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), LOSSES, precision="fp16")


@needs_bf16
@pytest.mark.slow
def test_two_process_ddp_in_bf16_matches_single_process(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[1]), env.get("PYTHONPATH", "")])
    single, double = tmp_path / "single.pt", tmp_path / "ddp.pt"
    subprocess.run([sys.executable, str(WORKER), str(single), "bf16"], check=True, env=env, timeout=120)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--standalone",
        str(WORKER),
        str(double),
        "bf16",
    ]
    subprocess.run(cmd, check=True, env=env, timeout=180, capture_output=True)
    a, b = torch.load(single, weights_only=True), torch.load(double, weights_only=True)
    # Half-batches change bf16 rounding of the activations, so the runs agree to bf16 precision only.
    for p, q in zip(a["params"], b["params"], strict=True):
        torch.testing.assert_close(p, q, rtol=2e-2, atol=2e-2)
    assert a["acc"] == pytest.approx(b["acc"], abs=0.05)


def test_a_bf16_protocol_refuses_a_device_without_native_bf16(tmp_path, monkeypatch):
    # The Trainer falls back to fp32 there; a results file that says bf16 must not get fp32 rows.
    ctx = experiments.RunContext("pooled-mnist", "000_seed.txt", "reduced", tmp_path / "results", tmp_path / "runs")
    monkeypatch.setattr(experiments, "bf16_supported", lambda device: False)
    with pytest.raises(RuntimeError, match=r"pooled-mnist \(reduced\): its protocol trains in bf16 and this cpu"):
        ctx.results(precision="bf16")
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").iterdir())
    assert ctx.results(precision="fp32").data["precision"] == "fp32"
    monkeypatch.setattr(experiments, "bf16_supported", lambda device: True)
    assert ctx.results(name="other", precision="bf16").data["precision"] == "bf16"
