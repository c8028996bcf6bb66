"""Generator of a corpus of bad inputs, and what each command must report.

``python tests/bad_corpus.py OUT`` writes the corpus into ``OUT/photos``
(a flat UTKFace-style folder, so ``evaluate``, ``train``, ``prepare`` and
``predict`` all read it) and ``OUT/labels.csv`` (a label table with bad
rows for ``prepare --labels`` and ``evaluate``). :func:`make_corpus`
returns the expected outcome of every entry, per command: ``"used"``
(read and used as a face), ``"no_face"`` (a readable image without a
detectable face: ``predict``/``prepare`` only) or the start of the reason
it must be reported with. ``tests/test_bad_inputs.py`` runs the commands
and compares their reports with it, entry by entry: nothing may crash, be
dropped silently or be used when it should not.

The good faces are drawn (:func:`ssrnet_tf.faces.synthetic_face`), so the
corpus needs no data set.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import struct
import sys
import zlib
from typing import Dict, List

import cv2
import numpy as np

COMMANDS = ("evaluate", "predict", "prepare")
# The reasons, as the commands word them (prefixes).
NO_AGE = "no integer age before the first '_'"
NOT_JPEG_NAME = "not an image file name"
UNSUPPORTED = "unsupported image format"
HIDDEN = "hidden file"
DANGLING = "dangling symbolic link"
LOOP = "symbolic link loop"
FOLDER = "a folder, not an image file"
SPECIAL = "not a regular file"
EMPTY = "empty file"
NOT_IMAGE = "not an image: header"
NOT_DECODABLE = "not decodable"


@dataclasses.dataclass
class Entry:
    """One corpus entry: its file name (bytes: it may not be UTF-8) and expected outcomes."""

    kind: str
    name: bytes
    evaluate: str
    predict: str
    prepare: str

    def path(self, folder: pathlib.Path) -> pathlib.Path:
        """The entry's path under ``folder`` (``str``, surrogate-escaped if not UTF-8)."""
        return folder / os.fsdecode(self.name)

    def expected(self, command: str) -> str:
        """The expected outcome for ``command``."""
        return getattr(self, command)


def _face(seed: int, size: int = 160) -> np.ndarray:
    from ssrnet_tf.faces import synthetic_face  # pylint: disable=import-outside-toplevel

    return synthetic_face(size, seed=seed)


def _jpeg(image: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def _png(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _corrupt_png() -> bytes:
    """A PNG signature and header, then an image-data chunk of garbage."""
    header = struct.pack(">IIBBBBB", 32, 32, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", b"\x00garbage" * 8)
            + _png_chunk(b"IEND", b""))


def _png_bomb() -> bytes:
    """A valid 300-byte PNG whose header claims 60000x60000 pixels (10.8 GB decoded)."""
    header = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 200))
            + _png_chunk(b"IEND", b""))


def _gif(image: np.ndarray) -> bytes:
    import io  # pylint: disable=import-outside-toplevel

    from PIL import Image  # pylint: disable=import-outside-toplevel

    buffer = io.BytesIO()
    Image.fromarray(image[..., ::-1]).save(buffer, format="GIF")
    return buffer.getvalue()


def _float_tiff(image: np.ndarray) -> bytes:
    """A 3-channel float32 TIFF with values in 0-1 (OpenCV's default decode refuses it)."""
    return cv2.imencode(".tiff", image.astype(np.float32) / 255.0)[1].tobytes()


