"""Quantization-aware training (QAT) of an age model for an int8 TFLite export.

TensorFlow Model Optimization (``tfmot``) only accepts ``tf_keras`` (Keras 2)
models; every ssrnet_tf model is a Keras 3 model. The QAT path therefore goes
through a ``tf_keras`` twin, the same way for SSR-Net and for a Keras
Applications backbone with heads:

1. **tf_keras twin.** :func:`ssrnet_tf.export.tf_keras_twin.to_tf_keras_twin`
   translates the Keras 3 graph layer by layer (table
   :data:`~ssrnet_tf.export.tf_keras_twin.TWINS`), names and weights
   included. Average pools become constant depthwise convolutions, as
   :func:`ssrnet_tf.export.int8_friendly.average_pools_as_depthwise` does for
   the post-training (PTQ) int8 export (XNNPACK has no int8
   ``AVERAGE_POOL_2D``), and a backbone's pixel normalisation a frozen 1x1
   convolution.
2. **Annotation.** :func:`quantize_aware_model` keeps the ``"age"`` output
   and annotates exactly what the PTQ int8 export quantizes
   (:func:`int8_layer_names`, ``quantize_annotate_layer``): the
   convolutions, batch normalisations, activations and pools of SSR-Net's
   streams and fusion blocks, or the whole of a MobileNet backbone. The head
   (dense, multiply, softmax, eq. 7, expected values) is left unannotated and
   stays float32, for the reasons given in
   :mod:`ssrnet_tf.export.int8_friendly` (dead ReLU units of the published
   weights, products and the division of eq. 7; a 101-way softmax's small
   probabilities). ``quantize_apply`` then inserts the fake-quantization ops,
   inside ``quantize_scope`` so that it can clone the custom layers.
3. **Batch normalisation.** tfmot's default 8-bit scheme does not fold BN into
   the convolution while training. Its layout transforms match
   ``Conv2D -> BatchNormalization -> Activation('relu')`` (stream 1;
   ``Conv2DBatchNormActivationQuantize``) and ``Conv2D ->
   BatchNormalization`` (stream 2, whose activation is tanh;
   ``Conv2DBatchNormQuantize``) and only remove the fake quantization between
   the convolution and BN (and the ReLU): the kernel is fake-quantized per
   output channel before BN, and the activation after BN / ReLU. The TFLite
   converter folds BN into the convolution afterwards; because the kernel is
   quantized symmetrically per output channel, multiplying a channel by its
   BN scale moves its quantization grid exactly, so the simulated and the
   deployed kernels agree. Fine-tuning runs with BN **frozen** (moving
   statistics, gamma and beta; a ``tf_keras`` BN layer with
   ``trainable=False`` runs in inference mode), so the graph trained is the
   graph deployed and a few hundred steps cannot drift the statistics.
4. **Range initialisation.** tfmot starts every activation range at
   ``[-6, 6]`` and moves it by an exponential moving average with decay
   0.999, which takes thousands of steps; SSR-Net's raw-pixel input spans
   0-255 and several activations exceed 6. Before fine-tuning,
   :func:`calibrate_quantization_ranges` sets every range from the float
   tensors on representative faces (the min/max statistics that PTQ
   calibration uses), and one training-mode pass sets the per-channel kernel
   ranges. Fine-tuning then only refines them.
5. **Fine-tuning.** :func:`qat_finetune`: mean absolute error, Adam with a
   small learning rate, a short schedule (one to three epochs on a few
   thousand real faces).
6. **Export.** :func:`export_qat_tflite`: ``TFLiteConverter.from_keras_model``
   with ``optimizations=[DEFAULT]``. The fake-quantization ops give every
   int8 tensor its scale, so no representative dataset is needed: the
   quantized part becomes int8 and the head stays float32 behind one
   ``DEQUANTIZE`` per fusion branch (six for three stages). Tensor names are stripped
   (:func:`ssrnet_tf.export.flatbuffer.compact_flatbuffer`) and the
   :class:`ssrnet_tf.model_spec.ModelSpec` is embedded.

:func:`ssrnet_tf.export.qat_export.qat_to_tflite` runs all of it in one call
(``ssrnet-tf export --quantize qat``).

Importing tensorflow-model-optimization sets the environment variable
``TF_USE_LEGACY_KERAS=1`` for the whole process; this module restores the
previous value, so Keras 3 code (and child processes) are not affected.

Example:
    >>> from ssrnet_tf import pretrained
    >>> from ssrnet_tf.export import qat, tf_keras_twin
    >>> model = pretrained.load_pretrained("imdb")
    >>> qat_model = qat.quantize_aware_model(tf_keras_twin.to_tf_keras_twin(model), faces[:500])
    >>> qat.qat_finetune(qat_model, faces, ages, epochs=1)
    >>> flatbuffer = qat.export_qat_tflite(qat_model, "ssrnet_qat.tflite")

Reference:
    Jacob et al., "Quantization and Training of Neural Networks for Efficient
    Integer-Arithmetic-Only Inference", CVPR 2018. Yang et al., "SSR-Net: A
    Compact Soft Stagewise Regression Network for Age Estimation", IJCAI 2018.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import warnings
from typing import Dict, List, Optional, Tuple, Union

import keras
import numpy as np
import tensorflow as tf

from ssrnet_tf.export import tf_keras_layers
from ssrnet_tf.export.tf_keras_layers import tf_keras

PathLike = Union[str, os.PathLike]

#: Names of the range variables tfmot gives a wrapped layer's activation
#: quantizers (its kernel ranges are ``kernel`` / ``depthwise_kernel``).
_RANGE_SUFFIXES = ("output", "post_activation")


def _tfmot():
    """Imports tensorflow-model-optimization without its process-wide side effect."""
    # Resolve tf.keras (to Keras 3) first: tfmot sets TF_USE_LEGACY_KERAS=1,
    # which would otherwise route tf.keras to tf_keras for this process.
    getattr(tf.keras, "version", None)  # an attribute lookup resolves the lazy module
    previous = os.environ.get("TF_USE_LEGACY_KERAS")
    try:
        import tensorflow_model_optimization as tfmot  # pylint: disable=import-outside-toplevel
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "QAT needs tensorflow-model-optimization: pip install tensorflow-model-optimization"
        ) from error
    finally:
        if previous is None:
            os.environ.pop("TF_USE_LEGACY_KERAS", None)
        else:
            os.environ["TF_USE_LEGACY_KERAS"] = previous
    return tfmot


# === Quantization-aware model ===


#: tf_keras layer types an int8 export keeps in float: the head (as
#: :func:`ssrnet_tf.export.int8_friendly.float_head_layer_names`).
_FLOAT_HEAD_TYPES = (tf_keras.layers.Dense, tf_keras.layers.Multiply, tf_keras.layers.Softmax)
#: Layers without arithmetic, left unannotated.
_PASSIVE_TYPES = (tf_keras.layers.InputLayer, tf_keras.layers.Dropout, tf_keras_layers.TfKerasStaticFlatten)


def age_model(twin, output: str = "age") -> "tf_keras.Model":
    """The twin with its ``output`` only (the layers of other outputs dropped).

    Raises:
        ValueError: If the twin has no such output.
    """
    if output not in twin.output:
        raise ValueError(f"'{twin.name}' has no output {output!r}; outputs: {sorted(twin.output)}.")
    return tf_keras.Model(twin.inputs, twin.output[output], name=twin.name)


def quantizable(layer, registry=None) -> bool:
    """Whether tfmot's default 8-bit scheme quantizes ``layer`` of a tf_keras twin."""
    registry = registry or _tfmot().quantization.keras.default_8bit.Default8BitQuantizeRegistry()
    if isinstance(layer, tf_keras.layers.BatchNormalization):
        # Only folded into a preceding convolution by tfmot's transforms.
        producer = layer._inbound_nodes[0].inbound_layers  # pylint: disable=protected-access
        return isinstance(producer, (tf_keras.layers.Conv2D, tf_keras.layers.DepthwiseConv2D))
    return registry.supports(layer)


