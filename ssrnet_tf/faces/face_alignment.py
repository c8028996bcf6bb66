"""Geometry of face crops: margins, similarity alignment and warping.

Every crop is one affine warp of the source image, described by a 2x3
``matrix`` mapping source pixels to crop pixels, so a box, landmarks or
the whole crop can be mapped either way. Coordinates are OpenCV's: pixel
``(i, j)`` covers ``[j, j+1) x [i, i+1)`` with its centre at ``(j+0.5, i+0.5)``
in the continuous frame used by the templates.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from ssrnet_tf.faces import face_template


def expand_box(box: Sequence[float], margin: float, image_size: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """Grows a box by ``margin`` of its width/height on each side.

    Args:
        box: ``(x1, y1, x2, y2)``.
        margin: Fraction of the box's width (left/right) and height
            (top/bottom) added on each side; ``0.4`` makes a 1.8x box.
        image_size: ``(width, height)``; if given, the result is clipped to
            the image.

    Returns:
        ``(x1, y1, x2, y2)`` float64.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    dx, dy = margin * (x2 - x1), margin * (y2 - y1)
    out = np.array([x1 - dx, y1 - dy, x2 + dx, y2 + dy])
    if image_size is not None:
        width, height = image_size
        out = np.clip(out, 0.0, [width, height, width, height])
    return out


def box_matrix(box: Sequence[float], output_size: Tuple[int, int]) -> np.ndarray:
    """The 2x3 matrix that maps ``box`` onto a ``(height, width)`` crop.

    Matches ``cv2.resize`` of the box's pixels (centre-aligned sampling), so
    an axis-aligned crop through it equals crop-then-resize.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    height, width = output_size
    sx = width / max(x2 - x1, 1e-6)
    sy = height / max(y2 - y1, 1e-6)
    return np.array([[sx, 0.0, (0.5 - x1) * sx - 0.5], [0.0, sy, (0.5 - y1) * sy - 0.5]])


def similarity_matrix(landmarks: np.ndarray, output_size: Tuple[int, int], margin: float) -> np.ndarray:
    """Similarity transform taking five landmarks onto the canonical template.

    Fitted with ``cv2.estimateAffinePartial2D`` (rotation, uniform scale,
    translation; RANSAC with a tolerance of 10 % of the crop side, then a
    least-squares refinement on the inliers, so one wrong landmark does not
    tilt the crop).

    Args:
        landmarks: ``(5, 2)`` source points in
            :data:`ssrnet_tf.faces.face_template.LANDMARK_NAMES` order.
        output_size: ``(height, width)`` of the crop.
        margin: Crop margin (see :func:`face_template.template_points`).

    Returns:
        The 2x3 matrix, or ``None`` if the landmarks are degenerate.
    """
    import cv2  # pylint: disable=import-outside-toplevel

    target = face_template.template_points(output_size, margin)
    side = min(output_size)
    matrix, _ = cv2.estimateAffinePartial2D(
        np.asarray(landmarks, np.float32).reshape(-1, 1, 2),
        target.astype(np.float32).reshape(-1, 1, 2),
        method=cv2.RANSAC,
        ransacReprojThreshold=0.1 * side,
    )
    if matrix is None or not np.all(np.isfinite(matrix)) or abs(np.linalg.det(matrix[:, :2])) < 1e-12:
        return None
    return matrix.astype(np.float64)


def eye_angle(landmarks: np.ndarray) -> float:
    """Angle of the eye line in degrees (positive: the image-right eye is lower)."""
    left, right = np.asarray(landmarks, np.float64)[:2]
    return float(np.degrees(np.arctan2(right[1] - left[1], right[0] - left[0])))


def rotation_matrix(center: Sequence[float], angle_degrees: float) -> np.ndarray:
    """2x3 rotation about ``center`` that turns a line at ``angle_degrees`` level."""
    import cv2  # pylint: disable=import-outside-toplevel

    return cv2.getRotationMatrix2D((float(center[0]), float(center[1])), float(angle_degrees), 1.0)


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2x3 matrix of ``outer(inner(x))``."""
    full = np.vstack([np.asarray(inner, np.float64), [0.0, 0.0, 1.0]])
    return np.asarray(outer, np.float64) @ full


def invert(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix."""
    import cv2  # pylint: disable=import-outside-toplevel

    return cv2.invertAffineTransform(np.asarray(matrix, np.float64))


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Applies a 2x3 matrix to ``(N, 2)`` points."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    return points @ np.asarray(matrix, np.float64)[:, :2].T + np.asarray(matrix, np.float64)[:, 2]


def warp_crop(image: np.ndarray, matrix: np.ndarray, output_size: Tuple[int, int], border: str = "replicate") -> np.ndarray:
    """Samples the ``(height, width)`` crop that ``matrix`` maps out of ``image``.

    Bilinear; parts of the crop outside the image repeat its edge pixels
    (``border="replicate"``) or are black (``"constant"``).
    When the warp shrinks the image by more than 2x, the region it reads
    is first reduced with ``INTER_AREA`` so the crop is not aliased (a
    1,000-pixel face sampled into 64 pixels would otherwise keep one pixel
    in 15); only that region is ever resized, so huge images cost little.

    Args:
        image: ``(H, W, C)`` source.
        matrix: 2x3 source -> crop matrix.
        output_size: ``(height, width)``.
        border: ``"replicate"`` or ``"constant"``.

    Returns:
        The ``(height, width, C)`` crop, same dtype as ``image``.
    """
    import cv2  # pylint: disable=import-outside-toplevel

    height, width = output_size
    matrix = np.asarray(matrix, np.float64)
    scale_x, scale_y = np.linalg.norm(matrix[:, 0]), np.linalg.norm(matrix[:, 1])
    if min(scale_x, scale_y) < 0.5:
        corners = np.array([[0, 0], [width, 0], [0, height], [width, height]], np.float64) - 0.5
        source = transform_points(invert(matrix), corners)
        x0, y0 = np.floor(source.min(0)).astype(int) - 2
        x1, y1 = np.ceil(source.max(0)).astype(int) + 2
        x0, y0 = max(x0, 0), max(y0, 0)
        x1, y1 = min(x1, image.shape[1]), min(y1, image.shape[0])
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            region = image[y0:y1, x0:x1]
            size = (max(1, int(round((x1 - x0) * scale_x))), max(1, int(round((y1 - y0) * scale_y))))
            small = cv2.resize(region, size, interpolation=cv2.INTER_AREA)
            fx, fy = size[0] / (x1 - x0), size[1] / (y1 - y0)
            # small pixel (u, v) <- source x = (u + 0.5) / fx - 0.5 + x0
            to_source = np.array([[1.0 / fx, 0.0, 0.5 / fx - 0.5 + x0], [0.0, 1.0 / fy, 0.5 / fy - 0.5 + y0]])
            image, matrix = small, compose(matrix, to_source)
    border_mode = {"replicate": cv2.BORDER_REPLICATE, "constant": cv2.BORDER_CONSTANT}[border]
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=border_mode)
