"""QAT of a Keras Applications backbone age model: which backbones can be quantized.

A model from :func:`ssrnet_tf.models.build_age_model` (raw 0-255 BGR pixels
-> ``PixelNormalization`` -> Keras Applications backbone -> pooled features
-> heads) goes through the same QAT path as SSR-Net
(:mod:`ssrnet_tf.export.qat`): the generic tf_keras translation
(:mod:`ssrnet_tf.export.tf_keras_twin`, the nested backbone inlined),
:func:`ssrnet_tf.export.qat.quantize_aware_model` (the backbone int8, the
head float, as in PTQ), calibration, fine-tuning and export. tfmot's default
8-bit scheme folds MobileNetV2's ``Conv2D -> BatchNormalization -> ReLU(6)``
and ``DepthwiseConv2D -> BatchNormalization -> ReLU(6)`` patterns (one
activation quantizer after the ReLU6) and quantizes ``Add``,
``ZeroPadding2D`` and ``GlobalAveragePooling2D``; the converted ``.tflite``
is int8 up to the pooled features and float32 in the head behind one
``DEQUANTIZE``, all of it delegated to XNNPACK.

What this module adds is the check that the *whole* backbone is int8:
:func:`quantize_aware_backbone_model` refuses a backbone with layers that
have no tf_keras twin or that tfmot cannot quantize, naming them, rather
than leaving float islands in the int8 graph.

Backbones (tried at 64 px, weights ``None``):

* ``mobilenet_v2`` and ``mobilenet`` (v1): supported.
* ``mobilenet_v3_small_minimalistic`` (the shipped compact model's):
  supported; ReLU only, no squeeze-excitation, and its scaling is a
  ``PixelNormalization``.
* ``mobilenet_v3_small`` / ``_large``: rejected. Hard-swish and the
  squeeze-excitation gates are built from ``Multiply`` and raw operations
  (``x + 3``, ``x * (1 / 6)``) and the in-model preprocessing is a
  ``Rescaling`` layer; tfmot's default registry has none of them.
* EfficientNet(V2): the same (swish ``Multiply`` gates, ``Rescaling``,
  ``Normalization``).
* ResNet50, VGG16, DenseNet121: not tried (too large for this project's
  phones); DenseNet's BN layers that follow no convolution are refused.

Example:
    >>> from ssrnet_tf import model_spec
    >>> from ssrnet_tf.export import qat_export
    >>> model, spec = model_spec.load_keras("runs/ldl_mobilenet_v2/model.keras")
    >>> flatbuffer = qat_export.qat_to_tflite(model, faces, ages, epochs=1, output_path="ldl_qat.tflite")

Reference:
    Jacob et al., "Quantization and Training of Neural Networks for Efficient
    Integer-Arithmetic-Only Inference", CVPR 2018. Sandler et al.,
    "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018.
"""

from __future__ import annotations

import dataclasses
from typing import List, Optional, Sequence

import keras
import numpy as np

from ssrnet_tf.export import qat, tf_keras_twin
from ssrnet_tf.layers.pixel_normalization import PixelNormalization
from ssrnet_tf.models.backbones import BACKBONES
from ssrnet_tf.models.weight_transfer import leaf_layers

#: Families whose QAT int8 export is tested.
TESTED_BACKBONES = ("mobilenet_v2", "mobilenet", "mobilenet_v3_small_minimalistic")


@dataclasses.dataclass(frozen=True)
class BackboneParts:
    """Where the backbone of a Keras 3 age model is.

    Attributes:
        name: The registry name (a key of
            :data:`ssrnet_tf.models.backbones.BACKBONES`).
        backbone: The nested ``"<name>_backbone"`` model of the age model.
        normalization: Its :class:`PixelNormalization` layer.
        application: The Keras Applications model inside it.
    """

    name: str
    backbone: keras.Model
    normalization: PixelNormalization
    application: keras.Model