def int8_layer_names(float_model) -> List[str]:
    """The layers of a twin that QAT quantizes: what the post-training int8 export does.

    Every layer but the float head (dense, multiply, softmax and the custom
    layers: eq. 7, expected values), the layers without arithmetic (input,
    dropout, flatten) and those tfmot cannot quantize: the convolutions,
    batch normalisations, activations and pools of SSR-Net's streams and
    fusion blocks, the whole of a MobileNet backbone.
    """
    registry = _tfmot().quantization.keras.default_8bit.Default8BitQuantizeRegistry()
    custom = tuple(type(layer) for layer in float_model.layers if type(layer).__module__ == tf_keras_layers.__name__)
    return [
        layer.name
        for layer in float_model.layers
        if not isinstance(layer, _FLOAT_HEAD_TYPES + _PASSIVE_TYPES + custom) and quantizable(layer, registry)
    ]


def quantize_aware_model(
    tf_keras_model,
    representative_images: Optional[np.ndarray] = None,
    *,
    freeze_batch_norm: bool = True,
    batch_size: int = 64,
) -> "tf_keras.Model":
    """The QAT model of a tf_keras twin: its ``"age"`` output, the feature extractor int8.

    Annotates :func:`int8_layer_names` with ``quantize_annotate_layer`` and
    applies ``quantize_apply`` (tfmot's default 8-bit scheme: per-channel
    symmetric kernels, per-tensor asymmetric activations); the head stays
    float, as in the post-training int8 export.

    Args:
        tf_keras_model: A twin from
            :func:`ssrnet_tf.export.tf_keras_twin.to_tf_keras_twin`
            (weights are copied), with an ``"age"`` output.
        representative_images: float32 raw 0-255 BGR faces ``(N, H, W, 3)``
            that set the quantization ranges
            (:func:`calibrate_quantization_ranges`); without them the ranges
            keep tfmot's ``[-6, 6]`` start.
        freeze_batch_norm: Whether BN layers are frozen (inference mode,
            fixed statistics and affine weights) during fine-tuning.
        batch_size: Batch size of the calibration passes.

    Returns:
        The QAT ``tf_keras.Model`` (uncompiled) from raw pixels to ages
        ``(N, 1)``.

    Raises:
        ValueError: If the model has an ``AveragePooling2D`` (XNNPACK has no
            int8 average pool; the twin has depthwise average pools) or no
            ``"age"`` output.
    """
    if any(isinstance(layer, tf_keras.layers.AveragePooling2D) for layer in tf_keras_model.layers):
        raise ValueError(
            "the model has AveragePooling2D layers, which XNNPACK cannot run in int8; "
            "build it with ssrnet_tf.export.tf_keras_twin.to_tf_keras_twin (depthwise average pools)."
        )
    float_model = age_model(tf_keras_model)  # shares the layers of tf_keras_model
    quantized = set(int8_layer_names(float_model))
    qat_model = annotate_and_apply(
        float_model, lambda layer: layer.name in quantized, freeze_batch_norm=freeze_batch_norm
    )
    if representative_images is not None:
        calibrate_quantization_ranges(qat_model, float_model, representative_images, batch_size=batch_size)
    return qat_model


