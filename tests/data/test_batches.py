"""InMemoryBatches and ImageDataset: batching, shuffling, resume, transforms."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from mtlkit.data import IGNORE_INDEX, ImageDataset, InMemoryBatches, ScaleNormalize


def _dataset(n: int = 23, channels: int = 1) -> ImageDataset:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, channels, 4, 4), generator=g, dtype=torch.uint8)
    labels = {"a": torch.arange(n), "b": torch.arange(n) % 3}
    return ImageDataset(images, labels, mean=(0.5,) * channels, std=(0.25,) * channels)


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("shuffle", [False, True])
def test_each_epoch_covers_every_row_once(shuffle: bool, drop_last: bool) -> None:
    ds = _dataset()
    batches = ds.batches(5, shuffle=shuffle, drop_last=drop_last)
    assert len(batches) == (4 if drop_last else 5)
    seen = []
    for x, y in batches:
        assert x.dtype == torch.float32 and x.shape[1:] == (1, 4, 4)
        assert torch.equal(y["b"], y["a"] % 3)  # targets stay aligned with each other
        seen += y["a"].tolist()
    assert len(seen) == (20 if drop_last else 23) and len(set(seen)) == len(seen)
    assert (seen == sorted(seen)) is not shuffle  # seeded, so never the identity by luck


def test_batches_equal_items() -> None:
    """Per-batch conversion gives exactly what per-item __getitem__ gives."""
    ds = _dataset(channels=3)
    x, _y = next(iter(ds.batches(8, shuffle=False)))
    for i in range(8):
        xi, yi = ds[i]
        torch.testing.assert_close(x[i], xi, rtol=0, atol=0)
        assert int(yi["a"]) == i
    expected = (ds.images[:8].float() / 255 - 0.5) / 0.25
    torch.testing.assert_close(x, expected)


def test_generator_state_resumes_bitwise() -> None:
    ds = _dataset()
    batches = ds.batches(4, seed=123)
    next(iter(batches))  # consume one epoch's permutation
    state = batches.generator.get_state()
    first = [y["a"] for _, y in batches]
    batches.generator.set_state(state)
    again = [y["a"] for _, y in batches]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    other_epoch = [y["a"] for _, y in batches]
    assert not all(torch.equal(a, b) for a, b in zip(first, other_epoch, strict=True))


def test_same_seed_same_order_and_given_generator_is_used() -> None:
    ds = _dataset()
    order = [y["a"].tolist() for _, y in ds.batches(6, seed=7)]
    assert order == [y["a"].tolist() for _, y in ds.batches(6, seed=7)]
    gen = torch.Generator().manual_seed(7)
    batches = ds.batches(6, generator=gen)
    assert batches.generator is gen
    assert order == [y["a"].tolist() for _, y in batches]


def test_float_features_and_ignore_index_pass_through() -> None:
    feats = torch.randn(10, 7)
    target = torch.tensor([1, IGNORE_INDEX] * 5)
    batches = InMemoryBatches(feats, {"t": target}, 4, shuffle=False)
    x, y = next(iter(batches))
    assert torch.equal(x, feats[:4]) and y["t"].tolist() == [1, -100, 1, -100]


def test_custom_transform_and_validation() -> None:
    imgs = torch.zeros(3, 1, 2, 2, dtype=torch.uint8)
    batches = InMemoryBatches(imgs, {}, 2, transform=lambda x: x.double() + 1)
    x, y = next(iter(batches))
    assert x.dtype == torch.float64 and y == {}
    with pytest.raises(ValueError, match="rows"):
        InMemoryBatches(imgs, {"t": torch.zeros(2)}, 2)
    with pytest.raises(ValueError, match="both mean and std"):
        ScaleNormalize(mean=(0.1,))


def test_matches_dataloader_content() -> None:
    ds = _dataset(channels=3)
    ours = torch.cat([x for x, _ in ds.batches(5, shuffle=False)])
    theirs = torch.cat([x for x, _ in DataLoader(ds, batch_size=5, shuffle=False)])
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_subset_and_replace() -> None:
    ds = _dataset()
    ds.meta["group"] = torch.arange(len(ds)) // 10
    sub = ds.subset([2, 15, 22])
    assert sub.labels["a"].tolist() == [2, 15, 22] and sub.meta["group"].tolist() == [0, 1, 2]
    assert torch.equal(sub.images[1], ds.images[15]) and sub.mean == ds.mean
    swapped = ds.replace(labels={"c": ds.labels["b"]})
    assert swapped.tasks == ["c"] and swapped.images is ds.images
    with pytest.raises(TypeError):
        ds.replace(colour="red")
    assert ds[-1][1]["a"] == len(ds) - 1
