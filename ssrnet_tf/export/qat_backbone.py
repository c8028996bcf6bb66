"""Quantization-aware training (QAT) of a Keras Applications backbone with an age head.

The backbone counterpart of :mod:`ssrnet_tf.export.qat` (SSR-Net): a model
from :func:`ssrnet_tf.models.build_age_model` (raw 0-255 BGR pixels ->
``PixelNormalization`` -> Keras Applications backbone -> pooled features ->
heads) is fine-tuned with TensorFlow Model Optimization (``tfmot``) and
exported to an int8 ``.tflite``. tfmot only accepts ``tf_keras`` (Keras 2)
models, so the work is done on a ``tf_keras`` twin of the same network:

1. **tf_keras twin.** :func:`to_tf_keras_twin` rebuilds the model as one flat
   functional ``tf_keras.Model`` (tfmot cannot quantize a model nested in a
   model):

   * the in-model pixel normalisation
     (:class:`ssrnet_tf.layers.PixelNormalization`:
     ``x[..., order] * scale + offset``) becomes a frozen 1x1
     ``Conv2D`` with a constant kernel (the channel permutation times the
     scale) and the offset as its bias: the same function up to float
     rounding, and a layer tfmot quantizes;
   * the backbone is ``tf_keras.applications.<SameFamily>(include_top=False,
     weights=None, input_tensor=..., alpha=..., pooling=...)`` built on that
     tensor: Keras 3 and tf_keras applications are the same code, so layer
     names and weight shapes match. ``alpha`` is the multiplier whose twin
     has exactly the Keras 3 backbone's weight shapes (the one written in
     the application's name first);
   * the head is rebuilt by walking the Keras 3 graph after the backbone,
     layer by layer, with the same names: ``Dense``, ``Dropout``,
     ``Rescaling``, ``Identity``, ``Activation``, ``Softmax`` and
     :class:`TfKerasExpectedValue` (the twin of
     :class:`ssrnet_tf.layers.ExpectedValue`). Any other layer raises a
     ``ValueError`` naming it.

   Weights are copied by layer name with shape checks
   (:func:`ssrnet_tf.export.qat.transfer_weights`; a missing counterpart or a
   wrong shape is a ``ValueError``). :func:`max_twin_difference` checks the
   twin against the Keras 3 model on real faces (``< 1e-3`` years here).
2. **Annotation.** :func:`quantize_aware_backbone_model` keeps the ``"age"``
   output only and annotates exactly what the post-training int8 export
   (:func:`ssrnet_tf.export.convert_to_tflite`) quantizes: the pixel
   normalisation and every backbone layer. The head (dense layers, softmax,
   expected value) computes in float32, as in PTQ
   (:mod:`ssrnet_tf.export.int8_friendly`): it is a few matrix products,
   and a 101-way softmax has the small probabilities that int8 rounds away
   (the converter still stores the dense kernels as int8, run "hybrid").
   BN layers are frozen (inference mode) as for SSR-Net. tfmot's default
   8-bit scheme folds MobileNetV2's ``Conv2D -> BatchNormalization ->
   ReLU(6)`` and ``DepthwiseConv2D -> BatchNormalization -> ReLU(6)``
   patterns (one activation quantizer after the ReLU6) and quantizes
   ``Add``, ``ZeroPadding2D`` and ``GlobalAveragePooling2D``.
3. **Ranges, fine-tuning, export** are those of SSR-Net
   (:func:`ssrnet_tf.export.qat.calibrate_quantization_ranges`,
   :func:`~ssrnet_tf.export.qat.qat_finetune`,
   :func:`~ssrnet_tf.export.qat.export_qat_tflite`): every activation range
   is set from float statistics on real faces before fine-tuning; the
   fine-tuning loss is the mean absolute error of the expected age (DLDL-v2's
   expectation loss; the classification losses of the head would need the
   head objects and their label encodings, which a saved model no longer
   has); the converter needs no representative dataset. The ``.tflite``
   takes float32 raw BGR pixels and returns ages ``(N, 1)``; everything up
   to the pooled features is int8 and the head float32 behind one
   ``DEQUANTIZE``, all of it delegated to XNNPACK (70/70 nodes for
   MobileNetV2 with the LDL head).

:func:`qat_backbone_to_tflite` runs all of it in one call;
``export/qat_backbone.py`` is its command line.

Backbones (tried at 64 px, weights ``None``):

* ``mobilenet_v2``: supported (Conv2D, DepthwiseConv2D, BN, ReLU6, Add,
  ZeroPadding2D, GlobalAveragePooling2D are all in tfmot's registry).
* ``mobilenet`` (v1): the same layer types; supported.
* ``mobilenet_v3_small`` / ``_large``: rejected. Hard-swish and the
  squeeze-excitation gates are built from ``Multiply`` and raw TensorFlow
  ops (``x + 3``, ``x * (1 / 6)``: ``TFOpLambda`` layers in tf_keras) and the
  in-model preprocessing is a ``Rescaling`` layer; tfmot's default registry
  has none of them (82 such layers in MobileNetV3Small), and leaving them
  float would cut the int8 graph into dozens of float islands. Keras 3 and
  tf_keras also name MobileNetV3's layers differently (``conv`` /
  ``Conv``), so its weights would need a name map as well.
* EfficientNet(V2): the same (swish ``Multiply`` gates, ``Rescaling``,
  ``Normalization``).
* ResNet50, VGG16, DenseNet121: not tried (too large for this project's
  phones); DenseNet's BN layers that follow no convolution are refused.

:func:`unsupported_backbone_layers` is the check that rejects a backbone
with a message naming its unsupported layers.

Example:
    >>> from ssrnet_tf import model_spec
    >>> from ssrnet_tf.export import qat_backbone
    >>> model, spec = model_spec.load_keras("runs/ldl_mobilenet_v2/model.keras")
    >>> flatbuffer = qat_backbone.qat_backbone_to_tflite(
    ...     model, faces, ages, epochs=1, output_path="ldl_qat.tflite")

Reference:
    Jacob et al., "Quantization and Training of Neural Networks for Efficient
    Integer-Arithmetic-Only Inference", CVPR 2018. Sandler et al.,
    "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Dict, List, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from ssrnet_tf.export import qat
from ssrnet_tf.layers.expected_value import ExpectedValue
from ssrnet_tf.layers.pixel_normalization import PixelNormalization
from ssrnet_tf.models.backbones import BACKBONES

#: tf_keras, imported by :mod:`ssrnet_tf.export.qat` (with a clear error when missing).
tf_keras = qat.tf_keras

#: Width multipliers a Keras Applications family accepts, most common first.
_ALPHAS = {
    "MobileNet": (0.25, 0.5, 0.75, 1.0),
    "MobileNetV2": (0.35, 0.5, 0.75, 1.0, 1.3, 1.4),
    "MobileNetV3Small": (0.75, 1.0),
    "MobileNetV3Large": (0.75, 1.0),
}

#: Families whose QAT int8 export is tested.
TESTED_BACKBONES = ("mobilenet_v2", "mobilenet")


# === tf_keras layers ===


@tf_keras.saving.register_keras_serializable(package="ssrnet_tf")
class TfKerasExpectedValue(tf_keras.layers.Layer):
    """Expected value of class probabilities, as a tf_keras layer.

    The tf_keras twin of :class:`ssrnet_tf.layers.ExpectedValue`:
    ``y = sum_k p_k * v_k`` for probabilities ``(batch, K)`` and constant
    class values ``v`` (DLDL-v2 eq. 5). It is computed as a product and a
    sum (TFLite ``MUL`` + ``SUM``, both run by XNNPACK), not as the Keras 3
    layer's matrix product: the converter of a QAT model stores the weights
    of every float ``FULLY_CONNECTED`` op as int8, which would round the
    ages 0..100 to a 100/127-year grid (up to 0.39 years off per class).

    Args:
        values: Sequence of the ``K`` class values.
        **kwargs: Standard ``tf_keras.layers.Layer`` arguments.

    Example:
        >>> TfKerasExpectedValue([0.0, 10.0])(tf.constant([[0.5, 0.5]])).numpy()
        array([[5.]], dtype=float32)

    Reference:
        Gao et al., "Age Estimation Using Expectation of Label Distribution
        Learning", IJCAI 2018 (DLDL-v2).
    """

    def __init__(self, values, **kwargs):
        super().__init__(**kwargs)
        values = [float(value) for value in np.asarray(values, dtype=np.float64).reshape(-1)]
        if not values:
            raise ValueError("TfKerasExpectedValue needs at least one class value, got [].")
        self.values = values

    def call(self, inputs):
        values = tf.constant(np.asarray(self.values, dtype=np.float32), dtype=inputs.dtype)  # (K,)
        return tf.reduce_sum(inputs * values, axis=-1, keepdims=True)  # (batch, 1)

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape)[:-1].concatenate([1])

    def get_config(self):
        config = super().get_config()
        config.update({"values": list(self.values)})
        return config


#: Custom objects for deserializing (and quantize-cloning) the twin.
CUSTOM_OBJECTS = {
    "TfKerasExpectedValue": TfKerasExpectedValue,
    "ssrnet_tf>TfKerasExpectedValue": TfKerasExpectedValue,
}


# === The parts of a Keras 3 age model ===


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


def _weight_shapes(model) -> List[tuple]:
    return [tuple(weight.shape) for layer in model.layers for weight in layer.weights]


def _application_arguments(parts: BackboneParts) -> dict:
    """The tf_keras constructor arguments that rebuild ``parts.application``."""
    spec = BACKBONES[parts.name]
    constructor = getattr(tf_keras.applications, spec.constructor)
    pooling = {"GlobalAveragePooling2D": "avg", "GlobalMaxPooling2D": "max"}.get(
        type(parts.application.layers[-1]).__name__
    )
    if pooling is None:
        raise ValueError(f"'{parts.application.name}' does not end in global pooling; was it built with pooling?")
    arguments = dict(
        include_top=False, weights=None, input_shape=tuple(parts.application.input_shape[1:]), pooling=pooling
    )
    arguments.update(dict(spec.extra_kwargs))
    if not spec.has_alpha:
        return arguments
    written = re.search(r"_(\d+\.\d+)_\d+$", parts.application.name)
    candidates = ([float(written.group(1))] if written else []) + list(_ALPHAS.get(spec.constructor, ()))
    expected = _weight_shapes(parts.application)
    for alpha in dict.fromkeys(candidates):
        try:
            trial = constructor(alpha=alpha, **arguments)
        except ValueError:
            continue  # an alpha the family refuses at this size
        if _weight_shapes(trial) == expected:
            return {**arguments, "alpha": alpha}
    raise ValueError(
        f"no width multiplier in {sorted(set(candidates))} rebuilds '{parts.application.name}' "
        f"({spec.constructor}) with the same weight shapes."
    )


# === tf_keras twin ===


def _pixel_normalization_conv(layer: PixelNormalization):
    """A frozen 1x1 Conv2D computing ``x[..., order] * scale + offset`` and its weights."""
    scale = np.broadcast_to(np.asarray(layer.scale, dtype=np.float32), (3,))
    offset = np.broadcast_to(np.asarray(layer.offset, dtype=np.float32), (3,))
    order = (2, 1, 0) if layer.reverse_channels else (0, 1, 2)
    kernel = np.zeros((1, 1, 3, 3), dtype=np.float32)  # (kh, kw, in, out)
    for out_channel, in_channel in enumerate(order):
        kernel[0, 0, in_channel, out_channel] = scale[out_channel]
    conv = tf_keras.layers.Conv2D(3, 1, trainable=False, name=layer.name)
    return conv, [kernel, np.array(offset)]


def _head_layer(layer):
    """The tf_keras twin of one Keras 3 head layer (same name and arguments)."""
    config = layer.get_config()
    name = layer.name
    if isinstance(layer, keras.layers.Dense):
        return tf_keras.layers.Dense(
            config["units"], activation=config["activation"], use_bias=config["use_bias"], name=name
        )
    if isinstance(layer, keras.layers.Dropout):
        return tf_keras.layers.Dropout(config["rate"], name=name)
    if isinstance(layer, keras.layers.Rescaling):
        return tf_keras.layers.Rescaling(config["scale"], config["offset"], name=name)
    if isinstance(layer, keras.layers.Identity):
        return tf_keras.layers.Identity(name=name)
    if isinstance(layer, keras.layers.Activation):
        return tf_keras.layers.Activation(config["activation"], name=name)
    if isinstance(layer, keras.layers.Softmax):
        return tf_keras.layers.Softmax(axis=config["axis"], name=name)
    if isinstance(layer, ExpectedValue):
        return TfKerasExpectedValue(layer.values, name=name)
    raise ValueError(
        f"head layer '{name}' ({type(layer).__name__}) has no tf_keras twin; supported: Dense, Dropout, "
        "Rescaling, Identity, Activation, Softmax, ExpectedValue."
    )


def _only_node(layer):
    nodes = layer._inbound_nodes  # pylint: disable=protected-access
    if len(nodes) != 1:
        raise ValueError(f"layer '{layer.name}' is called {len(nodes)} times; the twin needs one call per layer.")
    return nodes[0]


def _twin_head(keras3_model, parts: BackboneParts, image, features):
    """Rebuilds the layers after the backbone on the twin's ``features``.

    Returns:
        The twin's outputs in the structure of ``keras3_model.output``.
    """
    twins = {id(keras3_model.inputs[0]): image}
    twins[id(_only_node(parts.backbone).output_tensors[0])] = features
    for layer in keras3_model.layers:
        if isinstance(layer, keras.layers.InputLayer) or layer is parts.backbone:
            continue
        node = _only_node(layer)
        inputs = [twins[id(tensor)] for tensor in node.input_tensors]
        output = _head_layer(layer)(inputs[0] if len(inputs) == 1 else inputs)
        for tensor, twin in zip(node.output_tensors, tf.nest.flatten(output)):
            twins[id(tensor)] = twin
    return tf.nest.map_structure(lambda tensor: twins[id(tensor)], keras3_model.output)


def build_tf_keras_twin(keras3_model) -> "tf_keras.Model":
    """The tf_keras architecture of a Keras 3 backbone age model (untrained weights).

    Args:
        keras3_model: From :func:`ssrnet_tf.models.build_age_model` (or a
            ``.keras`` file saved from one).

    Returns:
        A flat ``tf_keras.Model`` with the same input, output structure and
        layer names (pixel normalisation as a frozen 1x1 convolution, with
        its constant weights set).

    Raises:
        ValueError: If the model is not a backbone age model or has a layer
            without a twin.
    """
    parts = backbone_parts(keras3_model)
    arguments = _application_arguments(parts)
    constructor = getattr(tf_keras.applications, BACKBONES[parts.name].constructor)

    # === Layers ===
    normalization, constants = _pixel_normalization_conv(parts.normalization)

    # === Functional Model ===
    image = tf_keras.Input(tuple(keras3_model.input_shape[1:]), name=keras3_model.inputs[0].name)
    normalized = normalization(image)
    application = constructor(input_tensor=normalized, **arguments)  # flat: built on `normalized`
    outputs = _twin_head(keras3_model, parts, image, application.output)
    model = tf_keras.Model(image, outputs, name=keras3_model.name)
    normalization.set_weights(constants)
    return model


def to_tf_keras_twin(keras3_model) -> "tf_keras.Model":
    """The tf_keras twin of a Keras 3 backbone age model, with its weights.

    Args:
        keras3_model: A (trained) model from
            :func:`ssrnet_tf.models.build_age_model`.

    Returns:
        A ``tf_keras.Model`` computing the same function
        (:func:`build_tf_keras_twin` plus
        :func:`ssrnet_tf.export.qat.transfer_weights`).

    Raises:
        ValueError: If the architectures differ (a layer without counterpart,
            a weight of another shape).
    """
    model = build_tf_keras_twin(keras3_model)
    qat.transfer_weights(keras3_model, model)
    return model


def _outputs_by_name(outputs) -> Dict[str, np.ndarray]:
    if isinstance(outputs, dict):
        return {name: np.asarray(value) for name, value in outputs.items()}
    if isinstance(outputs, (list, tuple)):
        return {str(index): np.asarray(value) for index, value in enumerate(outputs)}
    return {"age": np.asarray(outputs)}


def max_twin_difference(keras3_model, twin, images: np.ndarray, batch_size: int = 128) -> Dict[str, float]:
    """Largest absolute difference of every output, Keras 3 vs twin, on ``images``."""
    expected = _outputs_by_name(keras3_model.predict(images, batch_size=batch_size, verbose=0))
    actual = _outputs_by_name(twin.predict(images, batch_size=batch_size, verbose=0))
    return {name: float(np.abs(actual[name] - expected[name]).max()) for name in expected}


# === Quantization-aware model ===


def age_model(twin, output: str = "age") -> "tf_keras.Model":
    """The twin with its ``output`` only (the layers of other outputs dropped)."""
    outputs = twin.output
    if isinstance(outputs, dict):
        if output not in outputs:
            raise ValueError(f"'{twin.name}' has no output {output!r}; outputs: {sorted(outputs)}.")
        outputs = outputs[output]
    elif isinstance(outputs, (list, tuple)):
        raise ValueError(f"'{twin.name}' has several unnamed outputs; build it from a model with dict outputs.")
    return tf_keras.Model(twin.inputs, outputs, name=twin.name)


def _quantizable(layer, registry) -> bool:
    """Whether tfmot's default 8-bit scheme handles the layer in a backbone."""
    if isinstance(layer, tf_keras.layers.BatchNormalization):
        # Only folded into a preceding convolution by tfmot's transforms.
        producer = layer._inbound_nodes[0].inbound_layers  # pylint: disable=protected-access
        return isinstance(producer, (tf_keras.layers.Conv2D, tf_keras.layers.DepthwiseConv2D))
    return registry.supports(layer)


