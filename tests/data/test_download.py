"""download=True against a file served by a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from _tiny import tiny_mnist

from mtlkit.data import ChecksumError, DataError, DatasetSpec, FileSpec, _builders, download_file


def test_download_verifies_and_moves_atomically(server, tmp_path: Path) -> None:
    url, served = server
    (served / "blob.bin").write_bytes(b"payload" * 1000)
    digest = hashlib.sha256(b"payload" * 1000).hexdigest()
    dest = tmp_path / "root" / "blob.bin"
    download_file(url + "blob.bin", dest, (digest,), timeout=5)
    assert dest.read_bytes() == b"payload" * 1000
    assert [p.name for p in dest.parent.iterdir()] == ["blob.bin"]  # no .part left


def test_download_with_wrong_checksum_leaves_nothing(server, tmp_path: Path) -> None:
    url, served = server
    (served / "blob.bin").write_bytes(b"tampered")
    dest = tmp_path / "root" / "blob.bin"
    with pytest.raises(ChecksumError, match="expected sha256: " + "a" * 64):
        download_file(url + "blob.bin", dest, ("a" * 64,), timeout=5)
    assert list(dest.parent.iterdir()) == []


def test_download_http_error(server, tmp_path: Path) -> None:
    url, _ = server
    with pytest.raises(DataError, match="could not download"):
        download_file(url + "absent.bin", tmp_path / "x.bin", ("a" * 64,), timeout=5)


def test_load_with_download_fetches_missing_files(server, tmp_path: Path, fresh_cache) -> None:
    url, served = server
    digests = tiny_mnist(served)
    files = tuple(
        # The first mirror is dead, so the fallback to the second is exercised too.
        FileSpec(f"mnist/{name}", (sha,), urls=(f"{url}gone/{name}", f"{url}mnist/{name}"))
        for name, sha in digests.items()
    )
    spec = DatasetSpec("tiny", {"train": files}, _builders.build_mnist)
    root = tmp_path / "root"
    ds = spec.load("train", root=root, download=True)
    assert len(ds) == 20
    assert sorted(p.name for p in (root / "mnist").iterdir()) == sorted(digests)
