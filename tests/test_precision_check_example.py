"""The bf16-vs-fp32 check (examples/precision_check): rows, gates, and a restart that retrains only what it must."""

import json
import math

import pytest
import torch
from helpers import reproduce_quick

from mtlkit.precision import bf16_supported
from mtlkit.results import validate

pytestmark = pytest.mark.skipif(not bf16_supported(torch.device("cpu")), reason="this CPU has no native bf16")


def test_quick_mode_reads_convergence_on_the_uniform_scale_and_retrains_records_without_a_curve(tmp_path):
    data = reproduce_quick("precision-check", tmp_path)
    assert validate(data) == [] and sorted(data["per_run"]) == sorted(data["planned"])
    uniform = 0.5 * math.log(10) + 0.5 * math.log(3)
    for record in data["per_run"].values():
        curve = record["train_loss"]
        back = max(1, math.ceil(0.1 * len(curve)))
        assert record["train_loss_change_last10pct"] == pytest.approx(
            abs(curve[-1 - back] - curve[-1]) / uniform, rel=1e-3
        )
    # A record from before the curves were kept is trained again; the others are kept as they are.
    path = tmp_path / "precision_check.json"
    stale = json.loads(path.read_text())
    del stale["per_run"]["bf16 seed1"]["train_loss"]
    stale["per_run"]["fp32 seed0"]["cpu_s"] = -1.0  # a marker: kept records are not re-measured
    path.write_text(json.dumps(stale))
    again = reproduce_quick("precision-check", tmp_path)
    assert "train_loss" in again["per_run"]["bf16 seed1"]
    assert again["per_run"]["bf16 seed1"]["item"] == data["per_run"]["bf16 seed1"]["item"]
    assert again["per_run"]["fp32 seed0"]["cpu_s"] == -1.0
