"""Dataset registry: name -> files (with digests and sources) -> builder.

A :class:`DatasetSpec` knows which files each split needs, which digests
are acceptable for each file, where a file can be fetched, and which builder
turns the verified files into an :class:`~mtlkit.data.ImageDataset`.

Several files are accepted under more than one digest: the copies under the
shared data root were rebuilt (MNIST) or re-gzipped (Fashion-MNIST) and so
differ byte-wise from the upstream ``.gz`` files that ``download=True``
fetches, while decompressing to the same IDX content.

A split may also be served by a second *file set*: the upstream archives
(CIFAR-100's ``cifar-100-binary.tar.gz``, Omniglot's PNG zips), which no
converted copy can stand in for byte-wise. Loading uses the first set whose
files are all present; ``download=True`` fetches a set that has URLs when
none is complete. Upstream archives are verified by the md5 their publishers
give, since no sha256 is published for them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mtlkit.data import _builders
from mtlkit.data._dataset import ImageDataset
from mtlkit.data._errors import ChecksumError, DataError, FormatError, MissingFileError
from mtlkit.data._root import download_file, resolve_root, verify_file

__all__ = ["DatasetSpec", "FileSpec", "REGISTRY"]

Builder = Callable[[str, Mapping[str, Path]], ImageDataset]


@dataclass(frozen=True)
class FileSpec:
    """One file of a dataset.

    Attributes:
        path: location relative to the data root, e.g. ``"mnist/t10k-labels-idx1-ubyte.gz"``.
        sha256: accepted digests; the first is the copy documented in the
            data root's ``SOURCE.md``, later ones are upstream variants.
        urls: mirrors that serve a byte-exact accepted copy, tried in order.
        obtain: how to get the file by hand when no URL serves it.
        md5: accepted md5 digests, for upstream archives whose publishers give
            only an md5; used when ``sha256`` is empty.

    >>> spec = FileSpec("cifar100/cifar-100-binary.tar.gz", md5=("03b5dce01913d631647c71ecec9e9cb8",))
    >>> spec.key, spec.digests[0]
    ('cifar-100-binary.tar.gz', 'md5')
    """

    path: str
    sha256: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()
    obtain: str = ""
    md5: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not (self.sha256 or self.md5):
            raise ValueError(f"{self.path}: a FileSpec needs sha256 or md5 digests to verify against")

    @property
    def key(self) -> str:
        """File name without directories; how builders look files up."""
        return Path(self.path).name

    @property
    def digests(self) -> tuple[str, tuple[str, ...]]:
        """``(algorithm, accepted digests)``: sha256 when known, else the published md5."""
        return ("sha256", self.sha256) if self.sha256 else ("md5", self.md5)

    def how_to_obtain(self) -> str:
        """Human instructions for the error message of a missing file."""
        if self.urls:
            return f"call load(..., download=True) to fetch it from {self.urls[0]}"
        return self.obtain or "see the SOURCE.md of this dataset"


@dataclass(frozen=True)
class DatasetSpec:
    """Everything :func:`mtlkit.data.load` needs to know about one dataset.

    Attributes:
        name: registry key.
        splits: split name -> the files it needs (the preferred file set).
        build: ``build(split, {file name: verified path}) -> ImageDataset``; it
            receives the files of whichever set was used and must give the
            same dataset from each.
        counts: split name -> exact number of examples, checked after building.
        upstream: split name -> an alternative file set, the upstream
            archives, used when the preferred set is incomplete.

    >>> spec = REGISTRY["cifar100"]
    >>> [[f.key for f in files] for files in spec.file_sets("test")]
    [['test.bin.xz', 'fine_label_names.txt', 'coarse_label_names.txt'], ['cifar-100-binary.tar.gz']]
    """

    name: str
    splits: Mapping[str, tuple[FileSpec, ...]]
    build: Builder
    counts: Mapping[str, int] = field(default_factory=dict)
    upstream: Mapping[str, tuple[FileSpec, ...]] = field(default_factory=dict)

    def file_sets(self, split: str) -> list[tuple[FileSpec, ...]]:
        """The file sets that can each serve ``split`` on their own, in order of preference."""
        if split not in self.splits:
            raise ValueError(f"{self.name} has splits {sorted(self.splits)}, not {split!r}")
        return [self.splits[split]] + ([self.upstream[split]] if split in self.upstream else [])

    def paths(self, split: str, root: str | os.PathLike[str] | None = None, download: bool = False) -> dict[str, Path]:
        """Choose a file set for ``split``, fetch it if asked, and verify its files.

        The first set whose files are all present is used. If none is and
        ``download`` is true, the missing files of the first set that has URLs
        for all of them are fetched. A present but corrupt file is an error,
        never a reason to fall back to another set.

        Raises:
            MissingFileError: no set is complete, and none was (or could be) downloaded.
            ChecksumError: a file's digest is not accepted.
        """
        sets = self.file_sets(split)
        base = resolve_root(root)
        chosen = next((s for s in sets if all((base / f.path).exists() for f in s)), None)
        if chosen is None:
            fetchable = [s for s in sets if all(f.urls for f in s if not (base / f.path).exists())]
            if not (download and fetchable):
                raise self._missing(sets, base)
            chosen = fetchable[0]
            for spec in chosen:
                if not (base / spec.path).exists():
                    _fetch(spec, base / spec.path)
        resolved: dict[str, Path] = {}
        for spec in chosen:
            algorithm, accepted = spec.digests
            verify_file(base / spec.path, accepted, algorithm)
            resolved[spec.key] = base / spec.path
        return resolved

    @staticmethod
    def _missing(sets: list[tuple[FileSpec, ...]], base: Path) -> MissingFileError:
        # Report a file of the set the user got furthest with (the preferred
        # set on a bare root), and point to a downloadable set if another exists.
        closest = max(sets, key=lambda s: sum((base / f.path).exists() for f in s))
        spec = next(f for f in closest if not (base / f.path).exists())
        how = spec.how_to_obtain()
        other = next((s for s in sets if s is not closest and all(f.urls for f in s)), None)
        if other is not None:
            archives = ", ".join(f.urls[0] for f in other)
            how = f"call load(..., download=True) to fetch {archives} instead; or {how}"
        algorithm, accepted = spec.digests
        return MissingFileError(base / spec.path, accepted[0], how, algorithm)

    def load(self, split: str, root: str | os.PathLike[str] | None = None, download: bool = False) -> ImageDataset:
        """Verified files of ``split`` turned into an :class:`ImageDataset`."""
        dataset = self.build(split, self.paths(split, root, download))
        expected = self.counts.get(split)
        if expected is not None and len(dataset) != expected:
            raise FormatError(f"{self.name}/{split}", f"expected {expected} examples, found {len(dataset)}")
        return dataset


def _fetch(spec: FileSpec, path: Path) -> None:
    failures: list[DataError] = []
    algorithm, accepted = spec.digests
    for url in spec.urls:
        try:
            download_file(url, path, accepted, algorithm=algorithm)
            return
        except DataError as exc:
            failures.append(exc)
    if all(isinstance(exc, ChecksumError) for exc in failures):
        # Every mirror answered, with other bytes: keep the precise error type.
        raise failures[0]
    details = "\n  ".join(f"{url}: {exc}" for url, exc in zip(spec.urls, failures, strict=True))
    raise DataError(f"could not download {path} from any mirror:\n  {details}")


# --------------------------------------------------------------------------- specs

_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
_FASHION_MIRRORS = (
    "https://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)


def _idx_files(folder: str, mirrors: tuple[str, ...], digests: dict[str, tuple[str, ...]]) -> dict[str, FileSpec]:
    return {name: FileSpec(f"{folder}/{name}", sha, tuple(m + name for m in mirrors)) for name, sha in digests.items()}


# (copy in the shared data root, upstream .gz) -- see mnist/SOURCE.md.
_MNIST = _idx_files(
    "mnist",
    _MNIST_MIRRORS,
    {
        "train-images-idx3-ubyte.gz": (
            "db8f937d487057fb14a9f0fbe97f0bc8d311ab41b750d41e1ff37c43b9e55e19",
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        ),
        "train-labels-idx1-ubyte.gz": (
            "51fc562b6747b666fbf6e84ce29d43c3cb5f9c388c664d43b33f02095313405a",
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        ),
        "t10k-images-idx3-ubyte.gz": (
            "cfeddb84311ecf044fc6a5b0f6ee8a24d265d4e83e388400186eb114082f4209",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "e41c74e484045d39b462a7790a4af51301bd9b0b24f0154798d713ec68c45920",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        ),
    },
)

# (Debian's re-gzipped copy, upstream .gz) -- see fashion-mnist/SOURCE.md.
_FASHION = _idx_files(
    "fashion-mnist",
    _FASHION_MIRRORS,
    {
        "train-images-idx3-ubyte.gz": (
            "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        ),
        "train-labels-idx1-ubyte.gz": (
            "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        ),
        "t10k-images-idx3-ubyte.gz": (
            "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        ),
    },
)

_NOTMNIST_HOW = (
    "no stable public URL serves this file; it is built from notMNIST_small "
    "(Bulatov 2011), see notmnist/SOURCE.md of the shared data root"
)
_NOTMNIST = (
    FileSpec(
        "notmnist/notmnist-small-images-idx3-ubyte.gz",
        ("cae14d616766bfffb88a525cde0b33f44e6fc1f01e85d5262b94b5030148058d",),
        obtain=_NOTMNIST_HOW,
    ),
    FileSpec(
        "notmnist/notmnist-small-labels-idx1-ubyte.gz",
        ("7bc358024b9b5a9325071ade8d4a908d90bd1a8926ac8d2c6854731fb8fb4851",),
        obtain=_NOTMNIST_HOW,
    ),
    FileSpec(
        "notmnist/notmnist-small-files.txt.gz",
        ("3897ed3d06ccf415997c2d9c6818abab44619d745e148cec3922a8ac2667691f",),
        obtain=_NOTMNIST_HOW,
    ),
)

_OMNIGLOT_HOW = (
    "copy the npz layout converted from images_background.zip / images_evaluation.zip "
    "of https://github.com/brendenlake/omniglot; see omniglot/SOURCE.md"
)
_OMNIGLOT_URL = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/"
# md5s as published by torchvision's Omniglot dataset class (upstream publishes none).
_OMNIGLOT_ZIPS = {
    part: FileSpec(f"omniglot/images_{part}.zip", md5=(md5,), urls=(f"{_OMNIGLOT_URL}images_{part}.zip",))
    for part, md5 in (
        ("background", "68d2efa1b9178cc56df9314c21c6e718"),
        ("evaluation", "6b91aef0f799c5bb55b94e3f2daec811"),
    )
}
_OMNIGLOT = {
    "background": (
        FileSpec(
            "omniglot/omniglot-background.npz",
            ("d4fcc83fb743f58534e3996290bf71624bda5e651bd3f0ab379faa2f01d7804c",),
            obtain=_OMNIGLOT_HOW,
        ),
        FileSpec(
            "omniglot/omniglot-background-alphabets.txt",
            ("f71063db592f8f0cb804327ac247fcbe3db3d79759bce8c87aebc60fe6aa4b15",),
            obtain=_OMNIGLOT_HOW,
        ),
    ),
    "evaluation": (
        FileSpec(
            "omniglot/omniglot-evaluation.npz",
            ("ee33c919c3ed93f3b9da9c3d41b68299be3bc94c85ce50ec9ef7179f22fc1aa9",),
            obtain=_OMNIGLOT_HOW,
        ),
        FileSpec(
            "omniglot/omniglot-evaluation-alphabets.txt",
            ("4b81ecbd5de9a33f102387a1f684ac3072b171b5ac0fb4880212bf2c5a9f40ac",),
            obtain=_OMNIGLOT_HOW,
        ),
    ),
}

_UTKFACE = (
    FileSpec(
        "utkface/utkface64.npz",
        ("22e4bb252e123d2032580d65731455d7d9e69088250bdad57d7f763f0a54adc4",),
        obtain=(
            "64x64 re-encoding of UTKFace (https://susanqq.github.io/UTKFace/, "
            "non-commercial research use only); see utkface/SOURCE.md"
        ),
    ),
)

_CIFAR_HOW = "copy the converted layout (the official binary records, sorted by fine label, xz); see cifar100/SOURCE.md"
# The md5 published on https://www.cs.toronto.edu/~kriz/cifar.html.
_CIFAR_ARCHIVE = FileSpec(
    "cifar100/cifar-100-binary.tar.gz",
    md5=("03b5dce01913d631647c71ecec9e9cb8",),
    urls=("https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",),
)
_CIFAR_NAMES = (
    FileSpec(
        "cifar100/fine_label_names.txt",
        ("4a53f81a8af29bb6aa646bfe2c455db1b061edfde82a39c0cfc313ef536c681b",),
        obtain=_CIFAR_HOW,
    ),
    FileSpec(
        "cifar100/coarse_label_names.txt",
        ("14e28b5b70e3d8a29704b0d9f8c5985cca5f3c3d08ea043dcc87a036df37a2b3",),
        obtain=_CIFAR_HOW,
    ),
)
_CIFAR = {
    "train": (
        FileSpec(
            "cifar100/train.bin.xz",
            ("52b7ea1f0efc8a2f52161998ff8b54e14a1e124fe017e4024d863987b41a1f78",),
            obtain=_CIFAR_HOW,
        ),
        *_CIFAR_NAMES,
    ),
    "test": (
        FileSpec(
            "cifar100/test.bin.xz",
            ("f7c45c8d355cc62afa3b2489e5cca77e0ea267ce81f02aaf72007c149a67fb1e",),
            obtain=_CIFAR_HOW,
        ),
        *_CIFAR_NAMES,
    ),
}


def _mnist_splits(files: dict[str, FileSpec]) -> dict[str, tuple[FileSpec, ...]]:
    return {
        split: (files[f"{prefix}-images-idx3-ubyte.gz"], files[f"{prefix}-labels-idx1-ubyte.gz"])
        for split, prefix in (("train", "train"), ("test", "t10k"))
    }


REGISTRY: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        "mnist",
        _mnist_splits(_MNIST),
        _builders.build_mnist,
        {"train": 60_000, "test": 10_000},
    ),
    "fashion_mnist": DatasetSpec(
        "fashion_mnist",
        _mnist_splits(_FASHION),
        _builders.build_fashion_mnist,
        {"train": 60_000, "test": 10_000},
    ),
    "notmnist": DatasetSpec(
        "notmnist",
        {"all": _NOTMNIST, "train": _NOTMNIST, "test": _NOTMNIST},
        _builders.build_notmnist,
        {"all": 18_724},
    ),
    "omniglot": DatasetSpec(
        "omniglot",
        {
            "background": _OMNIGLOT["background"],
            "evaluation": _OMNIGLOT["evaluation"],
            "train": _OMNIGLOT["background"],
            "test": _OMNIGLOT["evaluation"],
            "all": _OMNIGLOT["background"] + _OMNIGLOT["evaluation"],
        },
        _builders.build_omniglot,
        {
            "background": 19_280,
            "evaluation": 13_180,
            "train": 19_280,
            "test": 13_180,
            "all": 32_460,
        },
        upstream={
            "background": (_OMNIGLOT_ZIPS["background"],),
            "evaluation": (_OMNIGLOT_ZIPS["evaluation"],),
            "train": (_OMNIGLOT_ZIPS["background"],),
            "test": (_OMNIGLOT_ZIPS["evaluation"],),
            "all": (_OMNIGLOT_ZIPS["background"], _OMNIGLOT_ZIPS["evaluation"]),
        },
    ),
    "utkface": DatasetSpec(
        "utkface",
        {"all": _UTKFACE, "train": _UTKFACE, "test": _UTKFACE},
        _builders.build_utkface,
        {"all": 23_708},
    ),
    "cifar100": DatasetSpec(
        "cifar100",
        _CIFAR,
        _builders.build_cifar100,
        {"train": 50_000, "test": 10_000},
        upstream={"train": (_CIFAR_ARCHIVE,), "test": (_CIFAR_ARCHIVE,)},
    ),
    "fashion_mnist_small": DatasetSpec(
        "fashion_mnist_small",
        {"train": (), "test": ()},
        _builders.build_fashion_mnist_small,
        {"train": 2_000, "test": 1_000},
    ),
}
