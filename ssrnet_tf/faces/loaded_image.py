"""Reading photographs for face detection, whatever they are.

:func:`load_image` turns any image file into the uint8 BGR array the face
pipeline works on, and says in :attr:`LoadedImage.notes` what it had to do:

* **EXIF orientation** is honoured. OpenCV's ``IMREAD_COLOR`` and
  ``IMREAD_REDUCED_COLOR_*`` decoding apply it, but ``IMREAD_UNCHANGED``
  (needed to keep an alpha channel or 16 bits) does not (checked with
  OpenCV 5.0 for all eight orientations, against Pillow's
  ``ImageOps.exif_transpose``), so on that path the tag is read with Pillow
  and applied here.
* **Huge images** are never decoded at full size: a JPEG over
  ``max_pixels`` is decoded at 1/2, 1/4 or 1/8 scale by libjpeg itself
  (a 20,000 x 20,000 photo becomes 2,500 x 2,500 without ever holding the
  1.2 GB full image); other formats are decoded only up to
  ``max_decode_pixels`` and then shrunk. :attr:`LoadedImage.scale` maps the
  returned pixels back to the file's.
* **Grayscale** images become 3-channel BGR; **alpha** channels are
  composited onto white; 16-bit images are reduced to 8 bits.

Errors (missing, empty, undecodable or too large files) raise
:class:`ImageReadError` with the file name and the reason.
"""

from __future__ import annotations

import dataclasses
import io
import os
import pathlib
from typing import List, Optional, Tuple, Union

import numpy as np

from ssrnet_tf.utils.quiet import native_stderr_silenced

PathLike = Union[str, os.PathLike]

#: Default cap on the pixels of a decoded image (about 120 MB as BGR).
MAX_PIXELS = 40_000_000
#: Default cap on a full-size decode of a format without reduced decoding.
MAX_DECODE_PIXELS = 150_000_000
#: File name suffixes treated as images when a folder is scanned.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm", ".pbm", ".jp2")

_EXIF_ORIENTATION = 0x0112
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_GRAY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F")


class ImageReadError(ValueError):
    """An image file that cannot be used; the message names file and reason."""


