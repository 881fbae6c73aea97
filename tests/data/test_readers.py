"""Format readers, checksums and error messages, on tiny generated files."""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from _tiny import idx_bytes, tiny_mnist, write_gz
from PIL import Image

from mtlkit.data import (
    REGISTRY,
    ChecksumError,
    DatasetSpec,
    FileSpec,
    FormatError,
    MissingFileError,
    _builders,
    _npz,
    _root,
    load,
    resolve_root,
    verify_file,
)
from mtlkit.data._cifar import RECORD_BYTES, read_cifar100_records
from mtlkit.data._idx import read_idx


# ----------------------------------------------------------------------------- IDX
def test_idx_round_trip_gz_and_raw(tmp_path: Path) -> None:
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_gz(tmp_path / "a.gz", idx_bytes(images))
    (tmp_path / "a.raw").write_bytes(idx_bytes(images))
    for name in ("a.gz", "a.raw"):
        out = read_idx(tmp_path / name)
        assert out.dtype == np.uint8 and out.flags.writeable
        np.testing.assert_array_equal(out, images)


def test_idx_multibyte_values_come_back_native() -> None:
    values = np.array([-1, 7, 2**30], dtype=np.int32)
    out = read_idx(idx_bytes(values))
    assert out.dtype == np.dtype("int32") and out.tolist() == values.tolist()


def test_idx_truncated_payload_is_an_error(tmp_path: Path) -> None:
    blob = idx_bytes(np.zeros((5, 28, 28), dtype=np.uint8))[:-100]
    write_gz(tmp_path / "short.gz", blob)
    with pytest.raises(FormatError, match=r"promises 3920 payload bytes, found 3820 \(truncated\)"):
        read_idx(tmp_path / "short.gz")


def test_idx_truncated_gzip_stream_is_an_error(tmp_path: Path) -> None:
    data = gzip.compress(idx_bytes(np.ones((50, 28, 28), dtype=np.uint8)))
    (tmp_path / "cut.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match=r"cut\.gz.*truncated or corrupt"):
        read_idx(tmp_path / "cut.gz")


def test_idx_bad_magic() -> None:
    with pytest.raises(FormatError, match="bad IDX magic"):
        read_idx(b"\x01\x00\x08\x01\x00\x00\x00\x00")


# ----------------------------------------------------------------------------- CIFAR
def _records(n: int) -> tuple[bytes, np.ndarray]:
    rng = np.random.default_rng(1)
    records = rng.integers(0, 256, size=(n, RECORD_BYTES), dtype=np.uint8)
    records[:, 0] = np.arange(n) % 20
    records[:, 1] = np.arange(n) % 100
    return records.tobytes(), records


def test_cifar_records_raw_and_xz() -> None:
    blob, records = _records(7)
    for data in (blob, lzma.compress(blob)):
        images, fine, coarse = read_cifar100_records(data, expected_records=7)
        assert images.shape == (7, 3, 32, 32) and images.flags.writeable
        # Plane order: R plane is bytes 2..1025, row-major.
        np.testing.assert_array_equal(images[3, 0, 0, :32], records[3, 2:34])
        np.testing.assert_array_equal(images[3, 2].ravel(), records[3, 2 + 2048 :])
        assert fine.tolist() == records[:, 1].tolist() and coarse.tolist() == records[:, 0].tolist()


def test_cifar_partial_record_and_wrong_count() -> None:
    blob, _ = _records(3)
    with pytest.raises(FormatError, match="not a whole number of 3074-byte records"):
        read_cifar100_records(blob[:-5])
    with pytest.raises(FormatError, match="expected 4 records, found 3"):
        read_cifar100_records(blob, expected_records=4)
    with pytest.raises(FormatError, match="truncated or corrupt"):
        read_cifar100_records(lzma.compress(blob)[:-40])


# ----------------------------------------------------------------------------- npz
def test_npz_refuses_pickled_members(tmp_path: Path) -> None:
    np.savez(tmp_path / "obj.npz", a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(FormatError, match="pickle-free"):
        _npz.read_npz(tmp_path / "obj.npz", ("a",))


def test_npz_truncated_archive(tmp_path: Path) -> None:
    np.savez_compressed(tmp_path / "ok.npz", a=np.arange(1000))
    data = (tmp_path / "ok.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match=r"cut\.npz"):
        _npz.read_npz(tmp_path / "cut.npz", ("a",))


def _jpeg_npz(path: Path, colours: list[tuple[int, int, int]]) -> None:
    blobs = []
    for colour in colours:
        buf = io.BytesIO()
        Image.new("RGB", (8, 6), colour).save(buf, format="JPEG", quality=95)
        blobs.append(np.frombuffer(buf.getvalue(), dtype=np.uint8))
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in blobs])])
    np.savez(path, jpeg=np.concatenate(blobs), offsets=offsets)