def annotate_and_apply(tf_keras_model, quantized, *, freeze_batch_norm: bool = True, custom_objects=None):
    """Annotates the chosen layers of a tf_keras model and applies tfmot's QAT.

    A copy of the model is made in which every layer for which
    ``quantized(layer)`` is true is wrapped in ``quantize_annotate_layer``
    (BN layers frozen if asked), the weights are copied over, and
    ``quantize_apply`` (tfmot's default 8-bit scheme) inserts the fake
    quantization. Kernels of frozen layers stay frozen
    (:func:`_freeze_quantized_kernels_of_frozen_layers`).

    Args:
        tf_keras_model: A flat functional ``tf_keras.Model`` (no nested models).
        quantized: ``layer -> bool``: whether a layer is quantized.
        freeze_batch_norm: Whether BN layers are frozen (inference mode,
            fixed statistics and affine weights) during fine-tuning.
        custom_objects: Custom tf_keras layers of the model beyond
            :data:`CUSTOM_OBJECTS`.

    Returns:
        The QAT ``tf_keras.Model`` (uncompiled, ranges not calibrated).
    """
    tfmot = _tfmot()

    def annotate(layer):
        config = layer.get_config()
        if freeze_batch_norm and isinstance(layer, tf_keras.layers.BatchNormalization):
            config["trainable"] = False
        clone = layer.__class__.from_config(config)
        if quantized(layer):
            return tfmot.quantization.keras.quantize_annotate_layer(clone)
        return clone

    annotated = tf_keras.models.clone_model(tf_keras_model, clone_function=annotate)
    # QuantizeAnnotate wrappers get their own names; match by the inner layer.
    targets = {getattr(layer, "layer", layer).name: getattr(layer, "layer", layer) for layer in annotated.layers}
    for layer in tf_keras_model.layers:
        if layer.weights:
            targets[layer.name].set_weights(layer.get_weights())
    with tfmot.quantization.keras.quantize_scope({**tf_keras_layers.CUSTOM_OBJECTS, **(custom_objects or {})}):
        qat_model = tfmot.quantization.keras.quantize_apply(annotated)
    _freeze_quantized_kernels_of_frozen_layers(qat_model)
    return qat_model