def backbone_parts(keras3_model) -> BackboneParts:
    """Finds the backbone of a model built by :func:`ssrnet_tf.models.build_age_model`.

    Raises:
        ValueError: If the model has no ``"<name>_backbone"`` made of a
            ``PixelNormalization`` and a registered Keras Applications
            model.
    """
    nested = [layer for layer in keras3_model.layers if isinstance(layer, keras.Model)]
    if len(nested) != 1 or not nested[0].name.endswith("_backbone"):
        raise ValueError(
            f"'{keras3_model.name}' is not a backbone age model: expected one nested '<name>_backbone' "
            f"model, found {[layer.name for layer in nested]}."
        )
    backbone = nested[0]
    name = backbone.name[: -len("_backbone")]
    if name not in BACKBONES:
        raise ValueError(f"backbone {name!r} of '{keras3_model.name}' is not registered; known: {sorted(BACKBONES)}.")
    normalizations = [layer for layer in backbone.layers if isinstance(layer, PixelNormalization)]
    applications = [layer for layer in backbone.layers if isinstance(layer, keras.Model)]
    if len(normalizations) != 1 or len(applications) != 1 or len(backbone.layers) != 3:
        raise ValueError(
            f"'{backbone.name}' should be input -> PixelNormalization -> Keras Applications model, "
            f"got {[type(layer).__name__ for layer in backbone.layers]}."
        )
    return BackboneParts(name, backbone, normalizations[0], applications[0])


def is_backbone_model(keras3_model) -> bool:
    """Whether ``keras3_model`` is a backbone age model (see :func:`backbone_parts`)."""
    try:
        backbone_parts(keras3_model)
    except ValueError:
        return False
    return True


def unsupported_backbone_layers(twin, backbone_layer_names: Sequence[str]) -> List[str]:
    """``'name (Type)'`` of each backbone layer of a twin that tfmot's default scheme cannot quantize."""
    names = set(backbone_layer_names)
    int8 = set(qat.int8_layer_names(qat.age_model(twin)))
    return [
        f"{layer.name} ({type(layer).__name__})"
        for layer in twin.layers
        if layer.name in names and layer.name not in int8 and type(layer).__name__ != "InputLayer"
    ]


def quantize_aware_backbone_model(
    keras3_model,
    representative_images: Optional[np.ndarray] = None,
    *,
    twin=None,
    freeze_batch_norm: bool = True,
    batch_size: int = 64,
) -> "qat.tf_keras.Model":
    """The QAT model of a backbone age model, checked to make the whole backbone int8.

    Args:
        keras3_model: A trained model from
            :func:`ssrnet_tf.models.build_age_model`.
        representative_images: float32 raw 0-255 BGR faces that set the
            quantization ranges.
        twin: Its :func:`ssrnet_tf.export.tf_keras_twin.to_tf_keras_twin`
            if already made.
        freeze_batch_norm: Whether BN layers are frozen during fine-tuning.
        batch_size: Batch size of the calibration passes.

    Returns:
        :func:`ssrnet_tf.export.qat.quantize_aware_model` of the twin: an
        uncompiled ``tf_keras.Model`` from raw pixels to ages ``(N, 1)``.

    Raises:
        ValueError: If the model is no backbone age model, or its backbone
            has layers without a twin or that tfmot cannot quantize (e.g.
            MobileNetV3's hard-swish), naming them.
    """
    parts = backbone_parts(keras3_model)
    unsupported = tf_keras_twin.untranslatable_operations(parts.backbone)
    if not unsupported:
        twin = twin if twin is not None else tf_keras_twin.to_tf_keras_twin(keras3_model)
        unsupported = unsupported_backbone_layers(twin, [layer.name for layer in leaf_layers(parts.backbone)])
    if unsupported:
        shown = ", ".join(unsupported[:8]) + (f" and {len(unsupported) - 8} more" if len(unsupported) > 8 else "")
        raise ValueError(
            f"tfmot's 8-bit scheme cannot quantize {len(unsupported)} layers of backbone '{parts.name}': {shown}. "
            f"QAT is tested for {', '.join(TESTED_BACKBONES)}; use post-training int8 "
            "(convert_to_tflite(..., quantize='int8')) for this backbone."
        )
    return qat.quantize_aware_model(
        twin, representative_images, freeze_batch_norm=freeze_batch_norm, batch_size=batch_size
    )
