"""Do two face detectors find the same faces? Box IoU and landmark error.

Used to check that the LiteRT MTCNN backend reproduces the ``mtcnn``
package (:class:`ssrnet_tf.faces.FaceDetector` ``backend="litert"`` vs
``"mtcnn"``) on test frames made from face photos: single faces padded
into a larger frame, and group photos tiled from several faces.
"""

from __future__ import annotations

import dataclasses
from typing import List, Sequence, Tuple

import numpy as np

from ssrnet_tf.faces.face_collage import Placement, paste_faces


def box_iou(first: np.ndarray, second: np.ndarray) -> float:
    """IoU of two ``(x1, y1, x2, y2)`` boxes."""
    width = max(0.0, min(first[2], second[2]) - max(first[0], second[0]))
    height = max(0.0, min(first[3], second[3]) - max(first[1], second[1]))
    inter = width * height
    union = (first[2] - first[0]) * (first[3] - first[1]) + (second[2] - second[0]) * (second[3] - second[1]) - inter
    return float(inter / union) if union > 0 else 0.0


@dataclasses.dataclass
class FramePairing:
    """The faces of one frame found by a reference and a test detector.

    Attributes:
        pairs: ``(reference_index, test_index, iou, landmark_error)``;
            ``landmark_error`` is the largest landmark distance as a fraction
            of the reference eye distance.
        reference_only: Indices of reference faces without a match.
        test_only: Indices of test faces without a match.
    """

    pairs: List[Tuple[int, int, float, float]]
    reference_only: List[int]
    test_only: List[int]


def pair_detections(reference: Sequence, test: Sequence, min_iou: float = 0.5) -> FramePairing:
    """Greedy one-to-one matching of two detection lists by box IoU.

    Args:
        reference, test: :class:`ssrnet_tf.faces.Detection` lists.
        min_iou: Smallest IoU that counts as the same face.
    """
    candidates = sorted(((box_iou(r.box, t.box), i, j) for i, r in enumerate(reference) for j, t in enumerate(test)),
                        reverse=True)
    used_reference, used_test, pairs = set(), set(), []
    for iou, i, j in candidates:
        if iou < min_iou or i in used_reference or j in used_test:
            continue
        used_reference.add(i)
        used_test.add(j)
        eye_distance = float(np.linalg.norm(reference[i].landmarks[0] - reference[i].landmarks[1]))
        error = float(np.linalg.norm(reference[i].landmarks - test[j].landmarks, axis=1).max())
        pairs.append((i, j, iou, error / max(eye_distance, 1e-6)))
    return FramePairing(
        pairs=sorted(pairs),
        reference_only=[i for i in range(len(reference)) if i not in used_reference],
        test_only=[j for j in range(len(test)) if j not in used_test],
    )


def single_face_frame(face: np.ndarray, frame_size: Tuple[int, int], rng: np.random.Generator,
                      seed: int) -> np.ndarray:
    """One face photo at a random place and scale (0.8-1.6x) in a larger noisy frame."""
    width, height = frame_size
    scale = rng.uniform(0.8, 1.6)
    half = 0.5 * scale * max(face.shape[:2])
    center = (rng.uniform(half, width - half), rng.uniform(half, height - half))
    return paste_faces(frame_size, [face], [Placement(center, 0.0, scale)], seed=seed)[0]


def group_frame(faces: Sequence[np.ndarray], frame_size: Tuple[int, int], seed: int) -> np.ndarray:
    """Face photos tiled in a grid (a group photo), each shrunk to fit its cell."""
    width, height = frame_size
    columns = int(np.ceil(np.sqrt(len(faces) * width / height)))
    rows = int(np.ceil(len(faces) / columns))
    cell = min(width / columns, height / rows)
    placements = [Placement(((k % columns + 0.5) * width / columns, (k // columns + 0.5) * height / rows), 0.0,
                            min(1.0, cell / max(face.shape[:2])))
                  for k, face in enumerate(faces)]
    return paste_faces(frame_size, list(faces), placements, seed=seed)[0]


__all__ = ["FramePairing", "box_iou", "group_frame", "pair_detections", "single_face_frame"]
