"""CIFAR-100 and Omniglot from their upstream archives, fetched with download=True.

Tiny ``cifar-100-binary.tar.gz`` and ``images_<part>.zip`` files are written
in tmp_path and served from 127.0.0.1. The dataset built from them must equal
the one built from the converted layout (xz records sorted by fine label;
npz) of the same content.
"""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from _tiny import (
    OmniglotImage,
    png_bytes,
    tiny_cifar_records,
    tiny_omniglot,
    write_cifar_archive,
    write_cifar_converted,
    write_omniglot_npz,
    write_omniglot_zip,
)

from mtlkit.data import (
    REGISTRY,
    ChecksumError,
    DataError,
    DatasetSpec,
    FileSpec,
    FormatError,
    ImageDataset,
    MissingFileError,
    _builders,
    _omniglot,
    available,
    load,
)
from mtlkit.data._cifar import read_cifar100_archive
from mtlkit.data._omniglot import read_omniglot_zip
from mtlkit.data._root import md5_of

CIFAR_ARCHIVE = "cifar-100-binary.tar.gz"


def _assert_same_dataset(a: ImageDataset, b: ImageDataset) -> None:
    assert torch.equal(a.images, b.images)
    for table_a, table_b in ((a.labels, b.labels), (a.meta, b.meta)):
        assert table_a.keys() == table_b.keys()
        for key in table_a:
            assert torch.equal(table_a[key], table_b[key]), key
    assert (a.classes, a.info, a.name, a.mean, a.std) == (b.classes, b.info, b.name, b.mean, b.std)


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# ----------------------------------------------------------------------------- CIFAR-100
def _cifar_spec(archive_url: str, md5: str, digests: dict[str, str]) -> DatasetSpec:
    def converted(split: str) -> tuple[FileSpec, ...]:
        names = (f"{split}.bin.xz", "fine_label_names.txt", "coarse_label_names.txt")
        return tuple(FileSpec(f"cifar100/{name}", (digests.get(name, "0" * 64),)) for name in names)

    urls = (archive_url,) if archive_url else ()
    archive = FileSpec(f"cifar100/{CIFAR_ARCHIVE}", md5=(md5,), urls=urls)
    return DatasetSpec(
        "cifar100",
        {"train": converted("train"), "test": converted("test")},
        _builders.build_cifar100,
        upstream={"train": (archive,), "test": (archive,)},
    )


@pytest.fixture
def cifar(server, tmp_path: Path) -> tuple[DatasetSpec, dict[str, np.ndarray], Path]:
    """(spec, records per split in archive order, root holding the converted layout)."""
    url, served = server
    records = {"train": tiny_cifar_records(12, seed=0), "test": tiny_cifar_records(6, seed=1)}
    md5 = write_cifar_archive(served / CIFAR_ARCHIVE, records)
    digests = write_cifar_converted(tmp_path / "converted", records)
    return _cifar_spec(url + CIFAR_ARCHIVE, md5, digests), records, tmp_path / "converted"


def test_cifar_download_gives_the_converted_layouts_dataset(cifar, tmp_path, fresh_cache) -> None:
    spec, records, converted = cifar
    root = tmp_path / "root"
    for split in ("train", "test"):
        fetched = spec.load(split, root=root, download=True)
        _assert_same_dataset(fetched, spec.load(split, root=converted))
        # Sorted by fine label; within a class, the archive's (official) order.
        ordered = records[split][np.argsort(records[split][:, 1], kind="stable")]
        assert fetched.labels["fine"].tolist() == ordered[:, 1].tolist()
        assert fetched.labels["coarse"].tolist() == ordered[:, 0].tolist()
        assert torch.equal(fetched.images, torch.from_numpy(ordered[:, 2:].reshape(-1, 3, 32, 32)))
        assert fetched.classes["fine"][99] == "fine99" and len(fetched.classes["coarse"]) == 20
    # One archive serves both splits; nothing else is written into the root.
    assert _files(root) == [f"cifar100/{CIFAR_ARCHIVE}"]


def test_complete_converted_layout_is_used_without_download(cifar, fresh_cache) -> None:
    spec, _, converted = cifar
    before = _files(converted)
    assert len(spec.load("test", root=converted, download=True)) == 6
    assert _files(converted) == before


