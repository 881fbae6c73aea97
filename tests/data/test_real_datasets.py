"""Every dataset under $MTLKIT_DATA: counts, shapes, label ranges, histograms, statistics.

Expected numbers are the ones documented in each dataset's SOURCE.md and
the published normalisation constants.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtlkit.data import load

pytestmark = pytest.mark.data


def _pixel_stats(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of [0, 1]-scaled pixels.

    Computed exactly from a 256-bin histogram per channel: no float copy of
    the images, and no accumulation drift over 10^8 values.
    """
    values = torch.arange(256, dtype=torch.float64) / 255
    means, stds = [], []
    for c in range(images.shape[1]):
        hist = torch.bincount(images[:, c].flatten(), minlength=256).to(torch.float64)
        p = hist / hist.sum()
        mean = (p * values).sum()
        means.append(mean)
        stds.append(((p * (values - mean) ** 2).sum()).sqrt())
    return torch.stack(means), torch.stack(stds)


MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.parametrize(
    ("name", "mean", "std", "train_counts", "test_counts"),
    [
        ("mnist", 0.1307, 0.3081, MNIST_TRAIN_COUNTS, MNIST_TEST_COUNTS),
        ("fashion_mnist", 0.2860, 0.3530, [6000] * 10, [1000] * 10),
    ],
)
def test_mnist_like(name, mean, std, train_counts, test_counts) -> None:
    for split, counts in (("train", train_counts), ("test", test_counts)):
        ds = load(name, split)
        assert ds.images.shape == (sum(counts), 1, 28, 28) and ds.images.dtype == torch.uint8
        assert ds.labels["label"].dtype == torch.int64
        assert ds.labels["label"].bincount().tolist() == counts
        assert len(ds.classes["label"]) == 10
    m, s = _pixel_stats(load(name, "train").images)
    assert m.item() == pytest.approx(mean, abs=5e-5) and s.item() == pytest.approx(std, abs=5e-5)
    assert load(name).mean == (mean,) and load(name).std == (std,)


def test_notmnist() -> None:
    ds = load("notmnist", "all")
    assert ds.images.shape == (18_724, 1, 28, 28)
    assert ds.labels["label"].bincount().tolist() == [1872] + [1873] * 4 + [1872] * 5
    assert ds.classes["label"] == list("ABCDEFGHIJ")
    white = (ds.images == 255).flatten(1).all(1)
    assert int(white.sum()) == 254 and set(ds.labels["label"][white].tolist()) == {8}  # all "I"
    assert len(ds.info["fonts"]) == 1873 and int(ds.meta["font"].max()) == 1872
    train, test = load("notmnist", "train"), load("notmnist", "test")
    assert len(train) + len(test) == len(ds)


def test_omniglot() -> None:
    for split, n, alphabets, characters in (
        ("background", 19_280, 30, 964),
        ("evaluation", 13_180, 20, 659),
    ):
        ds = load("omniglot", split)
        assert ds.images.shape == (n, 1, 105, 105)
        assert len(ds.classes["alphabet"]) == alphabets
        assert ds.labels["character"].bincount().tolist() == [20] * characters
        assert ds.meta["drawer"].bincount().tolist() == [n // 20] * 20
    assert ds.classes["alphabet"][0] == "Angelic"
    # Stored polarity: 0 = ink on a 255 background, nothing else.
    hist = torch.bincount(ds.images.flatten(), minlength=256)
    assert int(hist[0] + hist[255]) == ds.images.numel()
    assert hist[255] > 0.8 * ds.images.numel()
    both = load("omniglot", "all")
    assert len(both) == 32_460 and int(both.labels["character"].max()) == 1622
    assert both.classes["alphabet"][30] == "Angelic"


@pytest.mark.slow
def test_utkface() -> None:
    ds = load("utkface", "all")
    assert ds.images.shape == (23_708, 3, 64, 64) and ds.images.dtype == torch.uint8
    assert ds.labels["gender"].bincount().tolist() == [12_391, 11_317]
    race = ds.labels["race"]
    assert int((race == -100).sum()) == 3
    assert race[race >= 0].bincount().tolist() == [10_078, 4_526, 3_434, 3_975, 1_692]
    assert ds.meta["fold"].bincount().tolist() == [4684, 4659, 4772, 4718, 4875]
    age = ds.labels["age"]
    assert (int(age.min()), int(np.median(age.numpy())), int(age.max())) == (1, 29, 116)
    assert len(load("utkface", "test")) == 4684
    # Faces, not noise: decoded JPEGs have mid-range means and real variation.
    m, s = _pixel_stats(ds.images[::50])
    assert ((m > 0.3) & (m < 0.7)).all() and (s > 0.15).all()


@pytest.mark.slow
def test_cifar100() -> None:
    train, test = load("cifar100", "train"), load("cifar100", "test")
    assert train.images.shape == (50_000, 3, 32, 32) and test.images.shape == (10_000, 3, 32, 32)
    assert train.labels["fine"].bincount().tolist() == [500] * 100
    assert train.labels["coarse"].bincount().tolist() == [2_500] * 20
    assert test.labels["fine"].bincount().tolist() == [100] * 100
    assert train.classes["fine"][0] == "apple" and train.classes["coarse"][19] == "vehicles_2"
    m, s = _pixel_stats(train.images)
    torch.testing.assert_close(m, torch.tensor([0.5071, 0.4865, 0.4409], dtype=torch.float64), atol=5e-5, rtol=0)
    torch.testing.assert_close(s, torch.tensor([0.2673, 0.2564, 0.2762], dtype=torch.float64), atol=5e-5, rtol=0)
    # Each fine class has exactly one superclass, five fine classes per superclass.
    pairs = torch.unique(train.labels["fine"] * 100 + train.labels["coarse"])
    assert len(pairs) == 100 and (pairs % 100).bincount().tolist() == [5] * 20
