"""The decoded-face cache: every face decoded, cropped and resized once.

Training reads the same faces every epoch, for every seed and every
ablation variant. Decoding a JPEG and resizing it costs more than many of
the augmentations that follow it, so :func:`open_face_cache` decodes each
face once, at the training resolution, into a uint8 array on disk
(``(N, size, size, 3)`` BGR, NumPy ``.npy`` format), and the input pipeline
(:func:`ssrnet_tf.data.pipeline.make_dataset` with ``cache="faces"``)
gathers its batches from a memory map of it; augmentation runs after the
cache, on every batch.

One cache serves every run that reads the same files at the same size and
crop: its name is a digest (:func:`cache_key`) of

* the cache format,
* the input size and the crop settings (``crop``: e.g. the ``prepare``
  settings of a folder of crops, see :func:`crop_settings`),
* every file's path, size and modification time,

so changed data, crop settings or size give a new cache, never a stale one.

A cache is two files in the cache folder::

    faces-<key>.npy    the images (uint8), bad files' rows left black
    faces-<key>.json   its manifest, written last: the commit

The array is written under a temporary name, flushed, fsynced and renamed,
and only then is the manifest written (atomically). A cache whose manifest
is missing, names another key, or whose array has the wrong size or digest
(a kill mid-write, a truncated copy, a disk error) is never read: it is
rebuilt, with a warning. Builds of the same cache by two processes are
serialised by a lock file, so parallel runs decode once.

Files that cannot be decoded are recorded in the manifest with their reason
and reported by the pipeline like any skipped file; they are never dropped
silently.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import pathlib
import time
from typing import Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np

from ssrnet_tf.utils import atomic

logger = logging.getLogger(__name__)

FORMAT = "ssrnet_tf.face_cache/1"
#: Environment variable that moves the default cache folder.
CACHE_DIR_ENV = "SSRNET_TF_CACHE_DIR"
_DIGEST_CHUNK = 64 << 20


def default_cache_dir() -> pathlib.Path:
    """``$SSRNET_TF_CACHE_DIR``, else ``~/.cache/ssrnet_tf/faces``."""
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return pathlib.Path(configured).expanduser()
    return pathlib.Path.home() / ".cache" / "ssrnet_tf" / "faces"


def crop_settings(data_path) -> Dict:
    """The crop settings a folder of faces was made with (``{}`` when unknown).

    ``ssrnet-tf prepare`` writes them to ``OUT/.prepare/settings.json``; a
    dataset such as UTKFace's aligned release has none.
    """
    path = pathlib.Path(data_path)
    for folder in (path, path.parent):
        settings = folder / ".prepare" / "settings.json"
        if settings.is_file():
            try:
                return json.loads(settings.read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:
                raise ValueError(f"{settings}: unreadable crop settings ({error}).") from None
    return {}


def _stamp(path: str) -> str:
    try:
        stat = os.stat(path)
    except OSError as error:
        return f"unreadable:{error.errno}"
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def cache_key(paths: Sequence[str], size: int, crop: Optional[Mapping] = None) -> str:
    """The digest naming the cache of ``paths`` at ``size`` with ``crop`` settings.

    Args:
        paths: The image files, in row order.
        size: Side of the cached squares.
        crop: Crop settings that produced the files (any JSON mapping).

    Returns:
        24 hex digits; any change of format, size, crop, path, file size or
        modification time changes it.
    """
    digest = hashlib.sha256(f"{FORMAT}\n{int(size)}\n{json.dumps(crop or {}, sort_keys=True)}\n".encode())
    for path in paths:
        digest.update(os.fsencode(path) + b"\0" + _stamp(path).encode() + b"\n")
    return digest.hexdigest()[:24]


def _array_digest(array: np.ndarray) -> str:
    digest = hashlib.blake2b(digest_size=16)
    flat = array.reshape(-1)
    for start in range(0, flat.size, _DIGEST_CHUNK):
        digest.update(memoryview(np.ascontiguousarray(flat[start:start + _DIGEST_CHUNK])))
    return digest.hexdigest()


@dataclasses.dataclass
class FaceCache:
    """A built, verified cache.

    Attributes:
        images: ``(N, size, size, 3)`` uint8 BGR, memory-mapped read-only.
        paths: The files, in row order.
        problems: ``{path: reason}`` of files that could not be decoded
            (their rows are black and must not be used).
        size: Side of the squares.
        key: The cache's digest (:func:`cache_key`).
        path: The ``.npy`` file.
        built_seconds: Seconds spent building it in this process (0 if it
            was found on disk).
    """

    images: np.ndarray
    paths: List[str]
    problems: Dict[str, str]
    size: int
    key: str
    path: pathlib.Path
    built_seconds: float = 0.0
    _rows: Optional[Dict[str, int]] = dataclasses.field(default=None, repr=False)

    def rows(self, paths: Iterable[str]) -> np.ndarray:
        """Row of each path (``KeyError`` naming a path the cache does not hold)."""
        if self._rows is None:
            self._rows = {path: row for row, path in enumerate(self.paths)}
        found = []
        for path in paths:
            try:
                found.append(self._rows[str(path)])
            except KeyError:
                raise KeyError(f"{path}: not in the face cache {self.path}") from None
        return np.asarray(found, dtype=np.int64)


def _files(cache_dir: pathlib.Path, key: str):
    return cache_dir / f"faces-{key}.npy", cache_dir / f"faces-{key}.json"


def _load(cache_dir: pathlib.Path, key: str, paths: Sequence[str], size: int) -> Optional[FaceCache]:
    """The cache if it is complete and intact, else ``None`` (with the reason logged)."""
    array_path, manifest_path = _files(cache_dir, key)
    if not manifest_path.is_file():
        if array_path.exists():
            logger.warning("%s: face cache without its manifest (an interrupted build); rebuilding it", array_path)
        return None
    problem = None
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("format") != FORMAT or manifest.get("key") != key:
            problem = "its manifest is of another format or key"
        elif manifest.get("count") != len(paths) or manifest.get("size") != size:
            problem = "its manifest counts other faces"
        else:
            images = np.load(array_path, mmap_mode="r")
            if images.shape != (len(paths), size, size, 3) or images.dtype != np.uint8:
                problem = f"its array is {images.shape} {images.dtype}"
            elif os.path.getsize(array_path) != images.offset + images.nbytes:
                problem = "its array file has trailing or missing bytes"
            elif _array_digest(images) != manifest.get("digest"):
                problem = "its array does not match the manifest's digest (truncated or damaged)"
    except (OSError, ValueError) as error:  # ValueError: bad JSON, or a truncated .npy
        problem = f"it cannot be read ({error})"
    if problem is not None:
        logger.warning("%s: face cache not used, %s; rebuilding it", array_path, problem)
        return None
    return FaceCache(images=images, paths=list(paths), problems=dict(manifest.get("problems") or {}),
                     size=size, key=key, path=array_path)


@contextlib.contextmanager
def _build_lock(cache_dir: pathlib.Path, key: str):
    lock_path = cache_dir / f"faces-{key}.lock"
    with open(lock_path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _decode_into(images: np.ndarray, paths: Sequence[str], size: int) -> Dict[str, str]:
    """Decodes every file into ``images`` with the pipeline's decoder; returns the failures' reasons."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from ssrnet_tf.data import decode, file_check  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.utils import quiet  # pylint: disable=import-outside-toplevel

    encoded = tf.constant([os.fsencode(p) for p in paths], dtype=tf.string)
    dataset = (
        tf.data.Dataset.range(len(paths))
        .map(lambda i: (i, decode.load_bgr(tf.gather(encoded, i), size)),
             num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
        .ignore_errors()
        .batch(256)
        .prefetch(2)
    )
    done = np.zeros(len(paths), dtype=bool)
    started, reported = time.time(), 0
    with quiet.native_stderr_silenced():
        for rows, batch in dataset.as_numpy_iterator():
            images[rows] = batch
            done[rows] = True
            count = int(done.sum())
            if count - reported >= max(1000, len(paths) // 10) or count == len(paths):
                reported = count
                rate = count / max(time.time() - started, 1e-9)
                logger.info("face cache: %d / %d faces decoded (%.0f faces/s)", count, len(paths), rate)
    failed = [path for path, ok in zip(paths, done) if not ok]
    if not failed:
        return {}
    verdicts = file_check.check_image_files(failed, level="decode")
    return {path: verdicts.get(path) or "could not be decoded" for path in failed}


def _build(cache_dir: pathlib.Path, key: str, paths: Sequence[str], size: int) -> FaceCache:
    array_path, manifest_path = _files(cache_dir, key)
    manifest_path.unlink(missing_ok=True)  # from here on the old array is not trusted
    atomic.remove_temp_files(cache_dir, recursive=False, prefix="faces-")  # left by killed builds
    tmp = cache_dir / f"{atomic.temp_prefix(array_path)}tmp.npy"
    started = time.time()
    logger.info("face cache: decoding %d faces at %d px into %s", len(paths), size, array_path)
    try:
        images = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(paths), size, size, 3))
        problems = _decode_into(images, paths, size)
        images.flush()
        digest = _array_digest(images)
        del images
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, array_path)
    finally:
        if tmp.exists():
            tmp.unlink()
    manifest = {"format": FORMAT, "key": key, "count": len(paths), "size": size, "digest": digest,
                "problems": problems, "built": time.strftime("%Y-%m-%dT%H:%M:%S")}
    atomic.atomic_write_bytes(manifest_path, json.dumps(manifest, indent=1).encode())
    seconds = time.time() - started
    logger.info("face cache: %d faces in %.1f s (%d could not be decoded)", len(paths), seconds, len(problems))
    return FaceCache(images=np.load(array_path, mmap_mode="r"), paths=list(paths), problems=problems, size=size,
                     key=key, path=array_path, built_seconds=seconds)


