"""RandAugment on batches of raw BGR faces, every image with its own operations.

Each of ``num_ops`` rounds picks, independently for every image, one
operation uniformly from :data:`OPERATIONS` and a random sign, and applies
it at the strength set by the magnitude ``M`` (0..10, the paper's scale;
``m = M / 10``):

===============  ==========================================  ============
operation        at magnitude m                              m = 0.9
===============  ==========================================  ============
identity         -                                           -
auto_contrast    stretch each channel to [0, 255]            -
equalize         histogram-equalise each channel             -
rotate           +-30 m degrees                              +-27 deg
solarize         invert pixels >= 256 - 128 m                >= 141
color            saturation factor 1 +- 0.9 m                0.19..1.81
posterize        keep 8 - round(4 m) bits                    4 bits
contrast         contrast factor 1 +- 0.9 m                  0.19..1.81
brightness       brightness factor 1 +- 0.9 m                0.19..1.81
sharpness        sharpness factor 1 +- 0.9 m                 0.19..1.81
shear_x/shear_y  shear factor +-0.3 m                        +-0.27
translate_x/_y   +-0.45 m of the image side                  +-0.41
===============  ==========================================  ============

The geometric maxima are those of the paper / timm ("rand-m9-n2");
solarize and posterize grow stronger with ``M`` (the original code's
solarize grows weaker). Each round splits the batch by the operation each
image drew (``tf.dynamic_partition``) and runs every operation only on its
images, so a round costs about one operation over the batch.

Why not ``keras.layers.RandAugment``: it accepts 0-255 floats with
``value_range=(0, 255)``, but it draws the operations once per *batch*,
maps its ``factor`` straight to each layer (``factor=0.9`` rotates by up to
0.9 x 360 degrees), and evaluates all eleven layers per round (about 130
images/s at 64x64 on two CPU cores).

Reference:
    Cubuk, Zoph, Shlens and Le, "RandAugment: Practical Automated Data
    Augmentation with a Reduced Search Space", CVPR Workshops 2020.
"""

from __future__ import annotations

import math
from typing import Sequence

import tensorflow as tf

from ssrnet_tf.data import image_ops

OPERATIONS = (
    "identity", "auto_contrast", "equalize", "rotate", "solarize", "color", "posterize",
    "contrast", "brightness", "sharpness", "shear_x", "shear_y", "translate_x", "translate_y",
)
MAX_ROTATION_DEGREES = 30.0
MAX_SHEAR = 0.3
MAX_TRANSLATE = 0.45
MAX_ENHANCE = 0.9


def rand_augment(
    images: tf.Tensor,
    seed: tf.Tensor,
    *,
    num_ops: int = 2,
    magnitude: float = 9.0,
    operations: Sequence[str] = OPERATIONS,
    fill_mode: str = "reflect",
) -> tf.Tensor:
    """Applies ``num_ops`` random operations to each image.

    Args:
        images: ``(batch, height, width, 3)`` float32 BGR in [0, 255].
        seed: ``(2,)`` integer seed of the stateless random draws.
        num_ops: Operations per image (the paper's N).
        magnitude: Strength on the paper's 0..10 scale (M).
        operations: The operations to draw from (a subset of
            :data:`OPERATIONS`).
        fill_mode: How geometric operations fill uncovered pixels.

    Returns:
        Augmented images, same shape, in [0, 255].

    Raises:
        ValueError: For an unknown operation or a magnitude outside 0..10.
    """
    unknown = sorted(set(operations) - set(OPERATIONS))
    if unknown or not operations:
        raise ValueError(f"unknown RandAugment operations {unknown}; choose from {OPERATIONS}.")
    if not 0.0 <= magnitude <= 10.0:
        raise ValueError(f"magnitude must be in [0, 10], got {magnitude}.")
    operations = tuple(operations)
    images = tf.cast(images, tf.float32)
    m = magnitude / 10.0
    batch = tf.shape(images)[0]
    for round_seed in tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num_ops)):
        op_seed, sign_seed = tf.unstack(tf.random.experimental.stateless_split(round_seed, 2))
        chosen = tf.random.stateless_uniform([batch], op_seed, minval=0, maxval=len(operations), dtype=tf.int32)
        sign = tf.where(tf.random.stateless_uniform([batch], sign_seed) < 0.5, -1.0, 1.0)
        images = image_ops.apply_by_group(
            images, chosen, [_operation(name, sign, m, fill_mode) for name in operations])
    return tf.clip_by_value(images, 0.0, 255.0)


def _operation(name: str, sign: tf.Tensor, m: float, fill_mode: str):
    """``function(images, rows)`` for :func:`image_ops.apply_by_group` (``None`` for identity)."""

    def signed(rows, maximum, neutral=0.0):
        return neutral + tf.gather(sign, rows) * maximum * m

    def geometric(**parameters):
        def function(images, rows):
            height, width = tf.shape(images)[1], tf.shape(images)[2]
            size = {"translate_x": tf.cast(width, tf.float32), "translate_y": tf.cast(height, tf.float32)}
            values = {key: signed(rows, maximum * size.get(key, 1.0)) for key, maximum in parameters.items()}
            matrices = image_ops.affine_matrices(height, width, **values)
            # Group sizes vary from batch to batch: no XLA path (it compiles per size).
            return image_ops.transform(images, matrices, interpolation="bilinear", fill_mode=fill_mode, compiled=False)
        return function

    def enhance(adjust):
        return lambda images, rows: adjust(images, signed(rows, MAX_ENHANCE, 1.0))

    operations = {
        "identity": None,
        "auto_contrast": lambda images, rows: image_ops.auto_contrast(images),
        "equalize": lambda images, rows: image_ops.equalize(images),
        "rotate": geometric(rotation=MAX_ROTATION_DEGREES * math.pi / 180.0),
        "solarize": lambda images, rows: image_ops.solarize(images, tf.fill(tf.shape(rows), 256.0 - 128.0 * m)),
        "color": enhance(image_ops.adjust_saturation),
        "posterize": lambda images, rows: image_ops.posterize(images, tf.fill(tf.shape(rows), 8.0 - round(4.0 * m))),
        "contrast": enhance(image_ops.adjust_contrast),
        "brightness": enhance(image_ops.scale_brightness),
        "sharpness": enhance(image_ops.adjust_sharpness),
        "shear_x": geometric(shear_x=MAX_SHEAR),
        "shear_y": geometric(shear_y=MAX_SHEAR),
        "translate_x": geometric(translate_x=MAX_TRANSLATE),
        "translate_y": geometric(translate_y=MAX_TRANSLATE),
    }
    return operations[name]