def _freeze_quantized_kernels_of_frozen_layers(qat_model) -> None:
    """Keeps the kernels of frozen layers (the constant average pools) frozen.

    ``QuantizeWrapper.build`` adds every kernel it fake-quantizes to its own
    trainable weights, whatever the wrapped layer's ``trainable`` flag says
    (tfmot 0.8), so the optimizer would train the ``1 / k^2`` kernels. They
    are moved to the wrapper's non-trainable weights.
    """
    for layer in qat_model.layers:
        inner = getattr(layer, "layer", None)
        if inner is None or inner.trainable:
            continue
        frozen = [variable for variable in layer._trainable_weights]  # pylint: disable=protected-access
        for variable in frozen:
            layer._trainable_weights.remove(variable)  # pylint: disable=protected-access
            layer._non_trainable_weights.append(variable)  # pylint: disable=protected-access


def _range_variables(qat_model) -> Dict[str, Tuple[tf.Variable, tf.Variable, Optional[str]]]:
    """``{variable prefix: (min, max, float layer name)}`` of the activation quantizers.

    The float layer name is ``None`` for the input ``QuantizeLayer``.
    """
    ranges = {}
    for layer in qat_model.layers:
        inner = getattr(layer, "layer", None)
        if inner is None and type(layer).__name__ != "QuantizeLayer":
            continue
        by_name = {variable.name.split("/")[-1].split(":")[0]: variable for variable in layer.weights}
        for name, minimum in by_name.items():
            if not name.endswith("_min"):
                continue
            prefix = name[: -len("_min")]
            if inner is not None and not prefix.endswith(_RANGE_SUFFIXES):
                continue  # kernel ranges: set from the weights in training mode
            ranges[f"{layer.name}/{prefix}"] = (minimum, by_name[prefix + "_max"], inner.name if inner else None)
    return ranges


