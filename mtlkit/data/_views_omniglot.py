"""Omniglot as 50 tasks: one classification task per alphabet."""

from __future__ import annotations

import os

import torch

from mtlkit.data._dataset import Split
from mtlkit.data._load import load
from mtlkit.data._sampling import stratified_fraction

__all__ = ["omniglot_alphabets"]


def omniglot_alphabets(
    train_fraction: float = 0.5,
    seed: int = 0,
    root: str | os.PathLike[str] | None = None,
    invert: bool = True,
) -> dict[str, Split]:
    """Each of the 50 Omniglot alphabets as a task, its characters as classes.

    Every character has 20 drawings (one per drawer). For each character a
    seeded random ``round(20 * train_fraction)`` of them (at least one) go to
    train and the rest to test: 0.05 gives 1 training drawing per character,
    0.9 gives 18. For a fixed seed, smaller fractions give subsets of larger
    ones.

    Args:
        train_fraction: share of each character's drawings used for training.
        seed: seed of the per-character draw.
        root: data root.
        invert: map the stored polarity (0 = ink on 255) to MNIST's
            (255 = ink on 0). ``~x`` equals ``255 - x`` on uint8 and runs in place.

    Returns:
        Alphabet name -> :class:`Split`, background alphabets first, each in
        its upstream order. Each dataset has one task, named after the
        alphabet, whose label is the character within the alphabet; ``meta``
        keeps ``"character"`` (global id), ``"drawer"`` and ``"char_id"``.
    """
    full = load("omniglot", "all", root)
    character = full.labels["character"]
    in_train = torch.zeros(len(full), dtype=torch.bool)
    in_train[stratified_fraction(character.numpy(), train_fraction, seed)] = True
    names = full.classes["alphabet"]
    tasks: dict[str, Split] = {}
    for a, name in enumerate(names):
        member = full.labels["alphabet"] == a
        parts = []
        for side in (in_train, ~in_train):
            part = full.subset(torch.nonzero(member & side).squeeze(1))
            if invert:
                part.images.bitwise_not_()  # subset() copied, so this is safe
            n_chars = int(part.meta["char_in_alphabet"].max()) + 1 if len(part) else 0
            parts.append(
                part.replace(
                    labels={name: part.meta["char_in_alphabet"]},
                    classes={name: [f"character{j + 1:02d}" for j in range(n_chars)]},
                    meta={**part.meta, "character": part.labels["character"]},
                    info={**part.info, "polarity": "255 = ink" if invert else "0 = ink"},
                    name=f"omniglot/{name}/{'train' if side is in_train else 'test'}",
                )
            )
        tasks[name] = Split(*parts)
    return tasks
