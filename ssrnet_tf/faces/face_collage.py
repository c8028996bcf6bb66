"""Group photos with known geometry, made by pasting face crops.

For tests and demos of multi-face detection: each face crop is rotated,
scaled and pasted onto a noisy grey canvas, and the 2x3 matrix that placed
it is returned, so where its box and landmarks must be found is known.
"""

from __future__ import annotations

import dataclasses
from typing import List, Sequence, Tuple

import numpy as np


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where one face goes.

    Attributes:
        center: ``(x, y)`` canvas position of the crop's centre.
        angle: Rotation in degrees, counter-clockwise as seen.
        scale: Size on the canvas relative to the crop.
    """

    center: Tuple[float, float]
    angle: float = 0.0
    scale: float = 1.0


def paste_faces(
    canvas_size: Tuple[int, int],
    faces: Sequence[np.ndarray],
    placements: Sequence[Placement],
    seed: int = 0,
) -> Tuple[np.ndarray, List[np.ndarray]]:
    """Pastes face crops onto a canvas.

    Args:
        canvas_size: ``(width, height)``.
        faces: uint8 BGR crops (e.g. UTKFace images).
        placements: One :class:`Placement` per face.
        seed: Seed of the canvas noise.

    Returns:
        ``(canvas, matrices)``: the uint8 BGR canvas and, per face, the 2x3
        matrix mapping crop pixels to canvas pixels.

    Raises:
        ValueError: If ``faces`` and ``placements`` differ in length.
    """
    import cv2  # pylint: disable=import-outside-toplevel

    if len(faces) != len(placements):
        raise ValueError(f"{len(faces)} faces but {len(placements)} placements.")
    width, height = canvas_size
    rng = np.random.default_rng(seed)
    canvas = np.clip(128.0 + rng.normal(0.0, 8.0, (height, width, 3)), 0, 255).astype(np.uint8)
    matrices = []
    for face, place in zip(faces, placements):
        face_height, face_width = face.shape[:2]
        matrix = cv2.getRotationMatrix2D((face_width / 2.0, face_height / 2.0), place.angle, place.scale)
        matrix[:, 2] += np.asarray(place.center, np.float64) - [face_width / 2.0, face_height / 2.0]
        mask = cv2.warpAffine(np.full((face_height, face_width), 255, np.uint8), matrix, (width, height))
        warped = cv2.warpAffine(face, matrix, (width, height))
        inside = mask > 127
        canvas[inside] = warped[inside]
        matrices.append(matrix)
    return canvas, matrices