def calibrate_quantization_ranges(qat_model, float_model, images: np.ndarray, *, batch_size: int = 64) -> Dict:
    """Sets the QAT model's fake-quantization ranges from float statistics.

    Every activation quantizer gets ``[min(x_min, 0), max(x_max, 0)]`` of the
    float tensor it quantizes (its layer's output in ``float_model``; the
    model input for the input quantizer) over ``images``; then one
    training-mode pass on the first batch sets the per-channel kernel ranges
    (it changes no trainable weight and, with BN frozen, no statistic). A
    range that would be empty (an all-zero tensor) is widened to
    ``[0, 1e-3]``: XNNPACK refuses int8 tensors with a zero scale.

    Args:
        qat_model: From :func:`quantize_aware_model`.
        float_model: The tf_keras model it was made from.
        images: float32 raw 0-255 BGR faces.
        batch_size: Batch size of the float pass.

    Returns:
        ``{variable prefix: (min, max)}`` as set.

    Raises:
        ValueError: For no images.
    """
    images = np.asarray(images, dtype=np.float32)
    if len(images) == 0:
        raise ValueError("calibration needs at least one image.")
    ranges = _range_variables(qat_model)
    names = sorted({source for _, _, source in ranges.values() if source is not None})
    probe = tf_keras.Model(float_model.inputs, [float_model.get_layer(name).output for name in names])
    low = {name: 0.0 for name in names}
    high = {name: 0.0 for name in names}
    for start in range(0, len(images), batch_size):
        outputs = probe(images[start : start + batch_size], training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        for name, output in zip(names, outputs):
            low[name] = min(low[name], float(tf.reduce_min(output)))
            high[name] = max(high[name], float(tf.reduce_max(output)))
    input_range = (min(float(images.min()), 0.0), max(float(images.max()), 0.0))
    qat_model(images[:batch_size], training=True)  # kernel ranges (LastValueQuantizer)
    applied = {}
    for key, (minimum, maximum, source) in ranges.items():
        value = input_range if source is None else (low[source], high[source])
        value = (value[0], max(value[1], value[0] + 1e-3))
        minimum.assign(value[0])
        maximum.assign(value[1])
        applied[key] = value
    return applied


# === Fine-tuning ===


@dataclasses.dataclass(frozen=True)
class QATSchedule:
    """A short QAT fine-tuning schedule.

    Attributes:
        epochs: Passes over the fine-tuning faces.
        batch_size: Faces per step.
        learning_rate: Adam learning rate (small: the model is already
            trained; QAT adapts it to the quantization grid).
        seed: Seed of the shuffling and dropout (set as the global
            Python, NumPy and TensorFlow seed).
    """

    epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 1e-4
    seed: int = 0

    def __post_init__(self):
        if self.epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {self.epochs}.")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}.")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}.")


def qat_finetune(qat_model, faces: np.ndarray, ages: np.ndarray, schedule: Optional[QATSchedule] = None, **fields):
    """Fine-tunes a QAT model on real faces with the mean absolute error.

    Args:
        qat_model: From :func:`quantize_aware_model`.
        faces: float32 raw 0-255 BGR faces ``(N, H, W, 3)``.
        ages: Ages ``(N,)``.
        schedule: The schedule; default :class:`QATSchedule`.
        **fields: :class:`QATSchedule` fields replacing those of ``schedule``.

    Returns:
        The ``tf_keras`` ``History`` (``None`` for zero epochs).

    Raises:
        ValueError: For mismatched or empty faces and ages.
    """
    schedule = dataclasses.replace(schedule or QATSchedule(), **fields)
    faces = np.asarray(faces, dtype=np.float32)
    ages = np.asarray(ages, dtype=np.float32).reshape(-1, 1)
    if len(faces) == 0 or len(faces) != len(ages):
        raise ValueError(f"need as many faces as ages (and at least one), got {len(faces)} and {len(ages)}.")
    if schedule.epochs == 0:
        return None
    tf_keras.utils.set_random_seed(schedule.seed)
    qat_model.compile(
        optimizer=tf_keras.optimizers.Adam(learning_rate=schedule.learning_rate),
        loss="mean_absolute_error",
    )
    return qat_model.fit(
        faces, ages, batch_size=schedule.batch_size, epochs=schedule.epochs, shuffle=True, verbose=0
    )


def _variable_key(name: str) -> str:
    """``'quant_x/x/kernel:0'`` or ``'x/kernel'`` -> ``'kernel'``."""
    return name.rsplit("/", 1)[-1].split(":", 1)[0]


