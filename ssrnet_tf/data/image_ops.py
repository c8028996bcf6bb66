"""In-graph image operations on batches of raw BGR pixels, one parameter per image.

Every function takes ``images``: float32 ``(batch, height, width, 3)`` in
**BGR** order with values in [0, 255] (the models' input convention), and
per-image parameters of shape ``(batch,)``. They are plain TensorFlow ops:
they run inside ``tf.data`` maps and ``tf.function`` alike, and a parameter
at its neutral value (factor 1, delta 0, ...) leaves that image unchanged,
so "apply with probability p" is "draw the parameter, else neutral".

Colour conversions respect BGR: the grey level is
``0.114 B + 0.587 G + 0.299 R`` (ITU-R BT.601, as OpenCV), and HSV
operations convert BGR -> RGB before ``tf.image.rgb_to_hsv`` and back after.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

GREY_WEIGHTS_BGR = (0.114, 0.587, 0.299)
FILL_MODES = ("constant", "reflect", "nearest", "wrap")
INTERPOLATIONS = ("nearest", "bilinear")


def _per_image(values) -> tf.Tensor:
    """(batch,) -> (batch, 1, 1, 1) float32, for broadcasting over pixels."""
    return tf.reshape(tf.cast(values, tf.float32), [-1, 1, 1, 1])


def grey(images: tf.Tensor) -> tf.Tensor:
    """Grey levels of BGR images: ``(batch, height, width, 1)``."""
    return tf.reduce_sum(images * tf.constant(GREY_WEIGHTS_BGR, tf.float32), axis=-1, keepdims=True)


def blend(degenerate: tf.Tensor, images: tf.Tensor, factor) -> tf.Tensor:
    """``degenerate + factor * (images - degenerate)``, clipped to [0, 255] (PIL's ImageEnhance)."""
    return tf.clip_by_value(degenerate + _per_image(factor) * (images - degenerate), 0.0, 255.0)


def flip_left_right(images: tf.Tensor, flip) -> tf.Tensor:
    """Mirrors the images where ``flip`` (bool, ``(batch,)``) is true."""
    return tf.where(tf.reshape(flip, [-1, 1, 1, 1]), tf.reverse(images, axis=[2]), images)


def affine_matrices(
    height,
    width,
    *,
    scale=None,
    rotation=None,
    shear_x=None,
    shear_y=None,
    translate_x=None,
    translate_y=None,
) -> tf.Tensor:
    """Per-image affine maps about the image centre, as projective transforms.

    Output pixel ``p`` samples input ``A (p - c) + c - t`` with
    ``A = Rotation(rotation) @ ShearY(shear_y) @ ShearX(shear_x) / scale``.
    Each argument is ``(batch,)``; ``None`` is neutral.

    Args:
        height, width: Image size in pixels.
        scale: Zoom factor (> 1 enlarges the content).
        rotation: Radians, counter-clockwise.
        shear_x, shear_y: Shear factors (``x += shear_x * y`` ...).
        translate_x, translate_y: Content shift in pixels (right, down).

    Returns:
        ``(batch, 8)`` float32 rows for :func:`transform`.
    """
    given = [v for v in (scale, rotation, shear_x, shear_y, translate_x, translate_y) if v is not None]
    if not given:
        raise ValueError("affine_matrices needs at least one parameter.")
    batch = tf.shape(given[0])[0]

    def value(v, neutral):
        return tf.cast(v, tf.float32) if v is not None else tf.fill([batch], tf.constant(neutral, tf.float32))

    scale, rotation = value(scale, 1.0), value(rotation, 0.0)
    shear_x, shear_y = value(shear_x, 0.0), value(shear_y, 0.0)
    translate_x, translate_y = value(translate_x, 0.0), value(translate_y, 0.0)
    cos, sin = tf.cos(rotation), tf.sin(rotation)
    # Rotation @ ShearY @ ShearX = [[c, -s], [s, c]] @ [[1, 0], [sy, 1]] @ [[1, sx], [0, 1]]
    m00 = cos - sin * shear_y
    m01 = (cos - sin * shear_y) * shear_x - sin
    m10 = sin + cos * shear_y
    m11 = (sin + cos * shear_y) * shear_x + cos
    m00, m01, m10, m11 = (m / scale for m in (m00, m01, m10, m11))
    cx = (tf.cast(width, tf.float32) - 1.0) / 2.0
    cy = (tf.cast(height, tf.float32) - 1.0) / 2.0
    a2 = cx - translate_x - m00 * cx - m01 * cy
    b2 = cy - translate_y - m10 * cx - m11 * cy
    zeros = tf.zeros_like(m00)
    return tf.stack([m00, m01, a2, m10, m11, b2, zeros, zeros], axis=1)  # (batch, 8)


def transform(images: tf.Tensor, matrices: tf.Tensor, *, interpolation: str = "bilinear",
              fill_mode: str = "reflect", fill_value: float = 0.0, compiled: bool = True) -> tf.Tensor:
    """Resamples each image through its projective transform.

    When no transform of the batch rotates or shears along y (``b0 = c0 =
    c1 = 0``: flips, crops, zoom, shift and shear along x, i.e. every
    augmentation here with ``rotation_range = 0``), the batch is resampled
    by :func:`row_preserving_transform` compiled with XLA: about 5x faster
    than ``ImageProjectiveTransformV3`` inside a ``tf.data`` map on a CPU,
    same result to float rounding. Other batches, ``wrap`` and a non-zero
    ``fill_value`` take the op.

    Args:
        images: ``(batch, height, width, 3)`` float32.
        matrices: ``(batch, 8)`` from :func:`affine_matrices`.
        interpolation: ``"nearest"`` or ``"bilinear"``.
        fill_mode: ``"constant"``, ``"reflect"``, ``"nearest"`` or ``"wrap"``.
        fill_value: Value outside the image for ``"constant"``.
        compiled: Allow the XLA path. XLA compiles once per batch size, so
            callers whose batches vary in size (groups of a partitioned
            batch) pass ``False``.

    Returns:
        Images of the same shape.
    """
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}.")
    if fill_mode not in FILL_MODES:
        raise ValueError(f"fill_mode must be one of {FILL_MODES}, got {fill_mode!r}.")
    images = tf.convert_to_tensor(images)
    matrices = tf.cast(matrices, tf.float32)

    def projective():
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=images,
            transforms=matrices,
            output_shape=tf.shape(images)[1:3],
            fill_value=tf.constant(fill_value, tf.float32),
            interpolation=interpolation.upper(),
            fill_mode=fill_mode.upper(),
        )

    if not compiled or fill_mode not in _SEPARABLE_FILL_MODES or fill_value != 0.0:
        return projective()
    keeps_rows = tf.reduce_all(tf.equal(tf.gather(matrices, [3, 6, 7], axis=1), 0.0))
    rows_transform = _compiled_row_transform(interpolation, fill_mode)
    return tf.cond(keeps_rows, lambda: tf.cast(rows_transform(tf.cast(images, tf.float32), matrices), images.dtype),
                   projective)