def unsupported_backbone_layers(twin, backbone_layer_names: Sequence[str]) -> List[str]:
    """``'name (Type)'`` of each backbone layer that tfmot's default scheme cannot quantize."""
    tfmot = qat._tfmot()  # pylint: disable=protected-access
    registry = tfmot.quantization.keras.default_8bit.Default8BitQuantizeRegistry()
    names = set(backbone_layer_names)
    return [
        f"{layer.name} ({type(layer).__name__})"
        for layer in twin.layers
        if layer.name in names and not _quantizable(layer, registry)
    ]


def _backbone_layer_names(keras3_model, twin) -> List[str]:
    """Twin layers that stand for the Keras 3 backbone: all but the input and the head.

    The head layers are the twins of the Keras 3 model's top-level layers,
    with their names; the backbone's names need not match (MobileNetV3's
    differ between Keras 3 and tf_keras).
    """
    top_level = {layer.name for layer in keras3_model.layers}
    return [
        layer.name
        for layer in twin.layers
        if layer.name not in top_level and not isinstance(layer, tf_keras.layers.InputLayer)
    ]


def quantize_aware_backbone_model(
    keras3_model,
    representative_images: Optional[np.ndarray] = None,
    *,
    twin=None,
    freeze_batch_norm: bool = True,
    batch_size: int = 64,
) -> "tf_keras.Model":
    """The QAT model of a backbone age model: backbone int8, head float.

    Args:
        keras3_model: A trained model from
            :func:`ssrnet_tf.models.build_age_model`.
        representative_images: float32 raw 0-255 BGR faces that set the
            quantization ranges
            (:func:`ssrnet_tf.export.qat.calibrate_quantization_ranges`).
        twin: Its :func:`to_tf_keras_twin` if already made.
        freeze_batch_norm: Whether BN layers are frozen during fine-tuning.
        batch_size: Batch size of the calibration passes.

    Returns:
        An uncompiled ``tf_keras.Model`` from raw pixels to ages ``(N, 1)``.

    Raises:
        ValueError: If the backbone has layers tfmot cannot quantize
            (e.g. MobileNetV3's hard-swish), naming them.
    """
    full_twin = twin if twin is not None else build_tf_keras_twin(keras3_model)
    float_model = age_model(full_twin)  # shares the layers of full_twin
    quantized = set(_backbone_layer_names(keras3_model, float_model))
    unsupported = unsupported_backbone_layers(float_model, quantized)
    if unsupported:
        shown = ", ".join(unsupported[:8]) + (f" and {len(unsupported) - 8} more" if len(unsupported) > 8 else "")
        raise ValueError(
            f"tfmot's 8-bit scheme cannot quantize {len(unsupported)} layers of backbone "
            f"'{backbone_parts(keras3_model).name}': {shown}. QAT is tested for {', '.join(TESTED_BACKBONES)}; "
            "use post-training int8 (convert_to_tflite(..., quantize='int8')) for this backbone."
        )
    if twin is None:
        qat.transfer_weights(keras3_model, full_twin)  # checked first: a clearer error for such backbones
    qat_model = qat.annotate_and_apply(
        float_model,
        lambda layer: layer.name in quantized,
        freeze_batch_norm=freeze_batch_norm,
        custom_objects=CUSTOM_OBJECTS,
    )
    if representative_images is not None:
        qat.calibrate_quantization_ranges(qat_model, float_model, representative_images, batch_size=batch_size)
    return qat_model


