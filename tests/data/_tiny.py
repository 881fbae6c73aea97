"""Writers of tiny dataset files in the upstream formats, for reader tests."""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import struct
import tarfile
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding of a uint8 or int32 array (header + big-endian payload)."""
    code = {np.dtype("uint8"): 0x08, np.dtype("int32"): 0x0C}[array.dtype]
    header = struct.pack(">BBBB", 0, 0, code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_gz(path: Path, payload: bytes) -> str:
    """Write ``payload`` gzipped (mtime 0, so bytes are reproducible); return its sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = gzip.compress(payload, mtime=0)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def tiny_mnist(root: Path, n: int = 20, seed: int = 0) -> dict[str, str]:
    """Write a tiny MNIST-layout train split under ``root/mnist``; return sha256 per file."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    return {
        "train-images-idx3-ubyte.gz": write_gz(root / "mnist" / "train-images-idx3-ubyte.gz", idx_bytes(images)),
        "train-labels-idx1-ubyte.gz": write_gz(root / "mnist" / "train-labels-idx1-ubyte.gz", idx_bytes(labels)),
    }


def tiny_cifar_records(n: int = 12, seed: int = 0) -> np.ndarray:
    """``(n, 3074)`` CIFAR-100 binary records in an interleaved (official-like) order.

    Fine labels cycle through a few classes so the order is not sorted; the
    coarse label is ``fine // 5`` as in the real superclass table's shape.
    """
    rng = np.random.default_rng(seed)
    fine = np.array([7, 2, 7, 99, 2, 0] * (n // 6 + 1), dtype=np.uint8)[:n]
    records = np.empty((n, 3074), dtype=np.uint8)
    records[:, 0] = fine // 5
    records[:, 1] = fine
    records[:, 2:] = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    return records


CIFAR_FINE_NAMES = [f"fine{i:02d}" for i in range(100)]
CIFAR_COARSE_NAMES = [f"coarse{i:02d}" for i in range(20)]


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_cifar_archive(path: Path, splits: dict[str, np.ndarray], *, skip: tuple[str, ...] = ()) -> str:
    """Write a ``cifar-100-binary.tar.gz`` holding ``splits`` (name -> records); return its md5.

    Members named in ``skip`` (e.g. ``"coarse_label_names.txt"``) are left out.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    members = {f"{split}.bin": records.tobytes() for split, records in splits.items()}
    members["fine_label_names.txt"] = "\n".join(CIFAR_FINE_NAMES).encode() + b"\n\n"
    members["coarse_label_names.txt"] = "\n".join(CIFAR_COARSE_NAMES).encode() + b"\n\n"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            if name not in skip:
                _tar_add(tar, f"cifar-100-binary/{name}", data)
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_cifar_converted(root: Path, splits: dict[str, np.ndarray]) -> dict[str, str]:
    """The converted layout of the same records (sorted by fine label, xz); sha256 per file."""
    folder = root / "cifar100"
    folder.mkdir(parents=True, exist_ok=True)
    files = {"fine_label_names.txt": "\n".join(CIFAR_FINE_NAMES) + "\n"}
    files["coarse_label_names.txt"] = "\n".join(CIFAR_COARSE_NAMES) + "\n"
    for name, text in files.items():
        (folder / name).write_text(text)
    for split, records in splits.items():
        ordered = records[np.argsort(records[:, 1], kind="stable")]
        (folder / f"{split}.bin.xz").write_bytes(lzma.compress(ordered.tobytes()))
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


class OmniglotImage(NamedTuple):
    """One drawing, described by the fields of the upstream path."""

    alphabet: str
    character: int  # the NN of characterNN (1-based)
    char_id: int  # the NNNN of the file name
    drawer: int  # the DD of the file name (1-based)
    pixels: np.ndarray  # uint8 (105, 105), only 0 (ink) and 255

    @property
    def member(self) -> str:
        return f"{self.alphabet}/character{self.character:02d}/{self.char_id:04d}_{self.drawer:02d}.png"


def tiny_omniglot(alphabets: dict[str, int], drawers: int, first_id: int, seed: int) -> list[OmniglotImage]:
    """Drawings of ``alphabets`` (name -> characters), ``drawers`` each, ids from ``first_id``."""
    rng = np.random.default_rng(seed)
    images, char_id = [], first_id
    for name in sorted(alphabets):
        for character in range(1, alphabets[name] + 1):
            for drawer in range(1, drawers + 1):
                pixels = np.where(rng.random((105, 105)) < 0.1, 0, 255).astype(np.uint8)
                images.append(OmniglotImage(name, character, char_id, drawer, pixels))
            char_id += 1
    return images


def png_bytes(pixels: np.ndarray) -> bytes:
    """A real 1-bit PNG of 0/255 pixels (bool array -> Pillow mode "1")."""
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(pixels == 255).save(out, format="PNG")
    return out.getvalue()


def write_omniglot_zip(path: Path, part: str, images: list[OmniglotImage], seed: int = 0) -> str:
    """``images_<part>.zip`` with the PNGs in shuffled order, plus folder and macOS entries; its md5."""
    path.parent.mkdir(parents=True, exist_ok=True)
    order = np.random.default_rng(seed).permutation(len(images))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"images_{part}/", b"")
        zf.writestr(f"__MACOSX/images_{part}/._{images[0].member}", b"resource fork")
        for i in order:
            zf.writestr(f"images_{part}/{images[i].member}", png_bytes(images[i].pixels))
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_omniglot_npz(root: Path, part: str, images: list[OmniglotImage]) -> dict[str, str]:
    """The converted npz layout of ``images`` per omniglot/SOURCE.md; sha256 per file."""
    folder = root / "omniglot"
    folder.mkdir(parents=True, exist_ok=True)
    images = sorted(images, key=lambda im: (im.alphabet, im.character, im.drawer))
    names = sorted({im.alphabet for im in images})
    classes = sorted({(im.alphabet, im.character) for im in images})
    arrays = {
        "images": np.stack([im.pixels for im in images]),
        "alphabet": np.array([names.index(im.alphabet) for im in images], dtype=np.int16),
        "character": np.array([im.character - 1 for im in images], dtype=np.int16),
        "char_class": np.array([classes.index((im.alphabet, im.character)) for im in images], dtype=np.int16),
        "char_id": np.array([im.char_id for im in images], dtype=np.int16),
        "drawer": np.array([im.drawer - 1 for im in images], dtype=np.int16),
    }
    np.savez_compressed(folder / f"omniglot-{part}.npz", **arrays)
    counts = [len({c for a, c in classes if a == name}) for name in names]
    lines = [f"{i}\t{name}\t{n}" for i, (name, n) in enumerate(zip(names, counts, strict=True))]
    (folder / f"omniglot-{part}-alphabets.txt").write_text("\n".join(lines) + "\n")
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.iterdir()
        if p.name.startswith(f"omniglot-{part}")
    }
