"""UTKFace as the face task pair (gender, age group), standing in for Adience."""

from __future__ import annotations

import os

import torch
from torch import Tensor

from mtlkit.data._dataset import Split
from mtlkit.data._load import load

__all__ = ["AGE_GROUPS", "age_group", "utkface_tasks"]

AGE_GROUPS = ("0-2", "3-6", "7-13", "14-20", "21-32", "33-43", "44-53", "54+")
"""The eight Adience age groups, made contiguous so every age has one group
(Adience's own bins leave gaps such as 3-3 between 0-2 and 4-6)."""
_LOWER_BOUNDS = torch.tensor([3, 7, 14, 21, 33, 44, 54])


def age_group(age: Tensor) -> Tensor:
    """Age in years -> age-group index 0-7 of :data:`AGE_GROUPS`.

    >>> age_group(torch.tensor([0, 2, 3, 20, 21, 53, 54, 116])).tolist()
    [0, 0, 1, 3, 4, 6, 7, 7]
    """
    return torch.bucketize(age, _LOWER_BOUNDS, right=True)


def utkface_tasks(test_fold: int = 0, root: str | os.PathLike[str] | None = None) -> Split:
    """UTKFace with tasks ``"gender"`` (0 male, 1 female) and ``"age_group"`` (8 groups).

    This substitutes for the Adience benchmark, which could not be obtained.
    UTKFace has no official split; the file's 5 folds come from a hash of
    the file name, so one person's photos may fall in several folds.
    ``test_fold`` is the test set, the other four folds train. ``meta``
    keeps ``"age"`` (years), ``"race"`` and ``"fold"``.
    """
    if test_fold not in range(5):
        raise ValueError(f"test_fold must be 0-4, got {test_fold}")
    full = load("utkface", "all", root)
    age = full.labels["age"]
    tasks = full.replace(
        labels={"gender": full.labels["gender"], "age_group": age_group(age)},
        classes={"gender": full.classes["gender"], "age_group": list(AGE_GROUPS)},
        meta={**full.meta, "age": age, "race": full.labels["race"]},
    )
    in_test = full.meta["fold"] == test_fold
    train = tasks.subset(torch.nonzero(~in_test).squeeze(1))
    test = tasks.subset(torch.nonzero(in_test).squeeze(1))
    train.name, test.name = f"utkface/train@fold{test_fold}", f"utkface/test@fold{test_fold}"
    return Split(train, test)
