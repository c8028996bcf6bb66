"""A drawn face, for demos and smoke tests that must run offline."""

from __future__ import annotations

import numpy as np


def synthetic_face(size: int = 200, seed: int = 0) -> np.ndarray:
    """Draws a frontal, centred cartoon face in the UTKFace crop layout.

    The face is drawn with OpenCV primitives (skin ellipse, hair, eyes,
    brows, nose, mouth) and a little pixel noise, so the package can show
    its whole pipeline without a network or a dataset. It is not a real
    face: an age predicted for it only proves that the pipeline runs.

    Args:
        size: Side of the square image in pixels (>= 32).
        seed: Seed of the skin tone jitter and noise.

    Returns:
        ``(size, size, 3)`` uint8 image in **BGR** order.

    Raises:
        ValueError: If ``size`` < 32.
    """
    import cv2  # pylint: disable=import-outside-toplevel

    if size < 32:
        raise ValueError(f"size must be >= 32, got {size}.")
    rng = np.random.default_rng(seed)
    s = size / 200.0

    def pt(x, y):
        return int(round(x * s)), int(round(y * s))

    def ax(a, b):
        return max(1, int(round(a * s))), max(1, int(round(b * s)))

    thick = max(1, int(round(2 * s)))
    image = np.empty((size, size, 3), np.uint8)
    image[:] = (170, 160, 150)  # grey-blue background (BGR)
    skin = tuple(int(c) for c in np.clip(np.array([120, 160, 210]) + rng.integers(-15, 16, 3), 0, 255))
    cv2.ellipse(image, pt(100, 92), ax(70, 92), 0, 180, 360, (40, 50, 60), -1)  # hair
    cv2.rectangle(image, pt(70, 160), pt(130, 200), skin, -1)  # neck
    cv2.ellipse(image, pt(100, 105), ax(62, 82), 0, 0, 360, skin, -1)  # face
    for x in (75, 125):
        cv2.ellipse(image, pt(x, 90), ax(13, 7), 0, 0, 360, (245, 245, 245), -1)
        cv2.circle(image, pt(x, 90), max(1, int(round(5 * s))), (60, 40, 30), -1)
        cv2.ellipse(image, pt(x, 74), ax(16, 5), 0, 200, 340, (40, 50, 60), thick)
    cv2.line(image, pt(100, 95), pt(94, 125), (90, 120, 170), thick)
    cv2.line(image, pt(94, 125), pt(104, 127), (90, 120, 170), thick)
    cv2.ellipse(image, pt(100, 145), ax(22, 9), 0, 10, 170, (80, 80, 170), thick + 1)
    noise = rng.normal(0.0, 4.0, image.shape)
    image = np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    return cv2.GaussianBlur(image, (3, 3), 0)
