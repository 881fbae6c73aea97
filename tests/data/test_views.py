"""Multi-task views on the real data: offsets, ±1 targets, fractions, splits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtlkit.data import (
    AGE_GROUPS,
    IGNORE_INDEX,
    cifar100_tasks,
    fashion_mnist_tasks,
    load,
    mnist_one_vs_all,
    mnist_semi_supervised,
    notmnist_split,
    omniglot_alphabets,
    pooled_digits,
    utkface_tasks,
)

pytestmark = pytest.mark.data


def test_fashion_item_and_group() -> None:
    ds = fashion_mnist_tasks("train")
    assert ds.tasks == ["item", "group"]
    assert ds.labels["group"].bincount().tolist() == [36_000, 18_000, 6_000]
    custom = fashion_mnist_tasks("test", groups={"tops": (0, 2, 4, 6), "rest": (1, 3, 5, 7, 8, 9)})
    assert custom.labels["group"].bincount().tolist() == [4_000, 6_000]


def test_one_vs_all_targets_are_plus_minus_one() -> None:
    ds = mnist_one_vs_all("test")
    targets = torch.stack([ds.labels[f"digit{d}"] for d in range(10)], 1)
    assert targets.dtype == torch.float32 and set(targets.unique().tolist()) == {-1.0, 1.0}
    assert torch.equal((targets == 1).sum(1), torch.ones(len(ds), dtype=torch.long))
    assert torch.equal(targets.argmax(1), ds.meta["label"])


def test_one_vs_all_fractions_are_stratified_nested_and_seeded() -> None:
    full = load("mnist", "train").labels["label"].bincount()
    for fraction in (0.001, 0.01, 0.1):
        counts = mnist_one_vs_all("train", fraction=fraction).meta["label"].bincount()
        assert torch.equal(counts, torch.floor(full * fraction + 0.5).long())
    tiny = mnist_one_vs_all("train", fraction=0.001, seed=5)
    assert tiny.meta["label"].bincount().tolist() == [6, 7, 6, 6, 6, 5, 6, 6, 6, 6]  # 0.1%
    assert torch.equal(tiny.images, mnist_one_vs_all("train", fraction=0.001, seed=5).images)
    assert not torch.equal(tiny.images, mnist_one_vs_all("train", fraction=0.001, seed=6).images)


def test_pooled_label_offsets() -> None:
    ds = pooled_digits("test")
    sizes = [10_000, len(load("notmnist", "test")), 10_000]
    assert ds.labels["dataset"].bincount().tolist() == sizes
    assert torch.equal(ds.labels["pooled"], 10 * ds.labels["dataset"] + ds.meta["label"])
    assert ds.labels["pooled"].bincount().shape == (30,) and len(ds.classes["pooled"]) == 30
    assert ds.classes["pooled"][10] == "notmnist:A"
    assert ds.classes["pooled"][29] == "fashion_mnist:Ankle boot"
    # The first pooled rows are MNIST test, unchanged.
    assert torch.equal(ds.images[:10_000], load("mnist", "test").images)

    pair = pooled_digits("train", datasets=("fashion_mnist", "mnist"))
    assert pair.info["offsets"] == {"fashion_mnist": 0, "mnist": 10}
    assert int(pair.labels["pooled"].max()) == 19 and len(pair.classes["pooled"]) == 20
    with pytest.raises(ValueError):
        pooled_digits("train", datasets=("mnist", "mnist"))


def test_notmnist_split_is_font_disjoint() -> None:
    train, test = notmnist_split(seed=3, test_fraction=0.25)
    train_fonts, test_fonts = set(train.meta["font"].tolist()), set(test.meta["font"].tolist())
    assert train_fonts.isdisjoint(test_fonts)
    assert len(train_fonts | test_fonts) == 1873 and len(test_fonts) == 468
    assert len(train) + len(test) == 18_724
    default = notmnist_split()
    assert torch.equal(default.test.images, load("notmnist", "test").images)
    assert not torch.equal(notmnist_split(seed=4).test.meta["font"], default.test.meta["font"])


def test_semi_supervised_sizes_and_disjointness() -> None:
    split = mnist_semi_supervised(100, 20_000, seed=1)
    labeled, unlabeled = split.labeled, split.unlabeled
    assert len(labeled) == 100 and len(unlabeled) == 20_000
    assert labeled.labels["label"].bincount().tolist() == [10] * 10
    assert (unlabeled.labels["label"] == IGNORE_INDEX).all()
    li, ui = labeled.meta["source_index"], unlabeled.meta["source_index"]
    assert set(li.tolist()).isdisjoint(ui.tolist())
    assert int(torch.cat([li, ui]).max()) < 50_000
    assert len(split.validation) == 10_000 and len(split.test) == 10_000
    combined = split.combined()
    assert len(combined) == 20_100 and int((combined.labels["label"] >= 0).sum()) == 100
    again = mnist_semi_supervised(100, 20_000, seed=1)
    assert torch.equal(again.labeled.meta["source_index"], li)
    assert torch.equal(again.unlabeled.meta["source_index"], ui)
    with pytest.raises(ValueError):
        mnist_semi_supervised(1_000, 49_500)


def test_omniglot_alphabet_tasks_and_fractions() -> None:
    tasks = omniglot_alphabets(train_fraction=0.05, seed=0)
    assert len(tasks) == 50 and next(iter(tasks)) == "Alphabet_of_the_Magi"
    greek = tasks["Greek"]
    assert greek.train.tasks == ["Greek"] and len(greek.train.classes["Greek"]) == 24
    assert greek.train.labels["Greek"].bincount().tolist() == [1] * 24  # 1 of 20 drawings
    assert greek.test.labels["Greek"].bincount().tolist() == [19] * 24
    # Inverted to MNIST polarity: ink is 255 on a 0 background.
    assert (greek.train.images == 0).float().mean() > 0.8
    total = sum(len(s.train) + len(s.test) for s in tasks.values())
    assert total == 32_460
    ninety = omniglot_alphabets(train_fraction=0.9, seed=0)["Greek"]
    assert ninety.train.labels["Greek"].bincount().tolist() == [18] * 24

    # Nested for one seed: the 5% drawing of each character is among the 90% ones.
    def drawings(ds):
        return set(zip(ds.meta["character"].tolist(), ds.meta["drawer"].tolist(), strict=True))

    assert drawings(greek.train) <= drawings(ninety.train)


@pytest.mark.slow
def test_utkface_tasks() -> None:
    train, test = utkface_tasks(test_fold=2)
    assert len(train) + len(test) == 23_708 and len(test) == 4_772
    assert (test.meta["fold"] == 2).all() and (train.meta["fold"] != 2).all()
    assert train.tasks == ["gender", "age_group"] and train.classes["age_group"] == list(AGE_GROUPS)
    groups = torch.cat([train.labels["age_group"], test.labels["age_group"]]).bincount()
    assert groups.shape == (8,) and (groups > 300).all()
    assert int(groups.sum()) == 23_708


@pytest.mark.slow
def test_cifar100_tasks() -> None:
    ds = cifar100_tasks("test")
    assert ds.tasks == ["fine", "coarse"] and len(ds) == 10_000
    assert ds.labels["coarse"].bincount().tolist() == [500] * 20
    np.testing.assert_array_equal(ds.mean, (0.5071, 0.4865, 0.4409))