# Fill modes :func:`row_preserving_transform` reproduces (with fill value 0).
_SEPARABLE_FILL_MODES = ("constant", "reflect", "nearest")


def _map_coordinate(coordinate: tf.Tensor, length, fill_mode: str) -> tf.Tensor:
    """Input coordinates mapped into the image as ``ImageProjectiveTransformV3`` does.

    ``reflect`` folds about the outer pixel edges (``d c b a | a b c d |
    d c b a``), ``nearest`` clamps, ``constant`` keeps the coordinate (reads
    outside the image give the fill value 0).
    """
    size = tf.cast(length, tf.float32)
    if fill_mode == "nearest":
        return tf.clip_by_value(coordinate, 0.0, size - 1.0)
    if fill_mode != "reflect":
        return coordinate
    span = 2.0 * size
    below = coordinate + span * tf.cast(tf.cast(-coordinate / span, tf.int32), tf.float32)
    below = tf.where(below < -size, below + span, -below - 1.0)
    above = coordinate - span * tf.cast(tf.cast(coordinate / span, tf.int32), tf.float32)
    above = tf.where(above >= size, span - above - 1.0, above)
    mapped = tf.where(coordinate < 0.0, below, tf.where(coordinate > size - 1.0, above, coordinate))
    mapped = tf.where(size <= 1.0, tf.zeros_like(mapped), mapped)
    return tf.clip_by_value(mapped, 0.0, size - 1.0)


