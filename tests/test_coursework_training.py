"""The coursework's epoch loop: curves per epoch, resumption, and the validation stopping rule."""

import sys
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from mtlkit import SingleTaskModels, Trainer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "coursework"))
import cw_training


@pytest.mark.parametrize(
    ("values", "min_epochs", "patience", "expected"),
    [
        ((0.9, 0.95, 0.94, 0.95), 3, 2, True),  # best at epoch 2, two epochs without a new best
        ((0.9, 0.95, 0.96), 3, 2, False),  # still improving
        ((0.9, 0.8, 0.7), 4, 1, False),  # fewer than min_epochs done
        ((0.9, 0.8, 0.7), 0, None, False),  # no patience: never stops early
    ],
)
def test_stopped(values, min_epochs, patience, expected):
    curves = [{"val/acc": v} for v in values]
    assert cw_training.stopped(curves, min_epochs, patience, "val/acc") is expected


def _trainer(run_dir: Path, lr: float = 0.0, seed: int = 0) -> Trainer:
    torch.manual_seed(seed)
    model = SingleTaskModels({"digit": torch.nn.Linear(4, 3)})
    return Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=lr),
        {"digit": F.cross_entropy},
        checkpoint_dir=run_dir,
        progress=False,
    )


def test_fit_with_curves_stops_on_a_flat_validation_curve_and_reads_back(tmp_path):
    data = [(torch.randn(6, 4), {"digit": torch.arange(6) % 3})]
    # lr 0: validation accuracy never improves after epoch 1, so patience 2 stops after epoch 3.
    curves = cw_training.fit_with_curves(_trainer(tmp_path), data, 10, {"val": data}, min_epochs=2, patience=2)
    assert [r["epoch"] for r in curves] == [1.0, 2.0, 3.0]
    assert all(r["train_loss/digit"] > 0 and "val_eval_time_s" in r for r in curves)
    # A second call on the same folder trains nothing and returns the same records.
    again = cw_training.fit_with_curves(_trainer(tmp_path), data, 10, {"val": data}, min_epochs=2, patience=2)
    assert again == curves


def test_reading_curves_back_restores_the_trained_model(tmp_path):
    """A run killed after training but before its caller finished must not hand back a fresh model."""
    data = [(torch.randn(6, 4), {"digit": torch.arange(6) % 3})]

    trained = _trainer(tmp_path, lr=0.5, seed=0)
    cw_training.fit_with_curves(trained, data, 3, {"val": data})
    restarted = _trainer(tmp_path, lr=0.5, seed=1)  # another initialisation, as in a new process
    cw_training.fit_with_curves(restarted, data, 3, {"val": data})
    for p, q in zip(trained.model.parameters(), restarted.model.parameters(), strict=True):
        assert torch.equal(p, q)


def test_fit_with_curves_rejects_bad_patience(tmp_path):
    with pytest.raises(ValueError, match="patience"):
        cw_training.fit_with_curves(_trainer(tmp_path), [], 1, {}, patience=0)