def open_face_cache(paths: Sequence[str], size: int, cache_dir=None, crop: Optional[Mapping] = None) -> FaceCache:
    """The cache of ``paths`` at ``size``: read from ``cache_dir`` if intact, else built there.

    Args:
        paths: Image files, in row order (duplicates allowed).
        size: Side of the cached squares (the model's input size).
        cache_dir: Folder of the caches (default :func:`default_cache_dir`).
        crop: Crop settings the files were made with (part of the key).

    Returns:
        The verified :class:`FaceCache`.

    Raises:
        OSError: If the cache folder cannot be written, naming it.
    """
    paths = [str(p) for p in paths]
    unique = list(dict.fromkeys(paths))
    cache_dir = pathlib.Path(cache_dir) if cache_dir else default_cache_dir()
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(f"{cache_dir}: cannot create the face cache folder ({error.strerror}); "
                      "set data.cache_dir (or $SSRNET_TF_CACHE_DIR) to a writable folder, or data.cache=memory.") from None
    key = cache_key(unique, size, crop)
    cache = _load(cache_dir, key, unique, size)
    if cache is None:
        with _build_lock(cache_dir, key):
            cache = _load(cache_dir, key, unique, size)  # another process may have built it meanwhile
            if cache is None:
                cache = _build(cache_dir, key, unique, size)
    return cache