def _sampling_matrices(coordinates: tf.Tensor, length, interpolation: str, fill_mode: str) -> tf.Tensor:
    """``(batch, out, in)`` weights that resample one axis at ``coordinates`` ``(batch, out)``.

    Bilinear: weight ``1 - f`` on ``floor(c)`` and ``f`` on ``floor(c) + 1``;
    nearest: 1 on ``c`` rounded half away from zero. Samples outside
    ``[0, length)`` get no weight (the fill value 0), as in the op.
    """
    coordinates = _map_coordinate(coordinates, length, fill_mode)
    if interpolation == "nearest":
        index = tf.sign(coordinates) * tf.floor(tf.abs(coordinates) + 0.5)
        return tf.one_hot(tf.cast(index, tf.int32), length, dtype=tf.float32)
    low = tf.floor(coordinates)
    fraction = (coordinates - low)[..., None]
    low = tf.cast(low, tf.int32)
    return (1.0 - fraction) * tf.one_hot(low, length, dtype=tf.float32) + fraction * tf.one_hot(
        low + 1, length, dtype=tf.float32)


def row_preserving_transform(images: tf.Tensor, matrices: tf.Tensor, *, interpolation: str = "bilinear",
                             fill_mode: str = "reflect") -> tf.Tensor:
    """:func:`transform` for maps that send each output row to one input row.

    With ``b0 = c0 = c1 = 0`` (no rotation, no shear along y), output pixel
    ``(x, y)`` samples input ``(a0 x + a1 y + a2, b1 y + b2)``: the input
    row depends on ``y`` alone. Bilinear (or nearest) resampling then splits
    exactly into a pass along y (one small matrix product per image) and a
    pass along each row (two gathers). Coordinates are mapped into the
    image and reads outside it give 0, as ``ImageProjectiveTransformV3``
    does; bilinear results differ from it by float rounding only (about
    1e-3 on 0-255 pixels), nearest ones not at all.

    Args:
        images: ``(batch, height, width, channels)`` float32.
        matrices: ``(batch, 8)`` with ``b0 = c0 = c1 = 0``.
        interpolation: ``"nearest"`` or ``"bilinear"``.
        fill_mode: ``"constant"`` (0), ``"reflect"`` or ``"nearest"``.
    """
    if fill_mode not in _SEPARABLE_FILL_MODES:
        raise ValueError(f"fill_mode must be one of {_SEPARABLE_FILL_MODES}, got {fill_mode!r}.")
    shape = tf.shape(images)
    batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
    matrices = tf.cast(matrices, tf.float32)
    ys = tf.cast(tf.range(height), tf.float32)
    xs = tf.cast(tf.range(width), tf.float32)
    along_y = _sampling_matrices(matrices[:, 4:5] * ys[None, :] + matrices[:, 5:6], height, interpolation, fill_mode)
    rows = tf.reshape(tf.matmul(along_y, tf.reshape(images, [batch, height, width * channels])),
                      [batch, height, width, channels])
    m = matrices[:, :, None, None]
    columns = _map_coordinate(m[:, 0] * xs[None, None, :] + m[:, 1] * ys[None, :, None] + m[:, 2], width, fill_mode)

    def read(index):
        inside = tf.cast((index >= 0) & (index < width), tf.float32)[..., None]
        return tf.gather(rows, tf.clip_by_value(index, 0, width - 1), axis=2, batch_dims=2) * inside

    if interpolation == "nearest":
        return read(tf.cast(tf.sign(columns) * tf.floor(tf.abs(columns) + 0.5), tf.int32))
    low = tf.floor(columns)
    fraction = (columns - low)[..., None]
    low = tf.cast(low, tf.int32)
    return (1.0 - fraction) * read(low) + fraction * read(low + 1)