def test_cifar_wrong_md5_leaves_nothing(server, tmp_path, fresh_cache) -> None:
    url, served = server
    write_cifar_archive(served / CIFAR_ARCHIVE, {"train": tiny_cifar_records()})
    spec = _cifar_spec(url + CIFAR_ARCHIVE, "0" * 32, {})
    root = tmp_path / "root"
    with pytest.raises(ChecksumError, match="expected md5: " + "0" * 32):
        spec.load("train", root=root, download=True)
    assert _files(root) == []


def test_cut_off_download_is_an_error_and_leaves_nothing(server, tmp_path, fresh_cache) -> None:
    url, served = server
    md5 = write_cifar_archive(served / CIFAR_ARCHIVE, {"train": tiny_cifar_records()})
    spec = _cifar_spec(f"{url}short/{CIFAR_ARCHIVE}", md5, {})
    root = tmp_path / "root"
    with pytest.raises(DataError, match=r"could not download .* connection closed after \d+ of \d+ bytes"):
        spec.load("train", root=root, download=True)
    assert _files(root) == []


def test_truncated_archive_is_a_format_error(tmp_path, fresh_cache) -> None:
    full = tmp_path / "full.tar.gz"
    write_cifar_archive(full, {"train": tiny_cifar_records()})
    cut = tmp_path / "cifar100" / CIFAR_ARCHIVE
    cut.parent.mkdir()
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    # Even under a registry entry that accepted the cut bytes, the reader refuses them.
    spec = _cifar_spec("", md5_of(cut), {})
    with pytest.raises(FormatError, match=f"{CIFAR_ARCHIVE}: archive is truncated or corrupt"):
        spec.load("train", root=tmp_path)


def test_cifar_missing_member_is_a_format_error(tmp_path, fresh_cache) -> None:
    path = tmp_path / "cifar100" / CIFAR_ARCHIVE
    md5 = write_cifar_archive(path, {"train": tiny_cifar_records()}, skip=("coarse_label_names.txt",))
    with pytest.raises(FormatError, match=r"missing member.*cifar-100-binary/coarse_label_names\.txt"):
        _cifar_spec("", md5, {}).load("train", root=tmp_path)
    with pytest.raises(FormatError, match=f"{CIFAR_ARCHIVE}: missing member.*test.bin"):
        _cifar_spec("", md5, {}).load("test", root=tmp_path)


def test_cifar_malformed_members(tmp_path, fresh_cache) -> None:
    # A partial record: the error names the archive and the member.
    partial = tiny_cifar_records()[:, :-5].copy()
    md5 = write_cifar_archive(tmp_path / "cifar100" / CIFAR_ARCHIVE, {"train": partial})
    with pytest.raises(FormatError, match=r"tar\.gz:train\.bin: .* not a whole number"):
        _cifar_spec("", md5, {}).load("train", root=tmp_path)
    # A member that is a link, not a file, is refused (never followed, never extracted).
    with tarfile.open(tmp_path / "link.tar.gz", "w:gz") as tar:
        link = tarfile.TarInfo("cifar-100-binary/train.bin")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    with pytest.raises(FormatError, match="not a regular file"):
        read_cifar100_archive(tmp_path / "link.tar.gz", "train")


# ----------------------------------------------------------------------------- Omniglot
def _omniglot_spec(url: str, md5s: dict[str, str], digests: dict[str, str]) -> DatasetSpec:
    def converted(part: str) -> tuple[FileSpec, ...]:
        names = (f"omniglot-{part}.npz", f"omniglot-{part}-alphabets.txt")
        return tuple(FileSpec(f"omniglot/{name}", (digests.get(name, "0" * 64),)) for name in names)

    zips = {
        part: FileSpec(
            f"omniglot/images_{part}.zip",
            md5=(md5,),
            urls=(f"{url}images_{part}.zip",) if url else (),
        )
        for part, md5 in md5s.items()
    }
    bg, ev = converted("background"), converted("evaluation")
    return DatasetSpec(
        "omniglot",
        {"background": bg, "evaluation": ev, "train": bg, "test": ev, "all": bg + ev},
        _builders.build_omniglot,
        upstream={
            "background": (zips["background"],),
            "evaluation": (zips["evaluation"],),
            "train": (zips["background"],),
            "test": (zips["evaluation"],),
            "all": (zips["background"], zips["evaluation"]),
        },
    )