def make_corpus(root) -> List[Entry]:
    """Writes the corpus under ``root`` and returns its entries.

    Args:
        root: Output folder (``photos/`` and ``labels.csv`` are created).

    Returns:
        The :class:`Entry` list (every entry of ``root/photos``).
    """
    folder = pathlib.Path(root) / "photos"
    folder.mkdir(parents=True, exist_ok=True)
    faces = [_face(seed) for seed in range(4)]
    entries: List[Entry] = []

    def add(kind, name, data, evaluate, predict=None, prepare=None):
        entry = Entry(kind, name.encode() if isinstance(name, str) else name, evaluate,
                      predict if predict is not None else evaluate, prepare if prepare is not None else evaluate)
        if data is not None:
            entry.path(folder).write_bytes(data)
        entries.append(entry)
        return entry

    # Usable faces.
    add("good jpeg", "25_0_0_20170101000000001.jpg", _jpeg(faces[0]), "used")
    add("good png, upper-case suffix", "41_1_2_20170101000000002.PNG", _png(faces[1]), "used")
    add("grayscale png", "52_1_0_20170101000000003.png", _png(cv2.cvtColor(faces[2], cv2.COLOR_BGR2GRAY)), "used",
        predict="no_face", prepare="no_face")  # MTCNN misses the grey drawn face
    rgba = np.dstack([faces[3], np.full(faces[3].shape[:2], 255, np.uint8)])
    add("rgba png", "63_0_1_20170101000000004.png", _png(rgba), "used")
    add("16-bit png", "30_1_3_20170101000000005.png", _png(faces[0].astype(np.uint16) * 257), "used")
    add("file name not valid UTF-8", b"33_0_0_20170101000000006_caf\xe9.jpg", _jpeg(faces[1]), "used")
    add("new line in the file name", "34_1_0_2017\n0101000000007.jpg", _jpeg(faces[2]), "used")
    add("jpeg data under a .png name", "35_0_4_20170101000000008.png", _jpeg(faces[3]), "used")
    link = add("symbolic link to a good face", "36_1_1_20170101000000009.jpg", None, "used")
    os.symlink("25_0_0_20170101000000001.jpg", link.path(folder))
    # Implausible or missing labels.
    add("age 250", "250_0_0_20170101000000010.jpg", _jpeg(faces[0]), "age 250 is outside the plausible range 0-116",
        predict="used")  # predict reads no labels
    add("a year as the age", "2023_0_0_20170101000000011.jpg", _jpeg(faces[1]),
        "age 2023 is outside the plausible range 0-116", predict="used")
    add("no age in the name", "holiday_0_0.jpg", _jpeg(faces[2]), NO_AGE, predict="used")
    add("age and words only", "5_friends.jpg", _jpeg(faces[3]), "used", prepare="the name is not AGE_GENDER_RACE_*")
    # Unusable files with an image name.
    add("empty file", "40_0_0_20170101000000012.jpg", b"", EMPTY, predict="file is empty",
        prepare="file is empty")
    add("truncated jpeg", "41_0_0_20170101000000013.jpg", _jpeg(faces[0])[:600], NOT_DECODABLE,
        predict="not a decodable image", prepare="not a decodable image")
    add("text under a .jpg name", "42_0_0_20170101000000014.jpg", b"this is not an image\n" * 20, NOT_IMAGE,
        predict="not a decodable image", prepare="not a decodable image")
    add("corrupt png data", "43_0_0_20170101000000015.png", _corrupt_png(), NOT_DECODABLE,
        predict="not a decodable image", prepare="not a decodable image")
    add("decompression bomb", "46_1_0_20170101000000026.png", _png_bomb(), "image too large to decode safely",
        predict="too large to decode safely", prepare="60000x60000 PNG image is too large to decode safely")
    add("1x1 pixel image", "44_0_0_20170101000000016.png", _png(np.zeros((1, 1, 3), np.uint8)), "used",
        predict="no_face", prepare="no_face")
    add("a photo without a face", "45_1_0_20170101000000017.jpg", _jpeg(np.full((120, 160, 3), 180, np.uint8)),
        "used", predict="no_face", prepare="no_face")
    # Entries that are not image files.
    add("hidden file", ".46_0_0_20170101000000018.jpg", _jpeg(faces[1]), HIDDEN)
    dangling = add("dangling symbolic link", "47_0_0_20170101000000019.jpg", None, DANGLING)
    os.symlink("does_not_exist.jpg", dangling.path(folder))
    loop = add("symbolic link loop", "48_0_0_20170101000000020.jpg", None, LOOP)
    os.symlink(loop.path(folder).name, loop.path(folder))
    folder_link = add("link to its own folder", "linked_folder", None, FOLDER,
                      predict="symbolic link to a folder already searched",
                      prepare="symbolic link to a folder already searched")
    os.symlink(".", folder_link.path(folder))
    image_dir = add("folder named like an image", "49_0_0_20170101000000021.jpg", None, FOLDER, predict="used",
                    prepare="used")
    image_dir.path(folder).mkdir()
    (image_dir.path(folder) / "50_1_0_20170101000000022.jpg").write_bytes(_jpeg(faces[2]))
    add("gif", "51_0_0_20170101000000023.gif", _gif(faces[3]), UNSUPPORTED)
    add("float32 tiff", "52_0_0_20170101000000024.tif", _float_tiff(faces[0]), NOT_JPEG_NAME, predict="used",
        prepare="used")
    add("text file", "notes.txt", b"shot on a phone\n", NOT_JPEG_NAME)
    fifo = add("named pipe with an image name", "53_0_0_20170101000000025.jpg", None, SPECIAL)
    os.mkfifo(fifo.path(folder))
    _write_labels(pathlib.Path(root))
    return entries


def nested(entries: List[Entry]) -> Dict[str, str]:
    """Files inside sub-folders that a recursive walk (predict, prepare) meets: name -> outcome."""
    return {"49_0_0_20170101000000021.jpg/50_1_0_20170101000000022.jpg": "used"}


#: Rows of labels.csv: (path, age, expected outcome for prepare --labels).
LABEL_ROWS = (
    ("25_0_0_20170101000000001.jpg", "25", "used"),
    ("41_1_2_20170101000000002.PNG", "250", "age 250 is outside the plausible range 0-120"),
    ("52_1_0_20170101000000003.png", "fifty", "age 'fifty' is not a number"),
    ("63_0_1_20170101000000004.png", "-3", "age '-3' is not a non-negative number"),
    ("", "30", "empty path"),
    ("25_0_0_20170101000000001.jpg", "26", "listed more than once"),
    ("missing.jpg", "30", "file not found"),
)


def _write_labels(root: pathlib.Path) -> None:
    lines = ["path,age"] + [f"{path},{age}" for path, age, _ in LABEL_ROWS]
    (root / "labels.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/bad_corpus.py OUT_DIR")
    made = make_corpus(sys.argv[1])
    for item in made:
        print(f"{item.kind:32s} {os.fsdecode(item.name)!r}")
    print(f"{len(made)} entries in {sys.argv[1]}/photos, label table {sys.argv[1]}/labels.csv")
