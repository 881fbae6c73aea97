"""Reader for the upstream Omniglot PNG zips (``images_background.zip``, ``images_evaluation.zip``).

Each zip holds ``images_<part>/<Alphabet>/characterNN/NNNN_DD.png``: 1-bit
105x105 drawings, ``NNNN`` the character's number across both parts and
``DD`` the drawer. :func:`read_omniglot_zip` decodes every PNG with Pillow
into exactly the arrays of the converted npz layout (see
``omniglot/SOURCE.md``), so a dataset built from either source is the same.
Members are read in memory, never extracted.

Decoding the 19,280 background PNGs takes a few seconds, so
:func:`load_or_decode_omniglot_zip` keeps the result in the cache directory,
keyed by the archive's digest. Pixels are only 0 and 255, so they are cached
one bit each (26 MB instead of 212 MB for the background part).
"""

from __future__ import annotations

import io
import itertools
import re
import zipfile
import zlib
from pathlib import Path

import numpy as np

from mtlkit.data._errors import FormatError
from mtlkit.data._npz import cached_arrays

__all__ = ["IMAGE_SIZE", "LABEL_KEYS", "load_or_decode_omniglot_zip", "read_omniglot_zip"]

IMAGE_SIZE = 105
LABEL_KEYS = ("alphabet", "character", "char_class", "char_id", "drawer")
_PNG_PATH = re.compile(
    r"images_(?P<part>[^/]+)/(?P<alphabet>[^/]+)/character(?P<character>\d+)/(?P<char_id>\d+)_(?P<drawer>\d+)\.png"
)


def _skipped(info: zipfile.ZipInfo) -> bool:
    # Folders and metadata an archiver may add (macOS resource forks,
    # .DS_Store) are not images; any other *.png must follow the layout.
    name = info.filename
    return (
        info.is_dir()
        or not name.lower().endswith(".png")
        or name.startswith("__MACOSX/")
        or Path(name).name.startswith(".")
    )


def _decode_png(data: bytes, path: Path, member: str) -> np.ndarray:
    # Imported here: Pillow is only needed by the datasets stored as images.
    from PIL import Image  # noqa: PLC0415 - Pillow, for the datasets stored as images

    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.size != (IMAGE_SIZE, IMAGE_SIZE):
                raise FormatError(path, f"{member} is {img.size[0]}x{img.size[1]}, not {IMAGE_SIZE}x{IMAGE_SIZE}")
            # convert("L") maps a 1-bit image to 0 (ink) and 255 (paper), the npz layout's values.
            return np.asarray(img.convert("L"))
    except (OSError, ValueError, SyntaxError) as exc:  # Pillow's ways of saying "not a PNG"
        raise FormatError(path, f"{member} is not a readable PNG ({exc})") from exc


