"""Reading face images into the models' raw-pixel input format."""

from __future__ import annotations

import os
import pathlib
from typing import Union

import numpy as np


def read_bgr(path: Union[str, os.PathLike], size: int | None = None) -> np.ndarray:
    """Reads an image file as uint8 BGR, optionally resized to a square.

    Args:
        path: Image file (anything OpenCV decodes).
        size: Side of the square output, resized with bilinear
            interpolation; ``None`` keeps the original size.

    Returns:
        ``(H, W, 3)`` uint8 array in BGR order.

    Raises:
        ValueError: Naming the file if it is missing or cannot be decoded.
    """
    import cv2  # pylint: disable=import-outside-toplevel

    path = pathlib.Path(path)
    data = np.fromfile(path, dtype=np.uint8) if path.is_file() else None
    if data is None or data.size == 0:
        raise ValueError(f"{path}: file is missing or empty.")
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: not a decodable image.")
    if size is not None:
        image = resize_square(image, size)
    return image


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Resizes an ``(H, W, 3)`` image to ``(size, size, 3)`` (bilinear)."""
    import cv2  # pylint: disable=import-outside-toplevel

    return cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)