def _tiny_parts() -> dict[str, list[OmniglotImage]]:
    # Folder names chosen so that sorting matters (the zips list them shuffled).
    background = tiny_omniglot({"Zeta_(z)": 2, "Alpha-A": 3, "N_Ko": 1}, drawers=3, first_id=1, seed=0)
    evaluation = tiny_omniglot({"ULOG": 2, "Angelic": 1}, drawers=3, first_id=7, seed=1)
    return {"background": background, "evaluation": evaluation}


def test_omniglot_download_gives_the_npz_layouts_dataset(server, tmp_path, fresh_cache) -> None:
    url, served = server
    parts = _tiny_parts()
    md5s = {part: write_omniglot_zip(served / f"images_{part}.zip", part, ims) for part, ims in parts.items()}
    converted = tmp_path / "converted"
    digests = {k: v for part, ims in parts.items() for k, v in write_omniglot_npz(converted, part, ims).items()}
    spec = _omniglot_spec(url, md5s, digests)
    root = tmp_path / "root"
    for split in ("all", "train", "test", "background"):
        _assert_same_dataset(spec.load(split, root=root, download=True), spec.load(split, root=converted))
    both = spec.load("all", root=root)
    assert both.classes["alphabet"] == ["Alpha-A", "N_Ko", "Zeta_(z)", "Angelic", "ULOG"]
    assert len(both) == (6 + 3) * 3 and both.labels["character"].tolist() == sorted(both.labels["character"].tolist())
    assert set(both.images.unique().tolist()) == {0, 255}
    assert _files(root) == ["omniglot/images_background.zip", "omniglot/images_evaluation.zip"]
    # Decoded once per archive, cached under its md5 outside the data root.
    assert {p.name for p in fresh_cache.glob("omniglot-*.npz")} == {
        f"omniglot-{part}-{md5}.npz" for part, md5 in md5s.items()
    }


def test_omniglot_zip_is_decoded_once(tmp_path, fresh_cache, monkeypatch) -> None:
    parts = _tiny_parts()
    md5s = {
        part: write_omniglot_zip(tmp_path / "omniglot" / f"images_{part}.zip", part, ims) for part, ims in parts.items()
    }
    spec = _omniglot_spec("", md5s, {})
    first = spec.load("train", root=tmp_path)

    def fail(*args: object) -> None:
        raise AssertionError("decoded again")

    monkeypatch.setattr(_omniglot, "read_omniglot_zip", fail)
    _assert_same_dataset(spec.load("train", root=tmp_path), first)


def test_omniglot_wrong_md5_leaves_nothing(server, tmp_path, fresh_cache) -> None:
    url, served = server
    parts = _tiny_parts()
    for part, ims in parts.items():
        write_omniglot_zip(served / f"images_{part}.zip", part, ims)
    spec = _omniglot_spec(url, {"background": "f" * 32, "evaluation": "e" * 32}, {})
    root = tmp_path / "root"
    with pytest.raises(ChecksumError, match="images_background.zip.*\n.*expected md5: " + "f" * 32):
        spec.load("train", root=root, download=True)
    assert _files(root) == []


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_omniglot_malformed_zips(tmp_path) -> None:
    good = png_bytes(np.full((105, 105), 255, dtype=np.uint8))
    cases = {
        "bad image path": {"images_background/Latin/char01/0001_01.png": good},
        "bad image path 'images_evaluation/": {"images_evaluation/Latin/character01/0001_01.png": good},
        "bad image path .*character00": {"images_background/Latin/character00/0001_01.png": good},
        "not a readable PNG": {"images_background/Latin/character01/0001_01.png": b"not a png"},
        "is 28x28, not 105x105": {
            "images_background/Latin/character01/0001_01.png": png_bytes(np.zeros((28, 28), np.uint8))
        },
        "different character numbers": {
            "images_background/Latin/character01/0001_01.png": good,
            "images_background/Latin/character01/0002_02.png": good,
        },
        "no images under images_background/": {"images_background/README.txt": b"hello"},
    }
    for i, (problem, members) in enumerate(cases.items()):
        path = _zip(tmp_path / f"case{i}.zip", members)
        with pytest.raises(FormatError, match=f"case{i}.zip: .*{problem}"):
            read_omniglot_zip(path, "background")
    whole = _zip(tmp_path / "whole.zip", {"images_background/A/character01/0001_01.png": good})
    cut = tmp_path / "cut.zip"
    cut.write_bytes(whole.read_bytes()[:-30])
    with pytest.raises(FormatError, match=r"cut\.zip: zip archive is truncated or corrupt"):
        read_omniglot_zip(cut, "background")