def qat_backbone_to_tflite(
    keras3_model,
    faces: np.ndarray,
    ages: np.ndarray,
    *,
    epochs: int = 1,
    batch_size: int = 32,
    learning_rate: float = 1e-4,
    calibration_size: int = 500,
    output_path=None,
    spec=None,
    twin=None,
) -> bytes:
    """Keras 3 backbone age model -> QAT fine-tuning -> int8 ``.tflite``, in one call.

    Args:
        keras3_model: A trained model from
            :func:`ssrnet_tf.models.build_age_model`.
        faces: float32 raw 0-255 BGR faces for calibration and fine-tuning
            (keep evaluation faces out).
        ages: Their ages ``(N,)``.
        epochs, batch_size, learning_rate: The
            :class:`ssrnet_tf.export.qat.QATSchedule` (``epochs=0``: the
            calibrated QAT graph, not fine-tuned).
        calibration_size: Faces (the first ones) that set the initial
            quantization ranges.
        output_path: If given, the ``.tflite`` is written there.
        spec: The :class:`ssrnet_tf.model_spec.ModelSpec` to embed; default
            read off the model with the ``"age"`` output only.
        twin: Its :func:`to_tf_keras_twin` if already made.

    Returns:
        The flatbuffer bytes: float32 raw BGR input, ages ``(N, 1)``.
    """
    from ssrnet_tf.model_spec import ModelSpec  # pylint: disable=import-outside-toplevel

    schedule = qat.QATSchedule(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate)
    qat_model = quantize_aware_backbone_model(keras3_model, np.asarray(faces)[:calibration_size], twin=twin)
    qat.qat_finetune(qat_model, faces, ages, schedule)
    if spec is None:
        spec = ModelSpec.for_model(
            keras3_model, architecture=f"{backbone_parts(keras3_model).name} (QAT int8)", outputs={"age": "age in years, float32 (N, 1)"}
        )
    return qat.export_qat_tflite(qat_model, output_path, spec=spec)
