"""Multi-MNIST views: construction, determinism, cache and checksum (needs MNIST and Fashion-MNIST)."""

import os

import pytest
import torch

from mtlkit.data import DataError, load, multi_mnist
from mtlkit.data._views_multi_mnist import _compose

pytestmark = pytest.mark.skipif(
    not os.environ.get("MTLKIT_DATA") or not os.path.isdir(os.path.join(os.environ["MTLKIT_DATA"], "mnist")),
    reason="needs MNIST under MTLKIT_DATA",
)


def test_composition_places_left_top_left_and_right_bottom_right():
    left = torch.zeros(1, 1, 28, 28, dtype=torch.uint8)
    right = torch.zeros(1, 1, 28, 28, dtype=torch.uint8)
    left[..., 0, 0] = 255  # a dot in the left item's corner ends near the canvas's top-left
    right[..., 27, 27] = 255
    out = _compose(left, right, torch.zeros(1, 4, dtype=torch.long))
    assert out.shape == (1, 1, 28, 28)
    assert out[0, 0, :3, :3].sum() > 0 and out[0, 0, -3:, -3:].sum() > 0 and out[0, 0, 10:18, 10:18].sum() == 0


def test_multi_fashion_mnist_is_deterministic_cached_and_labelled(tmp_path, monkeypatch):
    monkeypatch.setenv("MTLKIT_CACHE", str(tmp_path))
    first = multi_mnist("test", "fashion_mnist")
    assert (tmp_path / f"{first.info['cache_key']}.npz").is_file()
    again = multi_mnist("test", "fashion_mnist")  # from the cache, checksum verified
    assert torch.equal(first.images, again.images)
    mnist, fashion = load("mnist", "test"), load("fashion_mnist", "test")
    assert torch.equal(first.labels["left"], mnist.labels["label"])
    assert torch.equal(first.labels["right"], fashion.labels["label"][first.meta["partner"]])
    assert first.classes["right"][9] == "Ankle boot"
    other = multi_mnist("test", "fashion_mnist", seed=1)
    assert not torch.equal(other.meta["partner"], first.meta["partner"])
    # a damaged cache with the right key is caught by the checksum
    path = tmp_path / f"{first.info['cache_key']}.npz"
    import numpy as np

    np.savez(path, images=np.zeros_like(first.images.numpy()), partner=first.meta["partner"].numpy(),
             shifts=first.meta["shifts"].numpy())  # fmt: skip
    with pytest.raises(DataError, match="sha256"):
        multi_mnist("test", "fashion_mnist")


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="variant"):
        multi_mnist("test", "cifar")
    with pytest.raises(ValueError, match="max_shift"):
        multi_mnist("test", max_shift=9)
