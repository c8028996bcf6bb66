"""Up-front image file checks: which files the input pipeline may use.

:func:`check_image_files` gives each path a verdict: ``None`` (good) or the
reason it is unusable: missing, empty, not an image (its first bytes match
no JPEG/PNG/BMP/GIF signature), or not decodable (a truncated or corrupt
file). The header check is cheap Python; the decode check runs the
pipeline's own in-graph decoder (:func:`ssrnet_tf.data.decode.decode_bgr`)
over all files in a parallel ``tf.data`` pass, so a file that passes is one
the training graph can decode. Files that fail it are decoded once more,
eagerly, to record TensorFlow's message.

Verdicts are cached per ``(path, size, modification time)`` in memory and,
when ``cache_path`` is given, in a JSON file, so a second run (or the
validation split of the same run) does not decode everything again.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import re
import threading
from typing import Dict, Iterable, List, Optional, Tuple, Union

from ssrnet_tf.utils import atomic, quiet

logger = logging.getLogger(__name__)

SIGNATURES = {
    b"\xff\xd8\xff": "jpeg",
    b"\x89PNG\r\n\x1a\n": "png",
    b"BM": "bmp",
    b"GIF87a": "gif",
    b"GIF89a": "gif",
}
LEVELS = ("header", "decode")
CACHE_FORMAT = "ssrnet_tf.file_check"

# (path, size, mtime_ns) -> (level, reason or None)
_VERDICTS: Dict[Tuple[str, int, int], Tuple[str, Optional[str]]] = {}
_LOCK = threading.Lock()


def header_problem(path: Union[str, os.PathLike]) -> Optional[str]:
    """Why ``path`` cannot be an image, judging by existence, size and first bytes.

    Returns:
        ``None`` if the file exists, is not empty and starts with a JPEG,
        PNG, BMP or GIF signature; else the reason.
    """
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return "missing file"
    except OSError as error:
        return f"unreadable file ({error.strerror})"
    if not os.path.isfile(path):
        return "not a regular file"
    if stat.st_size == 0:
        return "empty file (0 bytes)"
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError as error:
        return f"unreadable file ({error.strerror})"
    if not any(head.startswith(signature) for signature in SIGNATURES):
        return f"not an image: header {head[:8]!r} is not JPEG, PNG, BMP or GIF"
    return _size_problem(path)


#: Largest image the in-graph decoder is given (a 100 MP RGB image takes 300 MB).
MAX_DECODE_PIXELS = 100_000_000


def _size_problem(path) -> Optional[str]:
    """Refuses images whose header claims more pixels than :data:`MAX_DECODE_PIXELS`.

    A few hundred bytes can claim 60000x60000 pixels; decoding that would
    take gigabytes. The header is read with Pillow (no pixels are decoded);
    files Pillow cannot identify are left to the decode check.
    """
    import warnings  # pylint: disable=import-outside-toplevel

    try:
        from PIL import Image  # pylint: disable=import-outside-toplevel
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib
        return None
    guard, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as image:
                width, height = image.size
    except Exception:  # pylint: disable=broad-except  # not identifiable: the decode check decides
        return None
    finally:
        Image.MAX_IMAGE_PIXELS = guard
    if width * height > MAX_DECODE_PIXELS:
        return f"image too large to decode safely ({width}x{height} > {MAX_DECODE_PIXELS / 1e6:.0f} MP)"
    return None


def check_image_files(
    paths: Iterable[str],
    *,
    level: str = "decode",
    cache_path: Union[str, os.PathLike, None] = None,
) -> Dict[str, Optional[str]]:
    """Verdicts for image files: ``None`` if usable, else the reason.

    Args:
        paths: Image files.
        level: ``"header"`` (existence, size, signature) or ``"decode"``
            (also a full decode with the pipeline's decoder).
        cache_path: Optional JSON file of cached verdicts (read, then
            rewritten atomically with the new ones).

    Returns:
        ``{path: None or reason}`` for every path.

    Raises:
        ValueError: If ``level`` is unknown.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}.")
    paths = list(dict.fromkeys(str(p) for p in paths))
    disk = _read_cache(cache_path) if cache_path is not None else {}
    verdicts: Dict[str, Optional[str]] = {}
    keys: Dict[str, Tuple[str, int, int]] = {}
    to_check: List[str] = []
    for path in paths:
        key = _key(path)
        if key is None:  # missing or unreadable: no cache, the reason is cheap
            verdicts[path] = header_problem(path)
            continue
        keys[path] = key
        known = _VERDICTS.get(key) or disk.get(key)
        if known is not None and (known[0] == "decode" or level == "header"):
            verdicts[path] = known[1]
        else:
            to_check.append(path)
    header_ok = []
    for path in to_check:
        reason = header_problem(path)
        verdicts[path] = reason
        if reason is None:
            header_ok.append(path)
    new_level = {path: "header" for path in to_check}
    if level == "decode" and header_ok:
        for path, reason in _decode_problems(header_ok).items():
            verdicts[path] = reason
        new_level.update({path: "decode" for path in header_ok})
    with _LOCK:
        for path in to_check:
            if path in keys:
                _VERDICTS[keys[path]] = (new_level[path], verdicts[path])
    if cache_path is not None and to_check:
        disk.update({keys[p]: (new_level[p], verdicts[p]) for p in to_check if p in keys})
        _write_cache(cache_path, disk)
    return verdicts


