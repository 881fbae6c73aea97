"""Builders: verified files of one dataset -> :class:`ImageDataset`.

Each builder knows one dataset's layout (which files, which arrays, which
label encoding) and delegates the byte-level parsing to the format readers
(:mod:`._idx`, :mod:`._cifar`, :mod:`._npz`, :mod:`._omniglot`). They are
called by :meth:`DatasetSpec.load` after every file has passed its checksum.

CIFAR-100 and Omniglot have two file sets, the converted layout of the
shared data root and the upstream archives; their builders read whichever
they are given and return the same dataset from both.
"""

from __future__ import annotations

import functools
import gzip
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import TypedDict

import numpy as np
import torch

from mtlkit.data._cifar import (
    ARCHIVE_NAME,
    decompress_records,
    read_cifar100_archive,
    read_cifar100_records,
)
from mtlkit.data._dataset import ImageDataset
from mtlkit.data._errors import FormatError
from mtlkit.data._idx import read_idx
from mtlkit.data._npz import load_or_decode_jpegs, read_npz
from mtlkit.data._omniglot import load_or_decode_omniglot_zip
from mtlkit.data._root import file_digest
from mtlkit.data._sampling import group_split

__all__ = [
    "FASHION_MNIST_CLASSES",
    "MNIST_CLASSES",
    "NOTMNIST_CLASSES",
    "NOTMNIST_DEFAULT_SPLIT",
    "SMALL_FILE",
    "build_cifar100",
    "build_fashion_mnist",
    "build_fashion_mnist_small",
    "build_mnist",
    "build_notmnist",
    "build_omniglot",
    "build_utkface",
]

MNIST_CLASSES = [str(d) for d in range(10)]
FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
NOTMNIST_CLASSES = list("ABCDEFGHIJ")


class _GroupSplitOptions(TypedDict):
    test_fraction: float
    seed: int


NOTMNIST_DEFAULT_SPLIT: _GroupSplitOptions = {"test_fraction": 0.2, "seed": 0}
"""Font-disjoint split behind ``load("notmnist", "train" | "test")``."""

# Published normalisation constants of the training sets (pixels scaled to [0, 1]).
MNIST_MEAN_STD = ((0.1307,), (0.3081,))
FASHION_MNIST_MEAN_STD = ((0.2860,), (0.3530,))
CIFAR100_MEAN_STD = ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))
SMALL_FILE = "fashion_mnist_small.npz"


def _pick(files: Mapping[str, Path], part: str) -> Path:
    matches = [path for key, path in files.items() if part in key]
    if len(matches) != 1:
        raise KeyError(f"expected exactly one file containing {part!r}, got {sorted(files)}")
    return matches[0]


def _read_image_label_pair(files: Mapping[str, Path]) -> tuple[np.ndarray, np.ndarray]:
    """IDX images ``(N, H, W)`` and labels ``(N,)`` with matching counts."""
    images_path, labels_path = _pick(files, "images"), _pick(files, "labels")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1:
        raise FormatError(images_path, f"images {images.shape} / labels {labels.shape} not 3-D/1-D")
    if len(images) != len(labels):
        raise FormatError(labels_path, f"{len(labels)} labels for {len(images)} images in {images_path.name}")
    return images, labels


def _idx_dataset(
    files: Mapping[str, Path],
    *,
    classes: list[str],
    name: str,
    mean_std: tuple[tuple[float, ...], tuple[float, ...]] | None,
    info: dict[str, object],
) -> ImageDataset:
    images, labels = _read_image_label_pair(files)
    if labels.size and int(labels.max()) >= len(classes):
        raise FormatError(_pick(files, "labels"), f"label {labels.max()} >= {len(classes)} classes")
    mean, std = mean_std if mean_std else (None, None)
    return ImageDataset(
        torch.from_numpy(images).unsqueeze(1),
        {"label": torch.from_numpy(labels.astype(np.int64))},
        classes={"label": classes},
        info=info,
        mean=mean,
        std=std,
        name=name,
    )