# ----------------------------------------------------------------------------- registry
def test_registry_carries_the_published_urls_and_md5s() -> None:
    cifar = REGISTRY["cifar100"].upstream
    for split in ("train", "test"):
        (archive,) = cifar[split]
        assert archive.path == f"cifar100/{CIFAR_ARCHIVE}"
        assert archive.urls == ("https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",)
        assert archive.digests == ("md5", ("03b5dce01913d631647c71ecec9e9cb8",))
    omniglot = REGISTRY["omniglot"].upstream
    base = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/"
    for part, md5 in (
        ("background", "68d2efa1b9178cc56df9314c21c6e718"),
        ("evaluation", "6b91aef0f799c5bb55b94e3f2daec811"),
    ):
        (archive,) = omniglot[part]
        assert archive.urls == (f"{base}images_{part}.zip",)
        assert archive.digests == ("md5", (md5,))
    assert omniglot["all"] == omniglot["background"] + omniglot["evaluation"]
    assert omniglot["train"] == omniglot["background"] and omniglot["test"] == omniglot["evaluation"]


def test_missing_files_point_to_download(tmp_path) -> None:
    with pytest.raises(MissingFileError) as err:
        load("cifar100", "train", root=tmp_path)
    converted = REGISTRY["cifar100"].splits["train"][0]
    message = str(err.value)
    assert str(tmp_path / converted.path) in message and converted.sha256[0] in message
    assert "download=True" in message and "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz" in message
    with pytest.raises(MissingFileError, match=r"download=True.*images_background\.zip.*images_evaluation\.zip"):
        load("omniglot", "all", root=tmp_path)
    # With one zip present, the other one is what is missing, under its md5.
    (tmp_path / "omniglot").mkdir()
    (tmp_path / "omniglot" / "images_background.zip").write_bytes(b"")
    with pytest.raises(MissingFileError, match=r"images_evaluation\.zip\n.*expected md5: 6b91aef0"):
        load("omniglot", "all", root=tmp_path)


def test_available_counts_the_upstream_archives(tmp_path) -> None:
    for name in ("omniglot/images_background.zip", "omniglot/images_evaluation.zip"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert "omniglot" in available(tmp_path) and "cifar100" not in available(tmp_path)


def test_filespec_needs_a_digest() -> None:
    with pytest.raises(ValueError, match="sha256 or md5"):
        FileSpec("x/y.bin")


# ----------------------------------------------------------------------------- real data
@pytest.mark.data
def test_zip_reader_reproduces_the_real_npz(data_root: Path, tmp_path: Path) -> None:
    """The real evaluation images, zipped under their upstream paths, decode to the npz arrays.

    Two drawers per character keep it fast; every alphabet and character is
    there, so the real folder names' sort order and numbering are exercised.
    """
    with np.load(data_root / "omniglot" / "omniglot-evaluation.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    lines = (data_root / "omniglot" / "omniglot-evaluation-alphabets.txt").read_text().splitlines()
    names = [line.split("\t")[1] for line in lines]
    keep = np.flatnonzero(arrays["drawer"] < 2)
    members = {}
    for i in keep[::-1]:  # reversed, so the reader has to sort
        image = OmniglotImage(
            names[arrays["alphabet"][i]],
            int(arrays["character"][i]) + 1,
            int(arrays["char_id"][i]),
            int(arrays["drawer"][i]) + 1,
            arrays["images"][i],
        )
        members[f"images_evaluation/{image.member}"] = png_bytes(image.pixels)
    decoded = read_omniglot_zip(_zip(tmp_path / "images_evaluation.zip", members), "evaluation")
    assert decoded["alphabet_names"].tolist() == names
    for key in ("images", "alphabet", "character", "char_class", "char_id", "drawer"):
        assert decoded[key].dtype == arrays[key].dtype
        np.testing.assert_array_equal(decoded[key], arrays[key][keep], err_msg=key)
