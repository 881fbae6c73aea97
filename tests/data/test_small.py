"""The Fashion-MNIST subset shipped inside the package."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from mtlkit.data import fashion_mnist_tasks, load

PACKAGE_DATA = Path(__file__).resolve().parents[2] / "mtlkit" / "data"
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_fashion_mnist_small.py"


def test_loads_without_any_data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MTLKIT_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    train, test = load("fashion_mnist_small", "train"), load("fashion_mnist_small", "test")
    assert train.images.shape == (2_000, 1, 28, 28) and train.images.dtype == torch.uint8
    assert train.labels["label"].bincount().tolist() == [200] * 10
    assert test.labels["label"].bincount().tolist() == [100] * 10
    x, _ = next(iter(train.batches(64, seed=0)))
    assert x.shape == (64, 1, 28, 28) and abs(float(x.mean())) < 0.5  # normalised
    assert fashion_mnist_tasks("train", small=True).tasks == ["item", "group"]


def test_is_small_and_licensed() -> None:
    assert (PACKAGE_DATA / "fashion_mnist_small.npz").stat().st_size < 2_000_000
    notice = (PACKAGE_DATA / "LICENSE-fashion-mnist.txt").read_text()
    assert "MIT" in notice and "Zalando SE" in notice


def test_groups_must_partition_items() -> None:
    with pytest.raises(ValueError, match="no group"):
        fashion_mnist_tasks("test", groups={"a": (0, 1)}, small=True)
    with pytest.raises(ValueError, match="two groups"):
        fashion_mnist_tasks("test", groups={"a": tuple(range(10)), "b": ("Bag",)}, small=True)


@pytest.mark.data
def test_regeneration_reproduces_the_shipped_arrays() -> None:
    spec = importlib.util.spec_from_file_location("make_small", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rebuilt = module.build_arrays()
    with np.load(PACKAGE_DATA / "fashion_mnist_small.npz", allow_pickle=False) as shipped:
        assert sorted(shipped.files) == sorted(rebuilt)
        for key, array in rebuilt.items():
            assert shipped[key].dtype == array.dtype
            np.testing.assert_array_equal(shipped[key], array, err_msg=key)
    # The subset really is the full data at the recorded rows.
    full = load("fashion_mnist", "test")
    np.testing.assert_array_equal(full.images[rebuilt["index_test"], 0].numpy(), rebuilt["x_test"])