@dataclasses.dataclass
class LoadedImage:
    """A decoded photograph and how it was decoded.

    Attributes:
        image: ``(H, W, 3)`` uint8 **BGR**, upright (EXIF orientation applied).
        original_size: ``(width, height)`` of the upright image in the file.
        scale: File pixels per pixel of :attr:`image` (1.0 unless the image
            was decoded or shrunk below its full size).
        notes: What was done to the file's pixels, for reports.
    """

    image: np.ndarray
    original_size: Tuple[int, int]
    scale: float = 1.0
    notes: List[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class _Header:
    width: int
    height: int
    mode: str
    format: str
    orientation: int


def _read_header(data: bytes) -> Optional[_Header]:
    """Size, mode and EXIF orientation without decoding pixels (Pillow)."""
    try:
        from PIL import Image  # pylint: disable=import-outside-toplevel
    except ImportError:  # Pillow comes with matplotlib; without it OpenCV decides alone
        return None
    # Only the header is read, so Pillow's decompression-bomb guard (which
    # refuses to even open images over ~179 MP) is lifted for this call;
    # the pixel budget below is what protects memory.
    guard, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with Image.open(io.BytesIO(data)) as handle:
            try:
                orientation = int(handle.getexif().get(_EXIF_ORIENTATION, 1) or 1)
            except Exception:  # pylint: disable=broad-except  # a broken EXIF block is not fatal
                orientation = 1
            mode = handle.mode
            if mode == "P" and "transparency" in handle.info:
                mode = "PA"
            return _Header(handle.width, handle.height, mode, handle.format or "", orientation)
    except Exception:  # pylint: disable=broad-except  # not identifiable by Pillow: let OpenCV try
        return None
    finally:
        Image.MAX_IMAGE_PIXELS = guard


def _apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Applies an EXIF orientation tag (1-8) to decoded pixels."""
    import cv2  # pylint: disable=import-outside-toplevel

    if orientation in (2, 4, 5, 7):
        image = cv2.flip(image, 1)  # mirror first, then rotate as for 1, 3, 6, 8
    rotation = {3: cv2.ROTATE_180, 4: cv2.ROTATE_180, 5: cv2.ROTATE_90_COUNTERCLOCKWISE,
                6: cv2.ROTATE_90_CLOCKWISE, 7: cv2.ROTATE_90_CLOCKWISE, 8: cv2.ROTATE_90_COUNTERCLOCKWISE}
    if orientation in rotation:
        image = cv2.rotate(image, rotation[orientation])
    return image


def _to_bgr_uint8(image: np.ndarray, notes: List[str]) -> np.ndarray:
    """Any OpenCV decode result -> uint8 BGR, compositing alpha onto white."""
    import cv2  # pylint: disable=import-outside-toplevel

    if image.dtype != np.uint8:
        notes.append(f"{image.dtype} pixels reduced to 8 bits")
        if image.dtype == np.uint16:
            image = (image >> 8).astype(np.uint8)
        else:  # float images in 0-1 (the usual convention) are scaled to 0-255; others are clipped
            values = np.nan_to_num(image.astype(np.float32))
            unit = image.dtype.kind == "f" and float(values.max(initial=0.0)) <= 1.0
            image = np.clip(values * (255.0 if unit else 1.0), 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    channels = image.shape[2]
    if channels == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if channels in (2, 4):
        color = image[..., :1] if channels == 2 else image[..., :3]
        alpha = image[..., -1:].astype(np.float32) / 255.0
        color = color.astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        color = np.round(color).astype(np.uint8)
        notes.append("alpha channel composited onto white")
        return cv2.cvtColor(color, cv2.COLOR_GRAY2BGR) if channels == 2 else np.ascontiguousarray(color)
    return image


def _quiet_opencv(cv2) -> None:
    """OpenCV logs errors only (``cv2.utils.logging`` in OpenCV 5, ``cv2.setLogLevel`` in 4.x)."""
    try:
        import cv2.utils.logging as cv_logging  # pylint: disable=import-outside-toplevel

        cv_logging.setLogLevel(cv_logging.LOG_LEVEL_ERROR)
    except (ImportError, AttributeError):
        if hasattr(cv2, "setLogLevel"):
            cv2.setLogLevel(2)  # 2 = LOG_LEVEL_ERROR


def load_image(
    path: PathLike,
    *,
    max_pixels: int = MAX_PIXELS,
    max_decode_pixels: int = MAX_DECODE_PIXELS,
) -> LoadedImage:
    """Reads an image file as upright uint8 BGR, within a pixel budget.

    Args:
        path: The image file.
        max_pixels: Largest image returned, in pixels; bigger images are
            decoded at reduced size (JPEG) or shrunk, and
            :attr:`LoadedImage.scale` records by how much.
        max_decode_pixels: Largest full-size decode allowed for formats
            OpenCV cannot decode at reduced size (PNG, WebP, TIFF, ...).

    Returns:
        A :class:`LoadedImage`.

    Raises:
        ImageReadError: If the file is missing, empty, not a decodable image,
            or too large to decode safely.
    """
    import cv2  # pylint: disable=import-outside-toplevel

    _quiet_opencv(cv2)  # failures are reported, not warned about
    path = pathlib.Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: file not found.")
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        raise ImageReadError(f"{path}: file is empty.")
    with native_stderr_silenced():  # libjpeg/libpng/libtiff complaints: the error below names the file
        return _decode(path, data, max_pixels, max_decode_pixels)


def _decode(path: pathlib.Path, data: np.ndarray, max_pixels: int, max_decode_pixels: int) -> LoadedImage:
    import cv2  # pylint: disable=import-outside-toplevel

    header = _read_header(data.tobytes())
    notes: List[str] = []
    reduction = 1
    if header is not None:
        pixels = header.width * header.height
        if header.mode in _GRAY_MODES:
            notes.append(f"grayscale image (mode {header.mode}) converted to BGR")
        if pixels > max_pixels:
            if header.format == "JPEG":
                reduction = next((r for r in (2, 4, 8) if pixels / (r * r) <= max_pixels), 8)
            elif pixels > max_decode_pixels:
                raise ImageReadError(
                    f"{path}: {header.width}x{header.height} {header.format} image is too large to decode "
                    f"safely ({pixels / 1e6:.0f} MP > {max_decode_pixels / 1e6:.0f} MP; only JPEG files "
                    "can be decoded at reduced size)."
                )
        if reduction > 1:
            flags = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}[reduction]
            image = cv2.imdecode(data, flags)
            if image is not None:  # reduced decoding applies the EXIF orientation itself
                notes.append(f"{header.width}x{header.height} image decoded at 1/{reduction} size")
        elif header.mode in _ALPHA_MODES or header.mode.startswith("I;16"):
            image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)  # keeps alpha/16 bits, ignores EXIF
            if image is not None:
                image = _apply_orientation(_to_bgr_uint8(image, notes), header.orientation)
        else:
            image = cv2.imdecode(data, cv2.IMREAD_COLOR)  # applies the EXIF orientation itself
        if header.orientation not in (1, 0) and image is not None:
            notes.append(f"EXIF orientation {header.orientation} applied")
    else:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:  # e.g. a 32-bit float TIFF, which only the depth-keeping decode reads
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        if image is not None:
            image = _apply_orientation(_to_bgr_uint8(image, notes), header.orientation if header else 1)
    if image is None:
        kind = f" ({header.format} header, mode {header.mode}: damaged or unsupported data)" if header else ""
        raise ImageReadError(f"{path}: not a decodable image{kind} ({data.size} bytes).")
    image = _to_bgr_uint8(image, notes)
    height, width = image.shape[:2]
    original = (width * reduction, height * reduction)
    if header is not None:
        upright_swapped = header.orientation in (5, 6, 7, 8)
        original = (header.height, header.width) if upright_swapped else (header.width, header.height)
    scale = original[0] / width
    if height * width > max_pixels:
        shrink = (max_pixels / float(height * width)) ** 0.5
        size = (max(1, int(width * shrink)), max(1, int(height * shrink)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        notes.append(f"shrunk to {size[0]}x{size[1]} to stay within {max_pixels / 1e6:.0f} MP")
        scale = original[0] / size[0]
    return LoadedImage(image=image, original_size=original, scale=float(scale), notes=notes)