_COMPILED = {}


def _compiled_row_transform(interpolation: str, fill_mode: str):
    """:func:`row_preserving_transform` as an XLA-compiled ``tf.function`` (one per mode)."""
    key = (interpolation, fill_mode)
    if key not in _COMPILED:
        _COMPILED[key] = tf.function(
            lambda images, matrices: row_preserving_transform(images, matrices, interpolation=interpolation,
                                                              fill_mode=fill_mode),
            jit_compile=True)
    return _COMPILED[key]


def shift_hsv(images: tf.Tensor, hue, saturation, value) -> tf.Tensor:
    """Adds per-image deltas in HSV space (hue wraps; S and V are clipped).

    Args:
        images: BGR, [0, 255].
        hue: Fraction of the hue circle (1/3 turns red into green).
        saturation, value: Deltas on the [0, 1] S and V scales.

    Returns:
        BGR images in [0, 255].
    """
    rgb = tf.reverse(images, axis=[-1]) / 255.0
    hsv = tf.image.rgb_to_hsv(tf.clip_by_value(rgb, 0.0, 1.0))
    h, s, v = tf.unstack(hsv, axis=-1)
    h = tf.math.floormod(h + _per_image(hue)[..., 0], 1.0)
    s = tf.clip_by_value(s + _per_image(saturation)[..., 0], 0.0, 1.0)
    v = tf.clip_by_value(v + _per_image(value)[..., 0], 0.0, 1.0)
    rgb = tf.image.hsv_to_rgb(tf.stack([h, s, v], axis=-1))
    return tf.reverse(rgb, axis=[-1]) * 255.0


def adjust_gamma(images: tf.Tensor, gamma) -> tf.Tensor:
    """``255 * (x / 255) ** gamma`` per image."""
    return 255.0 * tf.pow(tf.clip_by_value(images / 255.0, 0.0, 1.0), _per_image(gamma))


def add_brightness(images: tf.Tensor, delta) -> tf.Tensor:
    """Adds ``delta * 255`` to every pixel (``delta`` in [-1, 1]), clipped."""
    return tf.clip_by_value(images + 255.0 * _per_image(delta), 0.0, 255.0)


def scale_brightness(images: tf.Tensor, factor) -> tf.Tensor:
    """Multiplies every pixel by ``factor`` (blend with black), clipped."""
    return blend(tf.zeros_like(images), images, factor)


def adjust_contrast(images: tf.Tensor, factor) -> tf.Tensor:
    """Blends each image with its mean grey level (factor 0: flat grey, 1: unchanged)."""
    mean = tf.reduce_mean(grey(images), axis=[1, 2, 3], keepdims=True)
    return blend(mean, images, factor)


def adjust_saturation(images: tf.Tensor, factor) -> tf.Tensor:
    """Blends each image with its grey version (factor 0: grey, 1: unchanged)."""
    return blend(grey(images), images, factor)


def adjust_sharpness(images: tf.Tensor, factor) -> tf.Tensor:
    """PIL's sharpness: blend with a 3x3 smoothed copy whose border is the original."""
    kernel = tf.constant([[1, 1, 1], [1, 5, 1], [1, 1, 1]], tf.float32) / 13.0
    kernel = tf.tile(kernel[:, :, None, None], [1, 1, 3, 1])  # (3, 3, 3, 1)
    smooth = tf.nn.depthwise_conv2d(images, kernel, strides=[1, 1, 1, 1], padding="SAME")
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    rows = tf.range(height)[:, None]
    cols = tf.range(width)[None, :]
    interior = (rows > 0) & (rows < height - 1) & (cols > 0) & (cols < width - 1)
    smooth = tf.where(interior[None, :, :, None], smooth, images)
    return blend(smooth, images, factor)


def solarize(images: tf.Tensor, threshold) -> tf.Tensor:
    """Inverts pixels at or above the per-image ``threshold`` (256: unchanged)."""
    return tf.where(images >= _per_image(threshold), 255.0 - images, images)