def build_mnist(split: str, files: Mapping[str, Path]) -> ImageDataset:
    """MNIST: 28x28 digits, task ``"label"`` (0-9); white ink on black."""
    return _idx_dataset(
        files,
        classes=MNIST_CLASSES,
        name=f"mnist/{split}",
        mean_std=MNIST_MEAN_STD,
        info={"source": "mnist/SOURCE.md", "license": "CC BY-SA 3.0"},
    )


def build_fashion_mnist(split: str, files: Mapping[str, Path]) -> ImageDataset:
    """Fashion-MNIST: 28x28 clothing images, task ``"label"`` (10 classes)."""
    return _idx_dataset(
        files,
        classes=FASHION_MNIST_CLASSES,
        name=f"fashion_mnist/{split}",
        mean_std=FASHION_MNIST_MEAN_STD,
        info={"source": "fashion-mnist/SOURCE.md", "license": "MIT (Zalando SE 2017)"},
    )


def build_notmnist(split: str, files: Mapping[str, Path]) -> ImageDataset:
    """notMNIST_small: letters A-J (labels 0-9) in 1,873 fonts.

    ``meta["font"]`` indexes ``info["fonts"]`` (the base64 font file name,
    which is the same file name in every letter folder). ``"all"`` is the full
    set; ``"train"``/``"test"`` are the default font-disjoint split
    (:data:`NOTMNIST_DEFAULT_SPLIT`), since upstream has no split and one font
    can render identical glyphs.
    """
    list_path = _pick(files, "files")
    lines = gzip.decompress(list_path.read_bytes()).decode("utf-8").splitlines()
    rows = [line.split("\t") for line in lines if line and not line.startswith("#")]
    try:
        fonts = np.array([row[1].split("/", 1)[1] for row in rows])
    except IndexError as exc:
        raise FormatError(list_path, "expected '<index>\\t<letter>/<file>\\t<split>' rows") from exc
    font_names, font_ids = np.unique(fonts, return_inverse=True)
    dataset = _idx_dataset(
        files,
        classes=NOTMNIST_CLASSES,
        name="notmnist/all",
        mean_std=None,
        info={
            "source": "notmnist/SOURCE.md",
            "fonts": font_names.tolist(),
            "license": "none stated; cite Bulatov (2011)",
        },
    )
    if len(font_ids) != len(dataset):
        raise FormatError(list_path, f"{len(font_ids)} file names for {len(dataset)} images")
    dataset.meta["font"] = torch.from_numpy(font_ids.astype(np.int64))
    if split == "all":
        return dataset
    train, test = group_split(font_ids, **NOTMNIST_DEFAULT_SPLIT)
    part = dataset.subset(train if split == "train" else test)
    part.name = f"notmnist/{split}"
    return part


def _read_alphabets(path: Path) -> list[str]:
    names = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        index, name, _count = line.split("\t")
        if int(index) != i:
            raise FormatError(path, f"line {i} has index {index}")
        names.append(name)
    return names


def _omniglot_part(files: Mapping[str, Path], part: str) -> tuple[dict[str, np.ndarray], list[str]]:
    """One Omniglot part's arrays, and its alphabets' names in index order."""
    archive = files.get(f"images_{part}.zip")
    if archive is not None:
        # Upstream zip: decoded into the npz layout's arrays, cached by the archive's md5.
        key = f"omniglot-{part}-{file_digest(archive, 'md5')}"
        arrays = load_or_decode_omniglot_zip(archive, part, key)
        return arrays, [str(name) for name in arrays["alphabet_names"]]
    arrays = read_npz(
        _pick(files, f"{part}.npz"),
        ("images", "alphabet", "character", "char_class", "char_id", "drawer"),
    )
    alphabets = _read_alphabets(_pick(files, f"{part}-alphabets"))
    if int(arrays["alphabet"].max()) + 1 != len(alphabets):
        raise FormatError(_pick(files, f"{part}.npz"), "alphabet indices do not match the list")
    return arrays, list(alphabets)


