"""Area downscaling of one image to many sizes: MTCNN's image pyramid, fast.

MTCNN area-resizes the normalised image to about ten sizes per photo ("we
initially resize it to different scales to build an image pyramid", Zhang
et al. 2016, sec. II-A; the ``mtcnn`` package uses TensorFlow's ``AREA``
resize). OpenCV's ``INTER_AREA`` reads the whole image for each size: 7.5 ms
of a 640x480 frame's ~28 ms on one thread here. The compiled helper
``ssrnet_tf.faces._area_pyramid`` makes all sizes in one sweep over the
source rows (vertical pass), then shortens each size's rows (horizontal
pass): 1.6 ms for the same ten sizes, the same box-filter means (largest
difference from OpenCV 5e-7 on [-1, 1] images, float32 rounding).

The extension is built when the package is installed from source with a C
compiler; without it (or for a size larger than the image, which is no
downscale) :func:`area_levels` falls back to OpenCV with the same results.
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np

try:  # built by setup.py; optional
    from ssrnet_tf.faces import _area_pyramid
except ImportError:  # pragma: no cover - depends on the installation
    _area_pyramid = None

#: Whether the compiled pyramid is available (else OpenCV does each size).
COMPILED = _area_pyramid is not None

_Workspace = List[Tuple[int, int, np.ndarray, np.ndarray]]
_workspaces: Dict[Tuple[int, int, int, Tuple[Tuple[int, int], ...]], _Workspace] = {}
_MAX_WORKSPACES = 8


def _workspace(height: int, width: int, channels: int, sizes: Tuple[Tuple[int, int], ...]) -> _Workspace:
    """Scratch and output arrays of one image shape and size list, reused across frames."""
    key = (height, width, channels, sizes)
    work = _workspaces.get(key)
    if work is None:
        if len(_workspaces) >= _MAX_WORKSPACES:
            _workspaces.pop(next(iter(_workspaces)))
        work = [(rows, cols, np.empty((rows, width, channels), np.float32), np.empty((rows, cols, channels), np.float32))
                for rows, cols in sizes]
        _workspaces[key] = work
    return work


def opencv_area_levels(image: np.ndarray, sizes: Sequence[Tuple[int, int]]) -> List[np.ndarray]:
    """The reference: ``cv2.resize(..., INTER_AREA)`` per size."""
    import cv2  # pylint: disable=import-outside-toplevel

    return [cv2.resize(image, (int(cols), int(rows)), interpolation=cv2.INTER_AREA).reshape(int(rows), int(cols), -1)
            for rows, cols in sizes]


def area_levels(image: np.ndarray, sizes: Sequence[Tuple[int, int]]) -> List[np.ndarray]:
    """Area-resized copies of ``image``, one per ``(rows, cols)`` size.

    Args:
        image: ``(H, W, C)`` float32 image.
        sizes: Output sizes; each no larger than the image for the fast path.

    Returns:
        ``(rows, cols, C)`` float32 arrays in the order of ``sizes``. With
        the compiled helper they are reused by the next call with the same
        image shape and sizes: copy what must outlive it.

    Raises:
        ValueError: If ``image`` is not an ``(H, W, C)`` array.
    """
    if image.ndim != 3:
        raise ValueError(f"area_levels: expected an (H, W, C) image, got shape {image.shape}.")
    height, width, channels = image.shape
    sizes = tuple((int(rows), int(cols)) for rows, cols in sizes)
    downscales = all(1 <= rows <= height and 1 <= cols <= width for rows, cols in sizes)
    if _area_pyramid is None or not downscales:
        return opencv_area_levels(image, sizes)
    image = np.ascontiguousarray(image, dtype=np.float32)
    work = _workspace(height, width, channels, sizes)
    _area_pyramid.area_levels(image, height, width, channels, work)
    return [level for _, _, _, level in work]


__all__ = ["COMPILED", "area_levels", "opencv_area_levels"]