def posterize(images: tf.Tensor, bits) -> tf.Tensor:
    """Keeps the top ``bits`` (1..8) of each rounded 8-bit value; 8 bits: unchanged."""
    bits = _per_image(bits)
    step = tf.pow(2.0, 8.0 - bits)
    posterized = tf.floor(tf.round(tf.clip_by_value(images, 0.0, 255.0)) / step) * step
    return tf.where(bits >= 8.0, images, posterized)


def auto_contrast(images: tf.Tensor) -> tf.Tensor:
    """Stretches each channel of each image to the full [0, 255] range."""
    low = tf.reduce_min(images, axis=[1, 2], keepdims=True)
    high = tf.reduce_max(images, axis=[1, 2], keepdims=True)
    spread = high - low
    stretched = (images - low) * (255.0 / tf.maximum(spread, 1e-3))
    return tf.where(spread > 0, stretched, images)


def equalize(images: tf.Tensor) -> tf.Tensor:
    """Histogram-equalises each channel of each image (PIL's ImageOps.equalize).

    The 256-bin histograms of all images and channels come from one
    ``bincount``; a channel with a single level is left unchanged.
    """
    batch = tf.shape(images)[0]
    levels = tf.cast(tf.round(tf.clip_by_value(images, 0.0, 255.0)), tf.int32)
    # One histogram per (image, channel): key = level + 256 * (3 * image + channel).
    offsets = 256 * (3 * tf.range(batch)[:, None, None, None] + tf.range(3)[None, None, None, :])
    keys = levels + offsets  # (batch, height, width, 3)
    bins = batch * 3 * 256
    histograms = tf.reshape(tf.math.bincount(tf.reshape(keys, [-1]), minlength=bins, maxlength=bins),
                            [batch * 3, 256])
    last_level = tf.reduce_max(tf.where(histograms > 0, tf.range(256)[None, :], -1), axis=1)  # (batch*3,)
    last_count = tf.gather(histograms, tf.maximum(last_level, 0), batch_dims=1)
    step = (tf.reduce_sum(histograms, axis=1) - last_count) // 255  # (batch*3,)
    safe_step = tf.maximum(step, 1)[:, None]
    lut = (tf.cumsum(histograms, axis=1) + safe_step // 2) // safe_step
    lut = tf.clip_by_value(tf.concat([tf.zeros_like(lut[:, :1]), lut[:, :-1]], axis=1), 0, 255)
    identity = tf.broadcast_to(tf.range(256)[None, :], tf.shape(lut))
    lut = tf.where((step > 0)[:, None], lut, identity)
    return tf.cast(tf.gather(tf.reshape(lut, [-1]), keys), tf.float32)


def apply_by_group(images: tf.Tensor, groups, functions) -> tf.Tensor:
    """Applies ``functions[k]`` only to the images of group ``k``.

    The batch is split with ``tf.dynamic_partition`` and put back together
    with ``tf.dynamic_stitch``, so each operation costs only its share of
    the batch.

    Args:
        images: ``(batch, height, width, channels)``.
        groups: ``(batch,)`` integer group of each image, in
            ``[0, len(functions))``.
        functions: Per group, ``None`` (unchanged) or
            ``function(group_images, rows) -> group_images``, where ``rows``
            are the group's positions in the batch (to gather per-image
            parameters).

    Returns:
        The images, in their original order.
    """
    groups = tf.cast(groups, tf.int32)
    rows = tf.dynamic_partition(tf.range(tf.shape(images)[0]), groups, len(functions))
    parts = tf.dynamic_partition(images, groups, len(functions))
    outputs = [part if function is None else function(part, row)
               for function, part, row in zip(functions, parts, rows)]
    return tf.ensure_shape(tf.dynamic_stitch(rows, outputs), images.shape)


def compose(*transforms: tf.Tensor) -> tf.Tensor:
    """One projective transform doing ``transforms`` in order (each ``(batch, 8)``)."""
    def to_matrix(t):
        return tf.reshape(tf.concat([t, tf.ones_like(t[:, :1])], axis=1), [-1, 3, 3])

    # Applying T1 then T2 samples the input at T1 @ T2 @ p.
    product = to_matrix(transforms[0])
    for t in transforms[1:]:
        product = tf.matmul(product, to_matrix(t))
    product = product / product[:, 2:3, 2:3]
    return tf.reshape(product, [-1, 9])[:, :8]


def mirror_matrices(width, flip) -> tf.Tensor:
    """``(batch, 8)`` transforms that mirror the images where ``flip`` is true."""
    sign = tf.where(flip, -1.0, 1.0)
    zeros, ones = tf.zeros_like(sign), tf.ones_like(sign)
    offset = tf.where(flip, tf.cast(width, tf.float32) - 1.0, 0.0)
    return tf.stack([sign, zeros, offset, zeros, ones, zeros, zeros, zeros], axis=1)


# BT.601 YIQ from BGR (columns B, G, R) and back.
_YIQ_FROM_BGR = np.array([[0.114, 0.587, 0.299], [-0.322, -0.274, 0.596], [0.312, -0.523, 0.211]], np.float32)
_BGR_FROM_YIQ = np.linalg.inv(_YIQ_FROM_BGR).astype(np.float32)


def colour_jitter_matrices(images: tf.Tensor, brightness, contrast, saturation, hue):
    """Per-image affine colour maps for brightness, contrast, saturation and hue, in that order.

    Brightness scales, contrast blends with the mean grey, saturation blends
    with each pixel's grey (torchvision's ColorJitter definitions), and hue
    rotates the chroma plane of YIQ by ``hue`` turns (a linear stand-in for
    an HSV hue shift that leaves greys unchanged). Being linear, the four
    collapse into one ``3x3`` matrix and offset per image.

    Args:
        images: BGR [0, 255], used for their mean colour.
        brightness, contrast, saturation: ``(batch,)`` factors (1: unchanged).
        hue: ``(batch,)`` rotation in turns (0: unchanged).

    Returns:
        ``(matrices (batch, 3, 3), offsets (batch, 3))`` for :func:`apply_colour_matrix`.
    """
    weights = tf.constant(GREY_WEIGHTS_BGR, tf.float32)
    brightness, contrast, saturation = (tf.cast(v, tf.float32) for v in (brightness, contrast, saturation))
    mean_grey = tf.reduce_sum(tf.reduce_mean(images, axis=[1, 2]) * weights, axis=-1) * brightness  # (batch,)
    eye = tf.eye(3, batch_shape=tf.shape(brightness)[:1])
    scale = (brightness * contrast)[:, None, None]
    saturate = saturation[:, None, None] * eye + (1.0 - saturation)[:, None, None] * tf.ones([3, 1]) * weights[None, :]
    angle = 2.0 * math.pi * tf.cast(hue, tf.float32)
    cos, sin = tf.cos(angle), tf.sin(angle)
    ones, zeros = tf.ones_like(cos), tf.zeros_like(cos)
    rotate = tf.reshape(tf.stack([ones, zeros, zeros, zeros, cos, -sin, zeros, sin, cos], axis=1), [-1, 3, 3])
    hue_matrix = tf.constant(_BGR_FROM_YIQ) @ rotate @ tf.constant(_YIQ_FROM_BGR)
    matrices = hue_matrix @ saturate * scale
    # Contrast adds (1 - c) * mean grey to every channel; a grey offset is unchanged by saturation and hue.
    offsets = tf.tile(((1.0 - contrast) * mean_grey)[:, None], [1, 3])
    return matrices, offsets


def apply_colour_matrix(images: tf.Tensor, matrices: tf.Tensor, offsets: tf.Tensor) -> tf.Tensor:
    """``out = M @ pixel + offset`` per image, clipped to [0, 255]."""
    out = tf.einsum("bhwc,bdc->bhwd", images, matrices) + offsets[:, None, None, :]
    return tf.clip_by_value(out, 0.0, 255.0)


def degrees(values) -> tf.Tensor:
    """Degrees -> radians."""
    return tf.cast(values, tf.float32) * (math.pi / 180.0)