def build_omniglot(split: str, files: Mapping[str, Path]) -> ImageDataset:
    """Omniglot 105x105 drawings; ``"train"`` = background (30 alphabets), ``"test"`` = evaluation.

    Reads the converted npz layout, or the upstream ``images_<part>.zip``
    (decoded once, then cached); both give the same dataset, ordered by
    alphabet name, character and drawer.

    Pixels are as stored: **0 = ink, 255 = background** (the opposite of
    MNIST); the multi-task view inverts them. Tasks: ``"alphabet"`` and
    ``"character"`` (a class id unique across both sets: evaluation ids
    follow the 964 background ones). ``meta`` holds ``char_in_alphabet``,
    ``drawer`` (0-19) and the upstream ``char_id``.
    """
    parts = {"train": ["background"], "test": ["evaluation"]}.get(split)
    parts = parts or (["background", "evaluation"] if split == "all" else [split])
    images: list[np.ndarray] = []
    alphabet: list[np.ndarray] = []
    character: list[np.ndarray] = []
    meta_cols: dict[str, list[np.ndarray]] = {}
    names: list[str] = []
    char_offset = 0
    for part in parts:
        arrays, part_names = _omniglot_part(files, part)
        images.append(arrays["images"])
        alphabet.append(arrays["alphabet"].astype(np.int64) + len(names))
        character.append(arrays["char_class"].astype(np.int64) + char_offset)
        for key, col in (
            ("char_in_alphabet", "character"),
            ("drawer", "drawer"),
            ("char_id", "char_id"),
        ):
            meta_cols.setdefault(key, []).append(arrays[col].astype(np.int64))
        names += part_names
        char_offset += int(arrays["char_class"].max()) + 1
    return ImageDataset(
        torch.from_numpy(np.concatenate(images)).unsqueeze(1),
        {
            "alphabet": torch.from_numpy(np.concatenate(alphabet)),
            "character": torch.from_numpy(np.concatenate(character)),
        },
        classes={"alphabet": names},
        meta={k: torch.from_numpy(np.concatenate(v)) for k, v in meta_cols.items()},
        info={
            "source": "omniglot/SOURCE.md",
            "polarity": "0 = ink, 255 = background",
            "license": "MIT (Brenden Lake 2015)",
        },
        name=f"omniglot/{split}",
    )


UTKFACE_TEST_FOLD = 0


def build_utkface(split: str, files: Mapping[str, Path]) -> ImageDataset:
    """UTKFace aligned faces, 64x64 RGB; tasks ``"age"`` (years), ``"gender"``, ``"race"``.

    ``gender``: 0 male, 1 female. ``race``: 0 White, 1 Black, 2 Asian,
    3 Indian, 4 Others, and ``-100`` (ignore) for the 3 images whose file
    name lacks it. ``meta["fold"]`` is the file-name-hash fold 0-4;
    ``"test"`` is fold 0 and ``"train"`` the other four.
    """
    path = _pick(files, "utkface")
    arrays = read_npz(path, ("age", "gender", "race", "fold", "filename"))
    decoded = load_or_decode_jpegs(path, len(arrays["age"]), (64, 64, 3), key=f"utkface64-{file_digest(path)[:16]}")
    race = arrays["race"].astype(np.int64)
    race[race < 0] = -100
    dataset = ImageDataset(
        torch.from_numpy(decoded),
        {
            "age": torch.from_numpy(arrays["age"].astype(np.int64)),
            "gender": torch.from_numpy(arrays["gender"].astype(np.int64)),
            "race": torch.from_numpy(race),
        },
        classes={
            "gender": ["male", "female"],
            "race": ["White", "Black", "Asian", "Indian", "Others"],
        },
        meta={"fold": torch.from_numpy(arrays["fold"].astype(np.int64))},
        info={
            "source": "utkface/SOURCE.md",
            "filenames": arrays["filename"].tolist(),
            "license": "non-commercial research use only",
        },
        name="utkface/all",
    )
    if split == "all":
        return dataset
    in_test = dataset.meta["fold"] == UTKFACE_TEST_FOLD
    part = dataset.subset(torch.nonzero(in_test if split == "test" else ~in_test).squeeze(1))
    part.name = f"utkface/{split}"
    return part


