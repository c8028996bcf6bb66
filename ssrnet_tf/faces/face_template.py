"""The canonical face layout: where the five landmarks sit in a crop.

The template is the UTKFace "aligned & cropped" layout, measured: MTCNN
(``mtcnn`` 1.0, ONet threshold 0.8, boxes not clipped to the image, the
most confident face) was run on 2,000 randomly drawn 200x200 images of
``../shared/data/utkface/UTKFace`` (``random.Random(2024)``); it found a
face in 1,980 (99.0 %). The mean landmark positions, as fractions of the
image side (continuous coordinates, pixel centres at ``i + 0.5``), were:

=============  =========  =========  ====================
landmark       x          y          std (x, y)
=============  =========  =========  ====================
left eye       0.3013     0.2918     0.018, 0.016
right eye      0.6863     0.2929     0.018, 0.015
nose           0.4911     0.5179     0.028, 0.026
mouth left     0.3188     0.6888     0.033, 0.027
mouth right    0.6666     0.6896     0.036, 0.025
=============  =========  =========  ====================

:data:`UTKFACE_TEMPLATE` is that table with the eyes and the mouth corners
levelled (their two ``y`` averaged; the measured eye line is tilted by
0.15 degrees on average). The inter-ocular distance is 0.385 of the crop.

**Margin.** A margin is a fraction of the *detector's* face box on each
side, for every alignment mode: the crop side is ``(1 + 2 * margin)``
times the box side. MTCNN's mean box on those UTKFace images is
0.824 x 1.070 of the image (geometric mean side 0.939, centre at
(0.487, 0.429); it reaches above the image), so the UTKFace layout is a
margin of ``(1 / 0.939 - 1) / 2 = 0.033``: UTKFace crops are *tight*.
:data:`UTKFACE_MARGIN` (0.03) is therefore the margin under which a
similarity-aligned crop reproduces the UTKFace layout; ``margin=0.4`` (the
original SSR-Net demo's) gives a face 1.70x smaller in the crop, which is
what makes a model trained on UTKFace crops fail (MAE > 10) on it.
:func:`measure_layout` repeats the measurement for any set of images.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Tuple

import numpy as np

from ssrnet_tf.faces.face_detector import LANDMARK_NAMES

#: Margin (fraction of the detector box per side) of the UTKFace layout.
UTKFACE_MARGIN = 0.03

#: ``(5, 2)`` landmark positions of the UTKFace layout, as fractions of the
#: crop side (continuous coordinates) at :data:`UTKFACE_MARGIN`, in
#: :data:`LANDMARK_NAMES` order.
UTKFACE_TEMPLATE = np.array(
    [
        [0.3013, 0.2923],  # left eye (image left)
        [0.6863, 0.2923],  # right eye
        [0.4911, 0.5179],  # nose tip
        [0.3188, 0.6892],  # mouth, left corner
        [0.6666, 0.6892],  # mouth, right corner
    ]
)


def template_points(output_size: Tuple[int, int], margin: float = UTKFACE_MARGIN) -> np.ndarray:
    """The template in pixels of a ``(height, width)`` crop at ``margin``.

    A larger margin zooms out about the crop centre: the template is scaled
    by ``(1 + 2 * UTKFACE_MARGIN) / (1 + 2 * margin)``. For a non-square
    crop the template spans the shorter side, centred.

    Args:
        output_size: ``(height, width)`` of the crop in pixels.
        margin: Fraction of the face box added on each side (>= 0).

    Returns:
        ``(5, 2)`` float64 pixel coordinates (pixel centres at integers, as
        OpenCV's warps use them).
    """
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}.")
    height, width = output_size
    zoom = (1.0 + 2.0 * UTKFACE_MARGIN) / (1.0 + 2.0 * margin)
    relative = (UTKFACE_TEMPLATE - 0.5) * zoom  # about the crop centre, in crop sides
    return relative * min(height, width) + np.array([width / 2.0, height / 2.0]) - 0.5


@dataclasses.dataclass(frozen=True)
class FaceLayout:
    """Where a detector finds faces in a set of same-layout crops.

    Attributes:
        landmarks: ``(5, 2)`` mean landmark positions, fractions of the
            image width/height (continuous coordinates).
        landmarks_std: ``(5, 2)`` their standard deviations.
        box: ``(4,)`` mean ``(x1, y1, x2, y2)`` box, fractions of the image.
        margin: The margin this layout corresponds to,
            ``(1 / mean(sqrt(box_w * box_h)) - 1) / 2``.
        eye_angle: Mean eye-line angle in degrees.
        found: Images with a face.
        total: Images measured.
    """

    landmarks: np.ndarray
    landmarks_std: np.ndarray
    box: np.ndarray
    margin: float
    eye_angle: float
    found: int
    total: int

    @property
    def detection_rate(self) -> float:
        """Fraction of the images with a face."""
        return self.found / self.total if self.total else 0.0


def measure_layout(images: Iterable[np.ndarray], detector) -> FaceLayout:
    """Measures the face layout of crops (e.g. a dataset's aligned faces).

    Runs ``detector`` on each image and averages the most confident face's
    landmarks and box, relative to the image size. This is how
    :data:`UTKFACE_TEMPLATE` and :data:`UTKFACE_MARGIN` were obtained.

    Args:
        images: uint8 BGR images.
        detector: A :class:`ssrnet_tf.faces.face_detector.FaceDetector`.

    Returns:
        A :class:`FaceLayout`.

    Raises:
        ValueError: If no face is found at all.
    """
    points, boxes, total = [], [], 0
    for image in images:
        total += 1
        detections = detector.detect(image)
        if not detections:
            continue
        best = detections[0]
        height, width = image.shape[:2]
        scale = np.array([width, height], np.float64)
        points.append((best.landmarks + 0.5) / scale)
        boxes.append(best.box / np.tile(scale, 2))
    if not points:
        raise ValueError(f"no face found in any of the {total} images.")
    points, boxes = np.stack(points), np.stack(boxes)
    sides = np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    eye = points[:, 1] - points[:, 0]
    return FaceLayout(
        landmarks=points.mean(0),
        landmarks_std=points.std(0),
        box=boxes.mean(0),
        margin=float((1.0 / sides.mean() - 1.0) / 2.0),
        eye_angle=float(np.degrees(np.arctan2(eye[:, 1], eye[:, 0])).mean()),
        found=len(points),
        total=total,
    )


__all__ = ["LANDMARK_NAMES", "UTKFACE_MARGIN", "UTKFACE_TEMPLATE", "FaceLayout", "measure_layout", "template_points"]
