"""Keras Applications backbones, by name, taking raw 0-255 BGR pixels."""

from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Optional, Tuple

import keras

from ssrnet_tf.layers.pixel_normalization import pixel_normalization_for


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """How to build one Keras Applications family member.

    Attributes:
        constructor: Name of the ``keras.applications`` function.
        preprocessing: Mode of :func:`pixel_normalization_for` reproducing
            the family's ``preprocess_input`` from BGR 0-255 input.
        has_alpha: Whether the family has a width multiplier ``alpha``.
        extra_kwargs: Constructor arguments always passed (e.g. in-model
            preprocessing switched on).
        default_input_size: The size ImageNet weights were trained at.
    """

    constructor: str
    preprocessing: str
    has_alpha: bool = False
    extra_kwargs: Tuple[Tuple[str, object], ...] = ()
    default_input_size: int = 224


_IN_MODEL_PREPROCESSING = (("include_preprocessing", True),)

#: Registered backbones, by name.
BACKBONES: Dict[str, BackboneSpec] = {
    "mobilenet": BackboneSpec("MobileNet", "tf", has_alpha=True),
    "mobilenet_v2": BackboneSpec("MobileNetV2", "tf", has_alpha=True),
    "mobilenet_v3_small": BackboneSpec("MobileNetV3Small", "rgb", True, _IN_MODEL_PREPROCESSING),
    "mobilenet_v3_large": BackboneSpec("MobileNetV3Large", "rgb", True, _IN_MODEL_PREPROCESSING),
    # ReLU, 3x3 kernels, no squeeze-excite: quantizes robustly to int8, and its
    # [-1, 1] scaling as PixelNormalization ("tf") instead of the Rescaling
    # layer leaves nothing that tfmot's QAT cannot quantize.
    "mobilenet_v3_small_minimalistic": BackboneSpec(
        "MobileNetV3Small", "tf", True, (("include_preprocessing", False), ("minimalistic", True))
    ),
    **{
        f"efficientnet_b{i}": BackboneSpec(f"EfficientNetB{i}", "rgb", default_input_size=size)
        for i, size in enumerate((224, 240, 260, 300))
    },
    **{
        f"efficientnet_v2_b{i}": BackboneSpec(
            f"EfficientNetV2B{i}", "rgb", extra_kwargs=_IN_MODEL_PREPROCESSING, default_input_size=size
        )
        for i, size in enumerate((224, 240, 260, 300))
    },
    "resnet50": BackboneSpec("ResNet50", "caffe"),
    "densenet121": BackboneSpec("DenseNet121", "torch"),
    "vgg16": BackboneSpec("VGG16", "caffe"),
}


#: Batch-norm momentum of backbones trained from scratch: the moving statistics
#: follow the weights within ~100 steps, so validation tracks training from
#: the first epochs (Keras' MobileNets use 0.999, a ~1,000-step lag).
FROM_SCRATCH_BATCH_NORM_MOMENTUM = 0.99


def build_backbone(
    name: str,
    input_size: int = 224,
    *,
    alpha: Optional[float] = None,
    weights: Optional[str] = "imagenet",
    pooling: str = "avg",
    batch_norm_momentum: Optional[float] = None,
    early_features: bool = False,
) -> keras.Model:
    """Builds a registered backbone that maps raw BGR pixels to features.

    The returned model takes float32 ``(N, input_size, input_size, 3)``
    **raw 0-255 BGR** pixels (OpenCV's order, as SSR-Net), applies the
    family's own ImageNet preprocessing inside the graph
    (:class:`ssrnet_tf.layers.PixelNormalization` or the family's built-in
    rescaling), and returns pooled features ``(N, D)``.

    Args:
        name: A key of :data:`BACKBONES`.
        input_size: Square input side in pixels (>= 32).
        alpha: Width multiplier for the MobileNet families (e.g. 0.35, 0.5,
            0.75, 1.0); ``None`` uses the family default.
        weights: ``"imagenet"`` (downloaded by Keras on first use), ``None``
            for random initialisation, or a path to a weights file.
        pooling: ``"avg"`` or ``"max"`` global pooling of the last map.
        batch_norm_momentum: If given, the moving-average momentum of every
            batch normalisation layer. Keras' MobileNets use 0.999, which
            suits fine-tuning ImageNet weights; trained from scratch for a few
            thousand steps their inference statistics lag far behind (0.99
            is the usual from-scratch value). ``None``: 0.99 when ``weights``
            is ``None`` (from scratch), else the family's.
        early_features: Also output the feature map of the family's last
            layer at 1/8 of the input resolution (ResNet-50's
            ``conv3_block4_out``: the "second residual block" the LDL
            report's multi-task design branches from), as a second output.

    Returns:
        A ``keras.Model`` named ``"<name>_backbone"``: pooled features
        ``(N, D)``, or with ``early_features`` the list ``[pooled (N, D),
        early map (N, H/8, W/8, C)]``.

    Raises:
        ValueError: For an unknown name (listing the valid ones), an
            ``alpha`` on a family without one, or a too small input.
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; valid backbones: {', '.join(sorted(BACKBONES))}.")
    spec = BACKBONES[name]
    if input_size < 32:
        raise ValueError(f"input_size must be >= 32 for Keras Applications backbones, got {input_size}.")
    if batch_norm_momentum is None and weights is None:
        batch_norm_momentum = FROM_SCRATCH_BATCH_NORM_MOMENTUM
    if batch_norm_momentum is not None and not 0.0 <= batch_norm_momentum < 1.0:
        raise ValueError(f"batch_norm_momentum must be in [0, 1), got {batch_norm_momentum}.")
    kwargs = dict(spec.extra_kwargs)
    if alpha is not None:
        if not spec.has_alpha:
            raise ValueError(f"backbone {name!r} has no width multiplier; alpha must be None, got {alpha}.")
        kwargs["alpha"] = alpha
    constructor: Callable = getattr(keras.applications, spec.constructor)
    image = keras.Input((input_size, input_size, 3), name="image")
    x = pixel_normalization_for(spec.preprocessing, name=f"{name}_preprocessing")(image)
    application = constructor(
        include_top=False,
        weights=weights,
        input_shape=(input_size, input_size, 3),
        pooling=pooling,
        **kwargs,
    )
    if batch_norm_momentum is not None:
        for layer in application.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = batch_norm_momentum
    if early_features:
        tap = early_feature_layer(application, input_size)
        application = keras.Model(application.inputs, [application.output, tap.output], name=application.name)
    features = application(x)
    return keras.Model(image, features, name=f"{name}_backbone")


def early_feature_layer(application: keras.Model, input_size: int) -> keras.layers.Layer:
    """The last layer of a Keras Applications model whose output is at 1/8 of the input resolution.

    Raises:
        ValueError: If no layer has that resolution (an input below 64 px).
    """
    side = -(-input_size // 8)  # ceil: 'same'-padded strides
    candidates = [layer for layer in application.layers
                  if len(getattr(layer.output, "shape", ())) == 4 and layer.output.shape[1] == side]
    if not candidates:
        raise ValueError(f"{application.name} has no layer at 1/8 of {input_size} px ({side} px); early features "
                         "need an input of at least 64 px.")
    return candidates[-1]