@functools.lru_cache(maxsize=2)
def _cifar_records(
    path: str, split: str, size: int, mtime_ns: int
) -> tuple[bytes, tuple[str, ...] | None, tuple[str, ...] | None]:
    # Decompressing the 114 MB xz train file, or the 168 MB official archive,
    # takes seconds, so it happens once per process. Keyed by size and mtime
    # too, so a replaced file is not served stale. Immutable bytes, in memory
    # only: each load() builds fresh arrays from them, so a caller editing its
    # images in place cannot corrupt the cache. Label names come with the
    # records from the archive only (the converted layout has them as files).
    del size, mtime_ns
    if Path(path).name == ARCHIVE_NAME:
        return read_cifar100_archive(Path(path), split)
    return decompress_records(Path(path)), None, None


def build_cifar100(split: str, files: Mapping[str, Path]) -> ImageDataset:
    """CIFAR-100 32x32 RGB; tasks ``"fine"`` (100 classes) and ``"coarse"`` (20 superclasses).

    Reads the converted layout (``<split>.bin.xz`` and two name files) or the
    official ``cifar-100-binary.tar.gz``; either is decompressed once per
    process. Both sources give the same dataset, records **sorted by fine
    label** (see ``cifar100/SOURCE.md``): the official archive interleaves the
    classes, and is stably sorted so that its within-class order is kept.
    Shuffle before taking a prefix.
    """
    path = files.get(ARCHIVE_NAME) or _pick(files, ".bin")
    stat = path.stat()
    records, fine_names, coarse_names = _cifar_records(str(path), split, stat.st_size, stat.st_mtime_ns)
    label = f"{path}:{split}.bin" if fine_names is not None else str(path)
    images, fine, coarse = read_cifar100_records(records, name=label)
    if fine_names is None or coarse_names is None:
        fine_names = tuple(_pick(files, "fine_label").read_text().split())
        coarse_names = tuple(_pick(files, "coarse_label").read_text().split())
    else:
        # The same record order as the converted layout, so seeded subsets agree across sources.
        order = np.argsort(fine, kind="stable")
        images, fine, coarse = images[order], fine[order], coarse[order]
    if len(fine_names) != 100 or len(coarse_names) != 20:
        raise FormatError(path.parent, "expected 100 fine and 20 coarse label names")
    mean, std = CIFAR100_MEAN_STD
    return ImageDataset(
        torch.from_numpy(images),
        {
            "fine": torch.from_numpy(fine.astype(np.int64)),
            "coarse": torch.from_numpy(coarse.astype(np.int64)),
        },
        classes={"fine": list(fine_names), "coarse": list(coarse_names)},
        info={"source": "cifar100/SOURCE.md", "license": "none stated; cite Krizhevsky (2009)"},
        mean=mean,
        std=std,
        name=f"cifar100/{split}",
    )


def build_fashion_mnist_small(split: str, files: Mapping[str, Path]) -> ImageDataset:
    """The Fashion-MNIST subset shipped in the package (2,000 train / 1,000 test).

    Needs no data root. ``meta["source_index"]`` is each image's row in the
    full Fashion-MNIST split it was drawn from.
    """
    del files
    with resources.as_file(resources.files("mtlkit.data") / SMALL_FILE) as path:
        arrays = read_npz(path, (f"x_{split}", f"y_{split}", f"index_{split}"))
    mean, std = FASHION_MNIST_MEAN_STD
    return ImageDataset(
        torch.from_numpy(arrays[f"x_{split}"]).unsqueeze(1),
        {"label": torch.from_numpy(arrays[f"y_{split}"].astype(np.int64))},
        classes={"label": FASHION_MNIST_CLASSES},
        meta={"source_index": torch.from_numpy(arrays[f"index_{split}"].astype(np.int64))},
        info={
            "source": "fashion-mnist/SOURCE.md",
            "license": "MIT (Zalando SE 2017), see LICENSE-fashion-mnist.txt",
        },
        mean=mean,
        std=std,
        name=f"fashion_mnist_small/{split}",
    )