def test_jpeg_blob_decodes_and_caches(tmp_path: Path, fresh_cache: Path, monkeypatch) -> None:
    colours = [(255, 0, 0), (0, 128, 255), (10, 200, 30)]
    _jpeg_npz(tmp_path / "faces.npz", colours)
    images = _npz.load_or_decode_jpegs(tmp_path / "faces.npz", 3, (6, 8, 3), key="k")
    assert images.shape == (3, 3, 6, 8)
    means = images.reshape(3, 3, -1).mean(-1)
    np.testing.assert_allclose(means, np.array(colours), atol=3)
    assert (fresh_cache / "k.npy").exists()

    def no_decode(*args: object, **kwargs: object) -> None:
        raise AssertionError("cache hit must not decode")

    monkeypatch.setattr(_npz, "decode_jpeg_blob", no_decode)
    again = _npz.load_or_decode_jpegs(tmp_path / "faces.npz", 3, (6, 8, 3), key="k")
    np.testing.assert_array_equal(again, images)


# ----------------------------------------------------------------------------- checksums
def test_verify_caches_verdict_by_size_and_mtime(tmp_path: Path, fresh_cache, monkeypatch) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"hello")
    good = hashlib.sha256(b"hello").hexdigest()
    assert verify_file(path, (good,)) == good
    assert (fresh_cache / "verified-sha256.json").exists()

    # A new process (fresh in-memory state) trusts the on-disk verdict.
    monkeypatch.setattr(_root, "_verdicts", {})
    monkeypatch.setattr(_root, "_verdicts_loaded", False)
    calls = []
    real = _root.sha256_of
    monkeypatch.setattr(_root, "sha256_of", lambda p: calls.append(p) or real(p))
    verify_file(path, (good,))
    assert calls == []

    # Changing the file (size and mtime) invalidates the verdict.
    path.write_bytes(b"hello!")
    os.utime(path, ns=(1, 1))
    with pytest.raises(ChecksumError):
        verify_file(path, (good,))
    assert calls == [path]


def test_verify_works_with_unwritable_cache(tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    monkeypatch.setenv("MTLKIT_CACHE", str(blocker / "cache"))
    monkeypatch.setattr(_root, "_verdicts", {})
    monkeypatch.setattr(_root, "_verdicts_loaded", False)
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    assert verify_file(path, (hashlib.sha256(b"abc").hexdigest(),))


def test_resolve_root_precedence(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MTLKIT_DATA", str(tmp_path / "env"))
    assert resolve_root(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_root() == tmp_path / "env"
    monkeypatch.delenv("MTLKIT_DATA")
    assert resolve_root() == Path.home() / ".cache" / "mtlkit"


# ----------------------------------------------------------------------------- registry path
def _tiny_spec(digests: dict[str, str]) -> DatasetSpec:
    files = tuple(FileSpec(f"mnist/{name}", (sha,)) for name, sha in digests.items())
    return DatasetSpec("tiny", {"train": files}, _builders.build_mnist, {"train": 20})


def test_load_tiny_files_through_registry(tmp_path: Path, fresh_cache) -> None:
    digests = tiny_mnist(tmp_path)
    ds = _tiny_spec(digests).load("train", root=tmp_path)
    assert ds.images.shape == (20, 1, 28, 28) and ds.images.dtype == torch.uint8
    assert ds.labels["label"].tolist() == [i % 10 for i in range(20)]
    assert ds.classes["label"][3] == "3"


def test_wrong_checksum_names_path_expected_and_actual(tmp_path: Path, fresh_cache) -> None:
    digests = tiny_mnist(tmp_path)
    wrong = dict(digests, **{"train-labels-idx1-ubyte.gz": "0" * 64})
    with pytest.raises(ChecksumError) as err:
        _tiny_spec(wrong).load("train", root=tmp_path)
    message = str(err.value)
    assert str(tmp_path / "mnist" / "train-labels-idx1-ubyte.gz") in message
    assert "0" * 64 in message and digests["train-labels-idx1-ubyte.gz"] in message


def test_truncated_file_fails_checksum_and_format(tmp_path: Path, fresh_cache) -> None:
    digests = tiny_mnist(tmp_path)
    path = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    payload = gzip.decompress(path.read_bytes())[:-784]  # one image short
    digests["train-images-idx3-ubyte.gz"] = write_gz(path, payload)
    with pytest.raises(ChecksumError, match="train-images"):
        _tiny_spec(tiny_mnist(tmp_path / "other")).load("train", root=tmp_path)
    # Even if a registry accepted those bytes, the reader refuses the short file.
    with pytest.raises(FormatError, match="truncated"):
        _tiny_spec(digests).load("train", root=tmp_path)


def test_missing_file_names_path_checksum_and_source(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError) as err:
        load("mnist", "test", root=tmp_path)
    message = str(err.value)
    expected = REGISTRY["mnist"].splits["test"][0]
    assert str(tmp_path / expected.path) in message
    assert expected.sha256[0] in message
    assert "download=True" in message and "https://" in message
    assert isinstance(err.value, FileNotFoundError)


def test_missing_file_without_url_points_to_source_md(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match=r"notmnist/SOURCE\.md"):
        load("notmnist", "all", root=tmp_path)


def test_unknown_name_and_split() -> None:
    with pytest.raises(ValueError, match="unknown dataset"):
        load("imagenet")
    with pytest.raises(ValueError, match="splits"):
        load("mnist", "valid", root="/nonexistent")
