"""Training augmentations: named options in one config, applied in-graph per batch.

:class:`AugmentConfig` lists which augmentations are on and their
parameters; :class:`Augmenter` applies them, in the order of :data:`NAMES`,
to a batch of float32 BGR images in [0, 255] with a ``(2,)`` seed, drawing
every random parameter per image with stateless ops (same seed, same
output). The input pipeline gives each batch its own seed from the
pipeline seed, so an augmented epoch is reproducible.

=================  ==========================================================
name               what it does (defaults)
=================  ==========================================================
horizontal_flip    mirror, p = 0.5
random_crop        pad 4 px (zeros) and crop back at a random offset
random_resized_crop  a box of 8-100 % of the area, aspect 3/4-4/3, stretched
                   to the full size (torchvision's RandomResizedCrop; LAE)
affine             zoom +-10 %, shift +-10 %, shear +-10 deg (rotation 0),
                   reflect fill; p = 1 (``affine_probability``: SSR-Net's
                   "randomly activated" zoom/shift/shear)
hsv_shift          p = 0.3: hue +-20/180 turn, saturation +-30/255, value
                   +-20/255 (OpenCV units of albumentations' HueSaturationValue)
gamma              p = 0.3: gamma in [0.8, 1.2]
brightness         p = 0.3: add +-0.2 x 255
contrast           p = 0.3: contrast factor in [0.8, 1.2] about the mean grey
brightness_contrast  p = 0.3: brightness and contrast together, one draw of the
                   probability for both (albumentations' RandomBrightnessContrast,
                   DLDL-v2 report's "BC")
color_jitter       brightness x[0.8, 1.2], contrast [0.8, 1.2], saturation
                   [0.8, 1.2], hue +-0.05 turn (torchvision ColorJitter's
                   definitions and order; one colour matrix per image)
rand_augment       N = 2 operations at M = 9 (:mod:`ssrnet_tf.data.rand_augment`)
=================  ==========================================================

Example:
    >>> config = AugmentConfig.from_names(["horizontal_flip", "random_crop", "hsv_shift"])
    >>> config.enabled()
    ['horizontal_flip', 'random_crop', 'hsv_shift']
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Iterable, List, Tuple

import tensorflow as tf

from ssrnet_tf.data import image_ops
from ssrnet_tf.data import rand_augment as rand_augment_lib
from ssrnet_tf.data import random_resized_crop as random_resized_crop_lib

NAMES = (
    "horizontal_flip", "random_crop", "random_resized_crop", "affine", "hsv_shift", "gamma",
    "brightness", "contrast", "brightness_contrast", "color_jitter", "rand_augment",
)


@dataclasses.dataclass
class AugmentConfig:
    """Which augmentations are on (the :data:`NAMES` flags) and their parameters.

    Attributes:
        horizontal_flip, random_crop, random_resized_crop, affine, hsv_shift,
            gamma, brightness, contrast, brightness_contrast, color_jitter,
            rand_augment: On/off switches.
        flip_probability: Chance of a mirror.
        crop_padding: Pixels of padding before the random crop.
        crop_fill: Padding of the crop (``"constant"`` zeros, ``"reflect"``, ...).
        crop_scale, crop_ratio: Area fraction and aspect-ratio ranges of
            ``random_resized_crop``.
        brightness_contrast_probability: Chance of ``brightness_contrast``
            (which uses ``brightness_limit`` and ``contrast_limit``).
        zoom_range: Zoom factor drawn from ``[1 - z, 1 + z]``.
        shift_range: Shift drawn from ``+-shift_range`` of the side.
        shear_range: Shear angle drawn from ``+-shear_range`` degrees.
        rotation_range: Rotation drawn from ``+-rotation_range`` degrees.
        affine_fill: Fill of the affine transform.
        affine_probability: Chance that an image gets the affine transform
            at all (the others keep scale 1, shift 0, shear 0, rotation 0).
        hsv_probability, hue_shift, saturation_shift, value_shift: HSV shift
            (hue as a fraction of the circle; S and V on [0, 1]).
        gamma_probability, gamma_range: Gamma correction.
        brightness_probability, brightness_limit: Additive brightness, as a
            fraction of 255.
        contrast_probability, contrast_limit: Contrast factor ``1 +- limit``.
        jitter_brightness, jitter_contrast, jitter_saturation, jitter_hue:
            Colour-jitter strengths (factors ``1 +- value``; hue in turns).
        rand_augment_ops, rand_augment_magnitude: RandAugment N and M.
        rand_augment_operations: Operations RandAugment draws from.
    """

    horizontal_flip: bool = False
    random_crop: bool = False
    random_resized_crop: bool = False
    affine: bool = False
    hsv_shift: bool = False
    gamma: bool = False
    brightness: bool = False
    contrast: bool = False
    brightness_contrast: bool = False
    color_jitter: bool = False
    rand_augment: bool = False

    flip_probability: float = 0.5
    crop_padding: int = 4
    crop_fill: str = "constant"
    crop_scale: Tuple[float, float] = random_resized_crop_lib.DEFAULT_SCALE
    crop_ratio: Tuple[float, float] = random_resized_crop_lib.DEFAULT_RATIO
    brightness_contrast_probability: float = 0.3
    zoom_range: float = 0.1
    shift_range: float = 0.1
    shear_range: float = 10.0
    rotation_range: float = 0.0
    affine_fill: str = "reflect"
    affine_probability: float = 1.0
    hsv_probability: float = 0.3
    hue_shift: float = 20.0 / 180.0
    saturation_shift: float = 30.0 / 255.0
    value_shift: float = 20.0 / 255.0
    gamma_probability: float = 0.3
    gamma_range: Tuple[float, float] = (0.8, 1.2)
    brightness_probability: float = 0.3
    brightness_limit: float = 0.2
    contrast_probability: float = 0.3
    contrast_limit: float = 0.2
    jitter_brightness: float = 0.2
    jitter_contrast: float = 0.2
    jitter_saturation: float = 0.2
    jitter_hue: float = 0.05
    rand_augment_ops: int = 2
    rand_augment_magnitude: float = 9.0
    rand_augment_operations: Tuple[str, ...] = rand_augment_lib.OPERATIONS

    def __post_init__(self):
        self.gamma_range = tuple(self.gamma_range)
        self.rand_augment_operations = tuple(self.rand_augment_operations)
        self.crop_scale, self.crop_ratio = tuple(self.crop_scale), tuple(self.crop_ratio)
        random_resized_crop_lib.validate_ranges(self.crop_scale, self.crop_ratio)
        for name in ("flip_probability", "affine_probability", "hsv_probability", "gamma_probability",
                     "brightness_probability", "contrast_probability", "brightness_contrast_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}.")
        for name in ("crop_padding", "zoom_range", "shift_range", "shear_range", "rotation_range",
                     "hue_shift", "saturation_shift", "value_shift", "brightness_limit", "contrast_limit",
                     "jitter_brightness", "jitter_contrast", "jitter_saturation", "jitter_hue"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}.")
        if not 0 < self.gamma_range[0] <= self.gamma_range[1]:
            raise ValueError(f"gamma_range must be 0 < low <= high, got {self.gamma_range}.")
        for name in ("crop_fill", "affine_fill"):
            if getattr(self, name) not in image_ops.FILL_MODES:
                raise ValueError(f"{name} must be one of {image_ops.FILL_MODES}, got {getattr(self, name)!r}.")
        if self.zoom_range >= 1.0:
            raise ValueError(f"zoom_range must be < 1, got {self.zoom_range}.")
        unknown = sorted(set(self.rand_augment_operations) - set(rand_augment_lib.OPERATIONS))
        if unknown or not self.rand_augment_operations:
            raise ValueError(f"unknown RandAugment operations {unknown}; choose from {rand_augment_lib.OPERATIONS}.")
        if not 0 <= self.rand_augment_magnitude <= 10 or self.rand_augment_ops < 1:
            raise ValueError("rand_augment_magnitude must be in [0, 10] and rand_augment_ops >= 1.")

    @classmethod
    def from_names(cls, names: Iterable[str], **parameters) -> "AugmentConfig":
        """A config with the augmentations ``names`` on.

        Raises:
            ValueError: Listing the valid names if one is unknown.
        """
        names = list(names)
        unknown = [name for name in names if name not in NAMES]
        if unknown:
            raise ValueError(f"unknown augmentations {unknown}; choose from {NAMES}.")
        return cls(**{name: True for name in names}, **parameters)

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "AugmentConfig":
        """Inverse of :meth:`to_dict` (e.g. from a YAML config).

        Raises:
            ValueError: Naming unknown keys.
        """
        fields = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise ValueError(f"unknown augmentation settings {unknown}; known: {sorted(fields)}.")
        return cls(**values)

    def to_dict(self) -> Dict[str, Any]:
        """All settings as plain Python values."""
        values = dataclasses.asdict(self)
        values["gamma_range"] = list(self.gamma_range)
        values["rand_augment_operations"] = list(self.rand_augment_operations)
        values["crop_scale"], values["crop_ratio"] = list(self.crop_scale), list(self.crop_ratio)
        return values

    def enabled(self) -> List[str]:
        """Names of the augmentations that are on, in application order."""
        return [name for name in NAMES if getattr(self, name)]


class Augmenter:
    """Applies an :class:`AugmentConfig` to batches, in-graph.

    The enabled geometric options (flip, crop, affine) are composed into one
    projective transform per image, so the batch is resampled once
    (bilinear with ``affine_fill`` when ``affine`` is on, else nearest with
    ``crop_fill``). Options with a probability below 1 process only the
    images that drew them.

    Args:
        config: What to apply.

    Example:
        >>> augmenter = Augmenter(AugmentConfig.from_names(["horizontal_flip"]))
        >>> images = tf.zeros([4, 64, 64, 3])
        >>> augmenter(images, tf.constant([1, 2])).shape
        TensorShape([4, 64, 64, 3])
    """

    GEOMETRIC = ("horizontal_flip", "random_crop", "random_resized_crop", "affine")

    def __init__(self, config: AugmentConfig):
        self.config = config
        self.names = config.enabled()

    def __call__(self, images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """Augments ``(batch, height, width, 3)`` float32 BGR [0, 255] images."""
        images = tf.cast(images, tf.float32)
        if not self.names:
            return images
        seeds = dict(zip(self.names, tf.unstack(
            tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), len(self.names)))))
        geometric = [name for name in self.GEOMETRIC if name in seeds]
        if geometric:
            images = self._geometric(images, {name: seeds[name] for name in geometric})
        for name in self.names:
            if name not in self.GEOMETRIC:
                images = getattr(self, f"_{name}")(images, seeds[name])
        return images

    # === Geometric ===
    def _geometric(self, images, seeds):
        c = self.config
        batch, height, width = tf.shape(images)[0], tf.shape(images)[1], tf.shape(images)[2]
        transforms = []
        if "horizontal_flip" in seeds:
            flip = tf.random.stateless_uniform([batch], seeds["horizontal_flip"]) < c.flip_probability
            if len(seeds) == 1:  # mirroring alone needs no resampling
                return image_ops.apply_by_group(images, flip, [None, lambda x, rows: tf.reverse(x, axis=[2])])
            transforms.append(image_ops.mirror_matrices(width, flip))
        if "random_crop" in seeds:
            pad = c.crop_padding
            offsets = tf.random.stateless_uniform([2, batch], seeds["random_crop"], minval=-pad, maxval=pad + 1,
                                                  dtype=tf.int32)
            transforms.append(image_ops.affine_matrices(height, width, translate_x=offsets[0],
                                                        translate_y=offsets[1]))
        if "random_resized_crop" in seeds:
            transforms.append(random_resized_crop_lib.crop_matrices(
                height, width, batch, seeds["random_resized_crop"], c.crop_scale, c.crop_ratio))
        if "affine" in seeds:
            u = tf.random.stateless_uniform([5, batch], seeds["affine"], minval=-1.0, maxval=1.0)
            if c.affine_probability < 1.0:  # unchosen images draw the identity (all parameters 0)
                mask_seed = tf.random.experimental.stateless_fold_in(tf.cast(seeds["affine"], tf.int64), 1)
                chosen = tf.random.stateless_uniform([batch], mask_seed) < c.affine_probability
                u = u * tf.cast(chosen, tf.float32)[tf.newaxis, :]
            transforms.append(image_ops.affine_matrices(
                height, width,
                scale=1.0 + c.zoom_range * u[0],
                shear_x=tf.tan(image_ops.degrees(c.shear_range * u[1])),
                rotation=image_ops.degrees(c.rotation_range * u[2]),
                translate_x=c.shift_range * tf.cast(width, tf.float32) * u[3],
                translate_y=c.shift_range * tf.cast(height, tf.float32) * u[4],
            ))
        affine = "affine" in seeds or "random_resized_crop" in seeds  # resizing needs bilinear sampling
        return image_ops.transform(images, image_ops.compose(*transforms),
                                   interpolation="bilinear" if affine else "nearest",
                                   fill_mode=c.affine_fill if affine else c.crop_fill)

    # === Photometric ===
    @staticmethod
    def _sometimes(images, seed, probability, count, function):
        """``function(images_k, draws_k)`` on the images that drew it; draws uniform in [-1, 1]."""
        mask_seed, value_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        batch = tf.shape(images)[0]
        applied = tf.random.stateless_uniform([batch], mask_seed) < probability
        draws = tf.random.stateless_uniform([count, batch], value_seed, minval=-1.0, maxval=1.0)
        return image_ops.apply_by_group(
            images, applied, [None, lambda x, rows: function(x, tf.gather(draws, rows, axis=1))])

    def _hsv_shift(self, images, seed):
        c = self.config
        return self._sometimes(images, seed, c.hsv_probability, 3, lambda x, u: image_ops.shift_hsv(
            x, c.hue_shift * u[0], c.saturation_shift * u[1], c.value_shift * u[2]))

    def _gamma(self, images, seed):
        low, high = self.config.gamma_range
        return self._sometimes(images, seed, self.config.gamma_probability, 1, lambda x, u: image_ops.adjust_gamma(
            x, low + (high - low) * (u[0] + 1.0) / 2.0))

    def _brightness(self, images, seed):
        limit = self.config.brightness_limit
        return self._sometimes(images, seed, self.config.brightness_probability, 1,
                               lambda x, u: image_ops.add_brightness(x, limit * u[0]))

    def _contrast(self, images, seed):
        limit = self.config.contrast_limit
        return self._sometimes(images, seed, self.config.contrast_probability, 1,
                               lambda x, u: image_ops.adjust_contrast(x, 1.0 + limit * u[0]))

    def _brightness_contrast(self, images, seed):
        c = self.config
        return self._sometimes(images, seed, c.brightness_contrast_probability, 2, lambda x, u: image_ops.adjust_contrast(
            image_ops.add_brightness(x, c.brightness_limit * u[0]), 1.0 + c.contrast_limit * u[1]))

    def _color_jitter(self, images, seed):
        c = self.config
        u = tf.random.stateless_uniform([4, tf.shape(images)[0]], seed, minval=-1.0, maxval=1.0)
        matrices, offsets = image_ops.colour_jitter_matrices(
            images, 1.0 + c.jitter_brightness * u[0], 1.0 + c.jitter_contrast * u[1],
            1.0 + c.jitter_saturation * u[2], c.jitter_hue * u[3])
        return image_ops.apply_colour_matrix(images, matrices, offsets)

    def _rand_augment(self, images, seed):
        c = self.config
        return rand_augment_lib.rand_augment(
            images, seed, num_ops=c.rand_augment_ops, magnitude=c.rand_augment_magnitude,
            operations=c.rand_augment_operations, fill_mode=c.affine_fill,
        )
