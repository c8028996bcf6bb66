"""Drawing predictions onto a copy of a photograph."""

from __future__ import annotations

from typing import Dict, Sequence

import numpy as np


def draw_faces(image_bgr: np.ndarray, faces: Sequence[Dict], scale: float = 1.0) -> np.ndarray:
    """Draws boxes, landmarks and ages onto a copy of ``image_bgr``.

    Args:
        image_bgr: uint8 BGR image.
        faces: Face entries as ``ssrnet-tf predict`` prints them
            (``"box"``, ``"landmarks"`` and optionally ``"age"``).
        scale: Coordinates in ``faces`` per pixel of ``image_bgr`` (the
            :attr:`LoadedImage.scale` of a reduced-size decode).

    Returns:
        The annotated copy.
    """
    import cv2  # pylint: disable=import-outside-toplevel

    canvas = image_bgr.copy()
    thickness = max(1, int(round(max(canvas.shape[:2]) / 400)))
    for face in faces:
        x1, y1, x2, y2 = (int(round(v / scale)) for v in face["box"])
        cv2.rectangle(canvas, (x1, y1), (x2, y2), (0, 255, 0), thickness)
        for x, y in face.get("landmarks", {}).values():
            cv2.circle(canvas, (int(round(x / scale)), int(round(y / scale))), thickness + 1, (0, 0, 255), -1)
        if "age" in face:
            label = f"{face['age']:.1f}"
            font_scale = max(0.4, (x2 - x1) / 160.0)
            (w, h), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
            top = max(y1, h + base + 2)
            cv2.rectangle(canvas, (x1, top - h - base - 2), (x1 + w + 4, top), (0, 255, 0), -1)
            cv2.putText(canvas, label, (x1 + 2, top - base), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), thickness)
    return canvas
