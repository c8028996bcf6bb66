"""In-graph image decoding into the models' input format (uint8 BGR squares).

JPEG, PNG, BMP and GIF (first frame) are decoded to 3 channels: grey
images are replicated, an alpha channel is dropped. JPEGs use the accurate
integer IDCT, so the pixels equal OpenCV's (:func:`ssrnet_tf.data.images.read_bgr`);
resizing is bilinear without antialiasing, as ``cv2.INTER_LINEAR``, and the
result is rounded to uint8 (within one grey level of OpenCV's fixed-point
resize).
"""

from __future__ import annotations

import tensorflow as tf


def decode_bgr(data: tf.Tensor) -> tf.Tensor:
    """Decodes encoded image bytes to ``(height, width, 3)`` uint8 BGR.

    Raises:
        tf.errors.InvalidArgumentError: (when run) for bytes that are not a
            complete JPEG, PNG, BMP or GIF.
    """
    image = tf.cond(
        tf.io.is_jpeg(data),
        lambda: tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(data, channels=3, expand_animations=False),
    )
    image.set_shape([None, None, 3])
    return tf.reverse(image, axis=[-1])  # RGB -> BGR


def resize_square(image: tf.Tensor, size: int) -> tf.Tensor:
    """Bilinear resize of a uint8 image to ``(size, size, 3)`` uint8."""
    resized = tf.image.resize(image, (size, size), method="bilinear", antialias=False)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def load_bgr(path: tf.Tensor, size: int) -> tf.Tensor:
    """Reads, decodes and resizes one image file: ``(size, size, 3)`` uint8 BGR."""
    return resize_square(decode_bgr(tf.io.read_file(path)), size)
