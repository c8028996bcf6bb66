"""Face images for int8 calibration and export accuracy checks."""

from __future__ import annotations

import logging
import os
import pathlib
from typing import Optional, Tuple, Union

import numpy as np

from ssrnet_tf.data import images, utkface

logger = logging.getLogger(__name__)


def folder_faces(directory: Union[str, os.PathLike], size: int, limit: int = 300, seed: int = 0) -> np.ndarray:
    """Up to ``limit`` face crops from a folder, as float32 raw BGR batches.

    Unreadable files are skipped with a warning naming them.

    Raises:
        FileNotFoundError: If the folder does not exist.
        ValueError: If it holds no readable image.
    """
    root = pathlib.Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: calibration folder not found.")
    paths = sorted(p for p in root.iterdir() if p.suffix.lower() in utkface.IMAGE_SUFFIXES)
    np.random.default_rng(seed).shuffle(paths)
    faces, skipped = [], 0
    for path in paths:
        if len(faces) >= limit:
            break
        try:
            faces.append(images.read_bgr(path, size=size))
        except ValueError as error:
            skipped += 1
            logger.warning("skipping %s", error)
    if not faces:
        raise ValueError(f"{root}: no readable face images.")
    if skipped:
        logger.warning("%s: %d unreadable files skipped", root, skipped)
    return np.stack(faces).astype(np.float32)


def drawn_faces(size: int, count: int = 64) -> np.ndarray:
    """Drawn faces (:func:`ssrnet_tf.faces.synthetic_face`) as a batch.

    Only for latency benchmarks: calibrating a model for real use needs
    real faces.
    """
    from ssrnet_tf.faces import synthetic_face  # pylint: disable=import-outside-toplevel

    return np.stack([images.resize_square(synthetic_face(200, seed=s), size) for s in range(count)]).astype(np.float32)


def labelled_faces(
    directory: Union[str, os.PathLike], size: int, limit: int = 1000, seed: int = 0, exclude: Optional[set] = None
) -> Tuple[np.ndarray, np.ndarray]:
    """Faces with ages from a UTKFace-style folder (age first in the name)."""
    faces, ages, report = utkface.load_utkface_arrays(directory, limit=limit, size=size, seed=seed)
    if report["skipped"] or report["unreadable"]:
        logger.warning(
            "%s: %d unlabelled and %d unreadable files skipped", directory, report["skipped"], report["unreadable"]
        )
    return faces, ages
