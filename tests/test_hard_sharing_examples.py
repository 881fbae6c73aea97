"""The hard-sharing reproductions: seed 000 (pooled MNIST-likes) and seed 003 (CIFAR-100 fine/coarse)."""

import importlib
import sys
from pathlib import Path

import pytest
import torch
from helpers import reproduce_quick
from torch.nn import functional as F

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def cifar_example():
    folder = str(EXAMPLES / "cifar100_coarse_fine")
    sys.path.insert(0, folder)
    try:
        yield importlib.import_module("coarse_fine_architectures"), importlib.import_module("cifar100_coarse_fine")
    finally:
        sys.path.remove(folder)


def test_six_architectures_have_matched_parameter_counts(cifar_example):
    arch, example = cifar_example
    for mode, budget in example.BUDGETS.items():
        counts = {name: arch.parameter_count(arch.build(name, budget.widths)) for name in arch.ARCHITECTURES}
        assert len(counts) == 6
        assert max(counts.values()) <= 1.10 * min(counts.values()), (mode, counts)


def test_architectures_share_exactly_what_they_claim(cifar_example):
    arch, example = cifar_example
    widths = example.REDUCED_WIDTHS
    for name in arch.ARCHITECTURES:
        model = arch.build(name, widths)
        assert model.shared_trunk == name.startswith("Shared Conv"), name
        sources = {t: getattr(h, "source_task", None) for t, h in model.heads.items()}
        expected = {"Coarse": {"fine": "coarse", "coarse": None}, "Fine": {"fine": None, "coarse": "fine"}}
        assert sources == expected.get(name.rsplit(" ", 1)[-1], {"fine": None, "coarse": None}), name
        out = model(torch.randn(2, 3, 32, 32))
        assert out["fine"].shape == (2, 100) and out["coarse"].shape == (2, 20)


REUSE = ["Reuse Coarse", "Reuse Fine", "Shared Conv & Reuse Coarse", "Shared Conv & Reuse Fine"]


@pytest.mark.parametrize("name", REUSE)
@pytest.mark.parametrize("detach", [False, True])
def test_reuse_heads_get_the_other_prediction_with_the_configured_gradient(cifar_example, name, detach):
    arch, example = cifar_example
    torch.manual_seed(0)
    model = arch.build(name, example.REDUCED_WIDTHS, detach=detach)
    consumer = "fine" if name.endswith("Coarse") else "coarse"
    source = "coarse" if consumer == "fine" else "fine"
    seen = {}
    model.heads[consumer].register_forward_hook(lambda m, i, o: seen.update(src=i[1]))
    x = torch.randn(3, 3, 32, 32)
    out = model(x)
    torch.testing.assert_close(seen["src"], out[source])
    F.cross_entropy(out[consumer], torch.zeros(3, dtype=torch.long)).backward()
    # The source task's own output layer is touched by the consumer's loss only through the reuse path.
    source_head = model.heads[source]
    grad = [p for n, p in source_head.named_parameters() if n.endswith("weight")][-1].grad
    if detach:
        assert grad is None or grad.abs().sum() == 0
    else:
        assert grad is not None and grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("name", "n_rows"),
    [("pooled-mnist", 3 + 4 * 1 + 2 + 2 + 2 + 3), ("cifar100-coarse-fine", 24)],
)
def test_quick_mode_writes_every_row(data_root, tmp_path, name, n_rows):
    data = reproduce_quick(name, tmp_path, data_root)
    assert data["mode"] == "quick" and data["deviations"] and data["conclusions"]
    assert len(data["rows"]) == n_rows
    assert all(0 <= r["ours"] <= 100 for r in data["rows"] if r["metric"].startswith(("test_acc", "val_acc")))
    if name == "pooled-mnist":
        table = {(r["setting"], r["metric"]) for r in data["rows"]}
        assert ("F+N+M", "test_acc_notmnist") in table and ("single-task", "test_acc_mnist") in table
        assert all((tmp_path / f).is_file() for f in data["figures"])  # relative to the results folder
    else:
        assert len(data["parameter_counts"]) == 6
