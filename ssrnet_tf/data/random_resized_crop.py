"""Random-resized crop as projective transforms (one resampling per batch).

torchvision's ``RandomResizedCrop``, which LAE's strong baseline uses ("a
random patch of the images is selected and resized to 224 x 224"): a box
of ``scale`` times the image area and aspect ratio ``ratio`` (drawn
log-uniformly) is placed uniformly at random and stretched back to the full
image size. The boxes are drawn in-graph with stateless ops, one per image.

Where torchvision retries a box that does not fit ten times and then falls
back to a centre crop, a box side here is clipped to the image side, so
every image gets a box drawn from the requested ranges in one pass (the
clipped box keeps the drawn area's side along the other axis).

Reference:
    Bao et al., "LAE: Long-tailed Age Estimation", 2021, section 2.3 (data
    augmentation); torchvision.transforms.RandomResizedCrop.
"""

from __future__ import annotations

import math
from typing import Sequence

import tensorflow as tf

#: torchvision's defaults: 8 %-100 % of the area, aspect ratio 3/4-4/3.
DEFAULT_SCALE = (0.08, 1.0)
DEFAULT_RATIO = (3.0 / 4.0, 4.0 / 3.0)


def validate_ranges(scale: Sequence[float], ratio: Sequence[float]) -> None:
    """Checks the area-fraction and aspect-ratio ranges.

    Raises:
        ValueError: If a range is not two numbers ``0 < low <= high`` (and
            ``high <= 1`` for ``scale``).
    """
    scale, ratio = tuple(scale), tuple(ratio)
    if len(scale) != 2 or not 0 < scale[0] <= scale[1] <= 1:
        raise ValueError(f"crop_scale must be (low, high) with 0 < low <= high <= 1, got {scale}.")
    if len(ratio) != 2 or not 0 < ratio[0] <= ratio[1]:
        raise ValueError(f"crop_ratio must be (low, high) with 0 < low <= high, got {ratio}.")


def crop_matrices(height, width, batch, seed, scale=DEFAULT_SCALE, ratio=DEFAULT_RATIO) -> tf.Tensor:
    """Per-image transforms that stretch a random box to the whole image.

    Output pixel ``(x, y)`` samples the input at ``(x0 + x w / W, y0 + y h /
    H)`` for a box ``(x0, y0, w, h)`` of area ``s W H`` (``s`` uniform in
    ``scale``) and aspect ratio ``w / h = r`` (``log r`` uniform in
    ``log ratio``), placed uniformly inside the image.

    Args:
        height, width: Image size in pixels (scalars).
        batch: Number of images.
        seed: ``(2,)`` stateless seed.
        scale: Range of the box area as a fraction of the image area.
        ratio: Range of the box aspect ratio (width / height).

    Returns:
        ``(batch, 8)`` float32 rows for :func:`ssrnet_tf.data.image_ops.transform`.
    """
    validate_ranges(scale, ratio)
    u = tf.random.stateless_uniform([4, batch], seed)  # (4, batch) in [0, 1)
    area = scale[0] + (scale[1] - scale[0]) * u[0]
    log_low, log_high = math.log(ratio[0]), math.log(ratio[1])
    aspect = tf.exp(log_low + (log_high - log_low) * u[1])
    height_f, width_f = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    box_width = tf.minimum(tf.sqrt(area * aspect) * width_f, width_f)  # (batch,)
    box_height = tf.minimum(tf.sqrt(area / aspect) * height_f, height_f)
    x0 = (width_f - box_width) * u[2]
    y0 = (height_f - box_height) * u[3]
    zeros = tf.zeros_like(x0)
    return tf.stack([box_width / width_f, zeros, x0, zeros, box_height / height_f, y0, zeros, zeros], axis=1)