def read_omniglot_zip(path: Path, part: str) -> dict[str, np.ndarray]:
    """Decode an upstream Omniglot zip into the arrays of the converted npz layout.

    Images are ordered by alphabet folder name, then character number, then
    drawer, as in the npz files. ``alphabet`` indexes ``alphabet_names``
    (the sorted folder names), ``character`` is ``characterNN`` minus 1,
    ``char_class`` numbers the characters of this part in that order,
    ``char_id`` is ``NNNN`` and ``drawer`` is ``DD`` minus 1.

    Args:
        path: ``images_background.zip`` or ``images_evaluation.zip``.
        part: ``"background"`` or ``"evaluation"``; the archive's top folder must be ``images_<part>``.

    Returns:
        ``images`` uint8 ``(N, 105, 105)`` (0 = ink, 255 = background), the
        int16 ``(N,)`` arrays of :data:`LABEL_KEYS`, and ``alphabet_names``
        (a string array).

    Raises:
        FormatError: the zip is truncated or corrupt, holds a PNG at an
            unexpected path, a duplicate drawing, an unreadable or wrongly
            sized image, or no image at all.

    >>> import tempfile
    >>> from PIL import Image
    >>> with tempfile.TemporaryDirectory() as d:
    ...     png = io.BytesIO()
    ...     Image.new("1", (105, 105), 1).save(png, format="PNG")
    ...     with zipfile.ZipFile(Path(d) / "z.zip", "w") as zf:
    ...         zf.writestr("images_background/Latin/character02/0001_03.png", png.getvalue())
    ...     arrays = read_omniglot_zip(Path(d) / "z.zip", "background")
    >>> arrays["images"].shape, int(arrays["images"].min()), arrays["character"].tolist(), arrays["drawer"].tolist()
    ((1, 105, 105), 255, [1], [2])
    """
    try:
        with zipfile.ZipFile(path) as archive:
            rows = []
            for info in archive.infolist():
                if _skipped(info):
                    continue
                match = _PNG_PATH.fullmatch(info.filename)
                if match is None or match["part"] != part or int(match["character"]) < 1 or int(match["drawer"]) < 1:
                    expected = f"images_{part}/<alphabet>/characterNN/NNNN_DD.png"
                    raise FormatError(path, f"bad image path {info.filename!r}; expected {expected}")
                key = (match["alphabet"], int(match["character"]), int(match["drawer"]))
                rows.append((key, int(match["char_id"]), info))
            if not rows:
                raise FormatError(path, f"no images under images_{part}/")
            rows.sort(key=lambda row: row[0])
            images = np.empty((len(rows), IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
            for i, (_, _, info) in enumerate(rows):
                images[i] = _decode_png(archive.read(info), path, info.filename)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise FormatError(path, f"zip archive is truncated or corrupt ({exc})") from exc
    return {"images": images, **_labels(path, [(key, char_id) for key, char_id, _ in rows])}


def _labels(path: Path, rows: list[tuple[tuple[str, int, int], int]]) -> dict[str, np.ndarray]:
    keys = [key for key, _ in rows]
    for prev, key in itertools.pairwise(keys):  # sorted, so duplicates are neighbours
        if prev == key:
            raise FormatError(path, f"two images of {key[0]} character{key[1]:02d} drawer {key[2]:02d}")
    names, alphabet = np.unique([key[0] for key in keys], return_inverse=True)
    character = np.array([key[1] - 1 for key in keys])
    drawer = np.array([key[2] - 1 for key in keys])
    char_id = np.array([char_id for _, char_id in rows])
    # Rows are sorted by (alphabet, character), so a class starts wherever either changes.
    starts = np.ones(len(rows), dtype=bool)
    starts[1:] = (np.diff(alphabet) != 0) | (np.diff(character) != 0)
    char_class = np.cumsum(starts) - 1
    # One character number NNNN per character folder, as the file names promise.
    if np.any(char_id != char_id[np.flatnonzero(starts)][char_class]):
        raise FormatError(path, "images of one character folder carry different character numbers")
    columns = {
        "alphabet": alphabet,
        "character": character,
        "char_class": char_class,
        "char_id": char_id,
        "drawer": drawer,
    }
    return {**{k: v.astype(np.int16) for k, v in columns.items()}, "alphabet_names": names}


def load_or_decode_omniglot_zip(path: Path, part: str, key: str) -> dict[str, np.ndarray]:
    """:func:`read_omniglot_zip` through a cache in :func:`~mtlkit.data.cache_dir`.

    ``key`` must identify the archive's bytes (it includes its digest), so a
    different file never hits a stale cache. Images are cached as packed bits;
    the cache write is atomic and skipped when the cache directory is not
    writable.
    """

    def decode() -> dict[str, np.ndarray]:
        arrays = read_omniglot_zip(path, part)
        images = arrays.pop("images")
        if not np.all((images == 0) | (images == 255)):
            raise FormatError(path, "images are not 1-bit (values other than 0 and 255)")
        return {**arrays, "bits": np.packbits(images == 255, axis=-1)}

    arrays = cached_arrays(key, decode, ("bits", *LABEL_KEYS, "alphabet_names"))
    bits = arrays.pop("bits")
    images = np.unpackbits(bits, axis=-1, count=IMAGE_SIZE)
    images *= 255  # 0 stays ink, 1 becomes 255 (paper)
    return {"images": images, **arrays}