def restore_float_weights(qat_model, keras3_model):
    """Copies the (fine-tuned) float weights of a QAT model into its Keras 3 model.

    The kernels under the fake quantization are ordinary float weights; this
    gives the float model that the QAT export approximates, e.g. to compare
    their accuracy or to keep training in Keras 3.

    Args:
        qat_model: From :func:`quantize_aware_model`.
        keras3_model: A flat Keras 3 model of the same architecture (its
            weights are replaced), e.g. an SSR-Net of the same config.

    Returns:
        ``keras3_model``.

    Raises:
        ValueError: If a layer with weights has no counterpart.
    """
    sources = {}
    for layer in qat_model.layers:
        inner = getattr(layer, "layer", layer)  # inside a QuantizeWrapper
        if type(inner).__module__.startswith("tensorflow_model_optimization"):
            continue  # the input QuantizeLayer: ranges only
        if isinstance(inner, tf_keras.layers.DepthwiseConv2D):
            continue  # constant average pools
        # The wrapper, not the inner layer, holds the quantized kernel: take
        # the wrapper's variables that belong to the inner layer.
        own = {_variable_key(v.name): v.numpy() for v in layer.weights if v.name.startswith(inner.name + "/")}
        if own:
            sources[inner.name] = own
    targets = [
        layer
        for layer in keras3_model.layers
        if layer.weights and not isinstance(layer, keras.layers.DepthwiseConv2D)  # constant average pools
    ]
    missing = sorted({layer.name for layer in targets} ^ set(sources))
    if missing:
        raise ValueError(f"layers {missing} are not in both the QAT model and '{keras3_model.name}'.")
    for layer in targets:
        source = sources[layer.name]
        keys = [_variable_key(v.path) for v in layer.weights]
        if sorted(keys) != sorted(source):
            raise ValueError(f"layer '{layer.name}' has weights {keys}, the QAT model {sorted(source)}.")
        layer.set_weights([source[key] for key in keys])
    return keras3_model


# === Export ===


def export_qat_tflite(
    qat_model, output_path: Optional[PathLike] = None, *, spec=None, strip_names: bool = True,
    int8_head_weights: bool = False,
) -> bytes:
    """Converts a QAT model to an int8 ``.tflite`` (feature extractor int8, head float32).

    Args:
        qat_model: From :func:`quantize_aware_model` (fine-tuned or not).
        output_path: If given, the flatbuffer is also written there
            atomically.
        spec: Optional :class:`ssrnet_tf.model_spec.ModelSpec` embedded as
            metadata.
        strip_names: Whether to compact the file losslessly (drop internal
            tensor names, empty buffers and repeated vectors).
        int8_head_weights: Opt-in, needs TFLite/LiteRT 2.17 or newer:
            store the float head's dense weights as per-unit int8 (hybrid
            ops), as :func:`ssrnet_tf.export.convert_to_tflite` can; the
            kernels the converter itself makes int8 (more than 1,024
            weights) get per-unit scales too. By default they get one scale
            per matrix, which TFLite 2.14 runs.

    Returns:
        The flatbuffer bytes; float32 raw 0-255 BGR input, ages ``(N, 1)``.
    """
    from ssrnet_tf.export.flatbuffer import int8_fully_connected_weights  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.export.flatbuffer import per_tensor_hybrid_fully_connected  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.export.tflite import finish_flatbuffer  # pylint: disable=import-outside-toplevel

    converter = tf.lite.TFLiteConverter.from_keras_model(qat_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        # The converter prints the signature, and warns that a QAT graph's
        # float input has no quantization statistics: the input QuantizeLayer
        # provides them.
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
        flatbuffer = converter.convert()
    if int8_head_weights:
        flatbuffer, _ = int8_fully_connected_weights(flatbuffer)
    else:
        # The converter stores the float head's big kernels per unit (TFLite 2.17+).
        flatbuffer, _ = per_tensor_hybrid_fully_connected(flatbuffer)
    return finish_flatbuffer(flatbuffer, strip_names=strip_names, spec=spec, output_path=output_path)