def forget(paths: Iterable[str]) -> None:
    """Drops in-memory verdicts for ``paths`` (all sizes and times)."""
    paths = {str(p) for p in paths}
    with _LOCK:
        for key in [key for key in _VERDICTS if key[0] in paths]:
            del _VERDICTS[key]


def _decode_problems(paths: List[str]) -> Dict[str, Optional[str]]:
    """Decodes all ``paths`` in a parallel tf.data pass; re-decodes failures for their message."""
    with quiet.native_stderr_silenced():
        return _decode_problems_loud(paths)


def _decode_problems_loud(paths: List[str]) -> Dict[str, Optional[str]]:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from ssrnet_tf.data import decode  # pylint: disable=import-outside-toplevel

    def decodable(path, index):
        image = decode.decode_bgr(tf.io.read_file(path))
        return index, tf.reduce_min(tf.shape(image)[:2])  # uses the decoded image, so it runs

    dataset = (
        # Raw bytes, so that file names that are not valid UTF-8 are read too.
        tf.data.Dataset.from_tensor_slices((tf.constant([os.fsencode(p) for p in paths], dtype=tf.string),
                                            tf.range(len(paths))))
        .map(decodable, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
        .ignore_errors()
        .batch(1024)
    )
    decoded = {}
    for indices, sides in dataset.as_numpy_iterator():
        decoded.update(zip(indices.tolist(), sides.tolist()))
    problems: Dict[str, Optional[str]] = {}
    for index, path in enumerate(paths):
        if index in decoded:
            problems[path] = None if decoded[index] > 0 else "not decodable: image has no pixels"
            continue
        try:
            decode.decode_bgr(tf.io.read_file(os.fsencode(path)))
            problems[path] = "not decodable (failed in the parallel pass only)"
        except (tf.errors.OpError, ValueError) as error:
            problems[path] = f"not decodable: {_short_message(error)}"
    return problems


def _short_message(error: Exception) -> str:
    """TensorFlow's error text without the function-node and op decorations."""
    message = getattr(error, "message", str(error)).strip().splitlines()[0]
    message = re.sub(r"\{\{[^}]*\}\}\s*", "", message)
    message = re.sub(r"\s*\[Op:\w+\]", "", message)
    return re.sub(r"\s*name:\s*$", "", message).strip()[:200]


def _key(path: str) -> Optional[Tuple[str, int, int]]:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return path, stat.st_size, stat.st_mtime_ns


def _read_cache(cache_path) -> Dict[Tuple[str, int, int], Tuple[str, Optional[str]]]:
    path = pathlib.Path(cache_path)
    if not path.is_file():
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
        if document.get("format") != CACHE_FORMAT:
            raise ValueError(f"format {document.get('format')!r}")
        return {(entry[0], int(entry[1]), int(entry[2])): (entry[3], entry[4]) for entry in document["verdicts"]}
    except (OSError, ValueError, KeyError, IndexError, TypeError) as error:
        logger.warning("ignoring unreadable file-check cache %s (%s)", path, error)
        return {}


def _write_cache(cache_path, verdicts) -> None:
    document = {
        "format": CACHE_FORMAT,
        "verdicts": [[p, size, mtime, level, reason] for (p, size, mtime), (level, reason) in sorted(verdicts.items())],
    }
    atomic.atomic_write_bytes(cache_path, json.dumps(document).encode("utf-8"))
