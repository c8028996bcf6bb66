"""Quantization-aware training (QAT) of SSR-Net for an int8 TFLite export.

TensorFlow Model Optimization (``tfmot``) only accepts ``tf_keras`` (Keras 2)
models; SSR-Net is a Keras 3 model. The QAT path therefore goes through a
``tf_keras`` twin of the network:

1. **tf_keras copy.** :func:`build_tf_keras_ssrnet` builds the architecture of
   :func:`ssrnet_tf.models.build_ssrnet` again with ``tf_keras`` layers and
   the same layer names. The two custom layers get ``tf_keras``
   implementations with the same semantics:
   :class:`TfKerasSoftStagewiseRegression` (SSR-Net eq. 7, division guard
   ``min_scale``, clamp at 0 at inference) and :class:`TfKerasStaticFlatten`
   (one static ``RESHAPE``). Average pools are built directly as the
   equivalent depthwise convolutions with constant ``1 / k^2`` weights, as
   :func:`ssrnet_tf.export.int8_friendly.average_pools_as_depthwise` does for
   the post-training (PTQ) int8 export: XNNPACK has no int8
   ``AVERAGE_POOL_2D``. :func:`to_tf_keras_ssrnet` copies the weights of a
   Keras 3 SSR-Net into it layer by layer, by name.
2. **Annotation.** :func:`quantize_aware_model` annotates exactly what the PTQ
   int8 export quantizes (``quantize_annotate_layer``): the convolutions,
   batch normalisations, activations and pools of the two streams, the 1x1
   fusion convolutions and the depthwise "average pools". The head (dense,
   multiply, flatten, dropout and eq. 7) is left unannotated and stays
   float32, for the reasons given in :mod:`ssrnet_tf.export.int8_friendly`
   (dead ReLU units of the published weights, products and the division of
   eq. 7). ``quantize_apply`` then inserts the fake-quantization ops, inside
   ``quantize_scope`` so that it can clone the custom layers.
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

:func:`qat_ssrnet_to_tflite` runs all of it in one call.

Importing tensorflow-model-optimization sets the environment variable
``TF_USE_LEGACY_KERAS=1`` for the whole process; this module restores the
previous value, so Keras 3 code (and child processes) are not affected.

Example:
    >>> from ssrnet_tf import pretrained
    >>> from ssrnet_tf.export import qat
    >>> model = pretrained.load_pretrained("imdb")
    >>> flatbuffer = qat.qat_ssrnet_to_tflite(
    ...     model, faces, ages, epochs=1, output_path="ssrnet_qat.tflite")

Reference:
    Jacob et al., "Quantization and Training of Neural Networks for Efficient
    Integer-Arithmetic-Only Inference", CVPR 2018. Yang et al., "SSR-Net: A
    Compact Soft Stagewise Regression Network for Age Estimation", IJCAI 2018.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import os
import warnings
from typing import Dict, Optional, Tuple, Union

import keras
import numpy as np
import tensorflow as tf

try:
    import tf_keras
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "ssrnet_tf.export.qat needs tf_keras (tfmot does not accept Keras 3 "
        "models): pip install tf_keras tensorflow-model-optimization"
    ) from error

from ssrnet_tf.models import ssrnet_config

PathLike = Union[str, os.PathLike]

#: Package under which the tf_keras layers below are registered.
_PACKAGE = "ssrnet_tf"

#: tf_keras layer types that QAT quantizes: the convolutional feature
#: extractor, as in the PTQ int8 export. Everything else stays float.
_QUANTIZED_TYPES = (
    tf_keras.layers.Conv2D,
    tf_keras.layers.DepthwiseConv2D,  # the average pools
    tf_keras.layers.BatchNormalization,
    tf_keras.layers.Activation,
    tf_keras.layers.MaxPooling2D,
)

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


# === tf_keras layers ===


@tf_keras.saving.register_keras_serializable(package=_PACKAGE)
class TfKerasSoftStagewiseRegression(tf_keras.layers.Layer):
    """Soft stagewise regression (SSR-Net eq. 7) as a tf_keras layer.

    The tf_keras twin of :class:`ssrnet_tf.layers.SoftStagewiseRegression`,
    with the same arguments, inputs and semantics (``1 + lambda_d * Delta_k``
    bounded below by ``min_scale``; ages clamped at 0 when not training)::

        y = V * sum_k sum_i p_i^(k) * (i + lambda_local * eta_i^(k))
                       / prod_{j<=k} s_j * (1 + lambda_d * Delta_j)

    Args:
        stage_bins: Sequence of ``s_k`` (each >= 1).
        lambda_local: Weight of the bin shifts ``eta``.
        lambda_d: Weight of the scale factors ``Delta``.
        age_range: ``V``, the width of the age range.
        min_scale: Lower bound of ``1 + lambda_d * Delta_k``.
        **kwargs: Standard ``tf_keras.layers.Layer`` arguments.

    Example:
        >>> layer = TfKerasSoftStagewiseRegression(stage_bins=(3, 3, 3))
        >>> layer([tf.ones((2, 3)) / 3] * 3 + [tf.zeros((2, 1))] * 3 + [tf.zeros((2, 3))] * 3).shape
        TensorShape([2, 1])

    Reference:
        Yang et al., "SSR-Net: A Compact Soft Stagewise Regression Network
        for Age Estimation", IJCAI 2018.
    """

    def __init__(self, stage_bins, lambda_local=1.0, lambda_d=1.0, age_range=101.0, min_scale=0.1, **kwargs):
        super().__init__(**kwargs)
        stage_bins = tuple(int(bins) for bins in stage_bins)
        if not stage_bins or any(bins < 1 for bins in stage_bins):
            raise ValueError(f"stage_bins must be one or more counts >= 1, got {stage_bins}.")
        if not min_scale > 0:
            raise ValueError(f"min_scale must be > 0, got {min_scale}.")
        self.stage_bins = stage_bins
        self.lambda_local = float(lambda_local)
        self.lambda_d = float(lambda_d)
        self.age_range = float(age_range)
        self.min_scale = float(min_scale)

    def call(self, inputs, training=None):
        num_stages = len(self.stage_bins)
        if len(inputs) != 3 * num_stages:
            raise ValueError(
                f"TfKerasSoftStagewiseRegression with {num_stages} stages expects "
                f"{3 * num_stages} input tensors, got {len(inputs)}."
            )
        probabilities = inputs[:num_stages]
        scales = inputs[num_stages : 2 * num_stages]
        shifts = inputs[2 * num_stages :]
        age = None
        denominator = None
        for bins, stage_p, stage_delta, stage_eta in zip(self.stage_bins, probabilities, scales, shifts):
            index = tf.range(bins, dtype=stage_p.dtype)  # (s_k,)
            expected_bin = tf.reduce_sum(
                stage_p * (index + self.lambda_local * stage_eta), axis=-1, keepdims=True
            )  # (batch, 1)
            width = float(bins) * tf.maximum(1.0 + self.lambda_d * stage_delta, self.min_scale)  # (batch, 1)
            denominator = width if denominator is None else denominator * width
            term = expected_bin / denominator
            age = term if age is None else age + term
        age = self.age_range * age
        if not training:
            age = tf.maximum(age, 0.0)
        return age

    def compute_output_shape(self, input_shape):
        return tf.TensorShape((input_shape[0][0], 1))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "stage_bins": list(self.stage_bins),
                "lambda_local": self.lambda_local,
                "lambda_d": self.lambda_d,
                "age_range": self.age_range,
                "min_scale": self.min_scale,
            }
        )
        return config


@tf_keras.saving.register_keras_serializable(package=_PACKAGE)
class TfKerasStaticFlatten(tf_keras.layers.Layer):
    """Flattens to ``(-1, features)``: one static TFLite ``RESHAPE``.

    The tf_keras twin of :class:`ssrnet_tf.layers.StaticFlatten`
    (``tf_keras.layers.Flatten`` reshapes to ``(shape(x)[0], features)``,
    which adds ``SHAPE``/``STRIDED_SLICE``/``PACK`` ops that XNNPACK does not
    take).
    """

    def build(self, input_shape):
        dims = tuple(tf.TensorShape(input_shape)[1:])
        if any(d is None for d in dims):
            raise ValueError(f"TfKerasStaticFlatten needs static feature dimensions, got {tuple(input_shape)}.")
        self.features = int(math.prod(dims))
        super().build(input_shape)

    def call(self, inputs):
        return tf.reshape(inputs, (-1, self.features))

    def compute_output_shape(self, input_shape):
        input_shape = tf.TensorShape(input_shape)
        return tf.TensorShape((input_shape[0], int(math.prod(input_shape[1:]))))


#: Custom objects for deserializing (and quantize-cloning) the tf_keras twin.
CUSTOM_OBJECTS = {
    "TfKerasSoftStagewiseRegression": TfKerasSoftStagewiseRegression,
    "TfKerasStaticFlatten": TfKerasStaticFlatten,
    f"{_PACKAGE}>TfKerasSoftStagewiseRegression": TfKerasSoftStagewiseRegression,
    f"{_PACKAGE}>TfKerasStaticFlatten": TfKerasStaticFlatten,
}


# === tf_keras copy of SSR-Net ===


def _average_pool(pool_size: int, name: str):
    """A ``pool_size`` average pool as a frozen constant depthwise convolution."""
    return tf_keras.layers.DepthwiseConv2D(
        pool_size,
        strides=pool_size,
        padding="valid",
        use_bias=False,
        depthwise_initializer=tf_keras.initializers.Constant(1.0 / (pool_size * pool_size)),
        trainable=False,
        name=name,
    )


def _pool(kind: str, pool_size: int, name: str):
    if kind == "average":
        return _average_pool(pool_size, name)
    return tf_keras.layers.MaxPooling2D(pool_size, name=name)


def _stream(inputs, *, name: str, filters: int, activation: str, pooling: str):
    """One stream, as :func:`ssrnet_tf.models.ssrnet._stream`: 4 tapped blocks."""
    taps = []
    x = inputs
    for block in range(1, ssrnet_config.NUM_BLOCKS + 1):
        prefix = f"{name}_block{block}"
        x = tf_keras.layers.Conv2D(filters, 3, name=f"{prefix}_conv")(x)
        x = tf_keras.layers.BatchNormalization(name=f"{prefix}_bn")(x)
        x = tf_keras.layers.Activation(activation, name=f"{prefix}_act")(x)
        if block < ssrnet_config.NUM_BLOCKS:
            x = _pool(pooling, 2, f"{prefix}_pool")(x)
        taps.append(x)
    return taps


def _fusion_block(relu_features, tanh_features, *, stage, bins, pool_size, filters, dropout, stage_activation):
    """The fusion block, as :func:`ssrnet_tf.models.ssrnet_fusion.fusion_block`."""
    prefix = f"stage{stage}"
    branches = []
    for stream, features, pooling in (("stream1", relu_features, "average"), ("stream2", tanh_features, "max")):
        x = tf_keras.layers.Conv2D(filters, 1, activation="relu", name=f"{prefix}_{stream}_conv")(features)
        if pool_size > 1:
            x = _pool(pooling, pool_size, f"{prefix}_{stream}_pool")(x)
        branches.append(TfKerasStaticFlatten(name=f"{prefix}_{stream}_flatten")(x))
    relu_flat, tanh_flat = branches  # (b, g*g*filters) each
    feature_product = tf_keras.layers.Multiply(name=f"{prefix}_feature_product")([tanh_flat, relu_flat])
    scale = tf_keras.layers.Dense(1, activation="tanh", name=f"{prefix}_scale")(feature_product)  # (b, 1)
    mapped = []
    for stream, flat in (("stream2", tanh_flat), ("stream1", relu_flat)):
        x = tf_keras.layers.Dropout(dropout, name=f"{prefix}_{stream}_dropout")(flat)
        mapped.append(tf_keras.layers.Dense(bins, activation="relu", name=f"{prefix}_{stream}_dense")(x))
    fused = tf_keras.layers.Multiply(name=f"{prefix}_fused_product")(mapped)
    fused = tf_keras.layers.Dense(2 * bins, activation="relu", name=f"{prefix}_fused_dense")(fused)
    probabilities = tf_keras.layers.Dense(bins, activation=stage_activation, name=f"{prefix}_probabilities")(
        fused
    )  # (b, s_k)
    shift = tf_keras.layers.Dense(bins, activation="tanh", name=f"{prefix}_shift")(fused)  # (b, s_k)
    return probabilities, scale, shift


def build_tf_keras_ssrnet(config: Optional[ssrnet_config.SSRNetConfig] = None) -> "tf_keras.Model":
    """Builds SSR-Net in tf_keras, layer names as in :func:`ssrnet_tf.models.build_ssrnet`.

    Average pools are constant, frozen depthwise convolutions (the same
    function, int8-delegable).

    Args:
        config: The hyper-parameters; defaults to the reference SSR-Net(3,3,3).

    Returns:
        An uncompiled ``tf_keras.Model`` named ``"ssrnet"``: raw 0-255 BGR
        pixels in, ages ``(N, 1)`` out.
    """
    config = config or ssrnet_config.SSRNetConfig()
    height, width, _ = config.input_shape
    spatial = [
        min(h, w)
        for h, w in zip(ssrnet_config.stream_spatial_sizes(height), ssrnet_config.stream_spatial_sizes(width))
    ]

    # === Streams ===
    inputs = tf_keras.Input(shape=config.input_shape, name="image")
    stream_taps = [
        _stream(inputs, name=name, filters=filters, activation=activation, pooling=pooling)
        for (name, activation, pooling), filters in zip(
            (("stream1", "relu", "average"), ("stream2", "tanh", "max")), config.stream_widths
        )
    ]

    # === Fusion blocks ===
    probabilities, scales, shifts = [], [], []
    for stage, (bins, level) in enumerate(zip(config.stage_bins, config.resolved_stage_levels), start=1):
        pool_size = min(2 ** (ssrnet_config.NUM_BLOCKS - level), spatial[level - 1])
        p, delta, eta = _fusion_block(
            stream_taps[0][level - 1],
            stream_taps[1][level - 1],
            stage=stage,
            bins=bins,
            pool_size=pool_size,
            filters=config.fusion_filters,
            dropout=config.dropout,
            stage_activation=config.stage_activation,
        )
        probabilities.append(p)
        scales.append(delta)
        shifts.append(eta)

    # === Soft stagewise regression ===
    age = TfKerasSoftStagewiseRegression(
        stage_bins=config.stage_bins,
        lambda_local=config.lambda_local,
        lambda_d=config.lambda_d,
        age_range=config.age_range,
        min_scale=config.min_scale,
        name="age",
    )(probabilities + scales + shifts)
    return tf_keras.Model(inputs, age, name="ssrnet")


def _tapped_level(keras3_model, layer_name: str) -> int:
    """Stream block (1-4) whose output feeds ``layer_name``."""
    producer = keras3_model.get_layer(layer_name).input._keras_history[0].name  # pylint: disable=protected-access
    for level in range(1, ssrnet_config.NUM_BLOCKS + 1):
        if producer.startswith(f"stream1_block{level}_"):
            return level
    raise ValueError(f"'{layer_name}' is fed by '{producer}', not by a stream block; is this an SSR-Net?")


def infer_ssrnet_config(keras3_model) -> ssrnet_config.SSRNetConfig:
    """Reads the :class:`SSRNetConfig` of a Keras 3 SSR-Net off its layers.

    Args:
        keras3_model: A model from :func:`ssrnet_tf.models.build_ssrnet` (or
            loaded from a ``.keras`` file saved from one).

    Returns:
        The config that rebuilds the same architecture.

    Raises:
        ValueError: If the model lacks SSR-Net's layer names.
    """
    try:
        age = keras3_model.get_layer("age").get_config()
        num_stages = len(age["stage_bins"])
        return ssrnet_config.SSRNetConfig(
            input_shape=tuple(keras3_model.input_shape[1:]),
            stage_bins=tuple(age["stage_bins"]),
            lambda_local=age["lambda_local"],
            lambda_d=age["lambda_d"],
            age_range=age["age_range"],
            min_scale=age["min_scale"],
            stream_widths=tuple(keras3_model.get_layer(f"{s}_block1_conv").filters for s in ("stream1", "stream2")),
            fusion_filters=keras3_model.get_layer("stage1_stream1_conv").filters,
            dropout=keras3_model.get_layer("stage1_stream1_dropout").rate,
            stage_activation=keras3_model.get_layer("stage1_probabilities").get_config()["activation"],
            stage_levels=tuple(
                _tapped_level(keras3_model, f"stage{k}_stream1_conv") for k in range(1, num_stages + 1)
            ),
        )
    except (KeyError, ValueError) as error:
        raise ValueError(f"cannot read an SSR-Net config off '{keras3_model.name}': {error}") from None


def _check_config(keras3_model, config: ssrnet_config.SSRNetConfig) -> None:
    """Raises if the weight-free settings of ``keras3_model`` differ from ``config``."""
    if tuple(keras3_model.input_shape[1:]) != tuple(config.input_shape):
        raise ValueError(
            f"the Keras 3 model takes {tuple(keras3_model.input_shape[1:])} inputs, the config "
            f"{tuple(config.input_shape)}; pass the config the model was built with."
        )
    try:
        age_config = keras3_model.get_layer("age").get_config()
    except ValueError:
        raise ValueError(f"'{keras3_model.name}' has no 'age' layer; is it an SSR-Net?") from None
    expected = {
        "stage_bins": list(config.stage_bins),
        "lambda_local": config.lambda_local,
        "lambda_d": config.lambda_d,
        "age_range": config.age_range,
        "min_scale": config.min_scale,
    }
    differing = {key: (age_config.get(key), value) for key, value in expected.items() if age_config.get(key) != value}
    if differing:
        raise ValueError(
            f"the Keras 3 model's eq. 7 settings differ from the config (model, config): {differing}; "
            "pass the config the model was built with."
        )


def _layers_with_weights(keras3_model):
    """The layers of a Keras 3 model that hold weights, nested models flattened."""
    for layer in keras3_model.layers:
        if isinstance(layer, keras.Model):
            yield from _layers_with_weights(layer)
        elif layer.weights:
            yield layer


def transfer_weights(keras3_model, tf_keras_model) -> None:
    """Copies weights from a Keras 3 model into its tf_keras twin, by layer name.

    Nested Keras 3 models (a Keras Applications backbone) are searched too.
    Frozen constant layers of the twin (``trainable=False``: the depthwise
    "average pools", a backbone's pixel normalisation as a 1x1 convolution)
    keep their constant weights unless the Keras 3 model has a same-named
    layer with weights (e.g. a model rewritten by
    :func:`ssrnet_tf.export.int8_friendly.average_pools_as_depthwise`).

    Raises:
        ValueError: Naming a layer with weights that has no counterpart, or a
            weight of the wrong shape.
    """
    sources = {layer.name: layer for layer in _layers_with_weights(keras3_model)}
    copied = set()
    for layer in tf_keras_model.layers:
        if not layer.weights:
            continue
        source = sources.get(layer.name)
        if source is None:
            if not layer.trainable:
                continue  # a constant layer of the twin
            raise ValueError(f"layer '{layer.name}' of the tf_keras copy has no counterpart in '{keras3_model.name}'.")
        values = source.get_weights()
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if [tuple(v.shape) for v in values] != expected:
            raise ValueError(
                f"layer '{layer.name}': Keras 3 weights have shapes {[tuple(v.shape) for v in values]}, "
                f"the tf_keras copy expects {expected}; pass the config the model was built with."
            )
        layer.set_weights(values)
        copied.add(layer.name)
    left = sorted(set(sources) - copied)
    if left:
        raise ValueError(f"layers {left} of '{keras3_model.name}' have no counterpart in the tf_keras copy.")


def to_tf_keras_ssrnet(keras3_model, config: Optional[ssrnet_config.SSRNetConfig] = None) -> "tf_keras.Model":
    """The tf_keras twin of a Keras 3 SSR-Net, with its weights.

    Args:
        keras3_model: A model from :func:`ssrnet_tf.models.build_ssrnet` or
            :func:`ssrnet_tf.pretrained.load_reference_ssrnet`.
        config: The config it was built with; default read off the model
            (:func:`infer_ssrnet_config`).

    Returns:
        A ``tf_keras.Model`` computing the same function (average pools as
        depthwise convolutions).

    Raises:
        ValueError: If the model does not match ``config``.
    """
    config = config or infer_ssrnet_config(keras3_model)
    _check_config(keras3_model, config)
    model = build_tf_keras_ssrnet(config)
    transfer_weights(keras3_model, model)
    return model


# === Quantization-aware model ===


def quantize_aware_model(
    tf_keras_model,
    representative_images: Optional[np.ndarray] = None,
    *,
    freeze_batch_norm: bool = True,
    batch_size: int = 64,
) -> "tf_keras.Model":
    """Prepares the tf_keras SSR-Net for QAT: the conv feature extractor only.

    Annotates every Conv2D / DepthwiseConv2D, BatchNormalization, Activation
    and MaxPooling2D layer with ``quantize_annotate_layer`` and applies
    ``quantize_apply`` (tfmot's default 8-bit scheme: per-channel symmetric
    kernels, per-tensor asymmetric activations). Dense, Multiply, flatten,
    dropout and eq. 7 stay float.

    Args:
        tf_keras_model: From :func:`to_tf_keras_ssrnet` (weights are copied).
        representative_images: float32 raw 0-255 BGR faces ``(N, H, W, 3)``
            that set the quantization ranges
            (:func:`calibrate_quantization_ranges`); without them the ranges
            keep tfmot's ``[-6, 6]`` start.
        freeze_batch_norm: Whether BN layers are frozen (inference mode,
            fixed statistics and affine weights) during fine-tuning.
        batch_size: Batch size of the calibration passes.

    Returns:
        The QAT ``tf_keras.Model`` (uncompiled).

    Raises:
        ValueError: If the model has an ``AveragePooling2D`` (XNNPACK has no
            int8 average pool; build it with :func:`build_tf_keras_ssrnet`).
    """
    if any(isinstance(layer, tf_keras.layers.AveragePooling2D) for layer in tf_keras_model.layers):
        raise ValueError(
            "the model has AveragePooling2D layers, which XNNPACK cannot run in int8; "
            "build it with build_tf_keras_ssrnet / to_tf_keras_ssrnet (depthwise average pools)."
        )

    qat_model = annotate_and_apply(
        tf_keras_model, lambda layer: isinstance(layer, _QUANTIZED_TYPES), freeze_batch_norm=freeze_batch_norm
    )
    if representative_images is not None:
        calibrate_quantization_ranges(qat_model, tf_keras_model, representative_images, batch_size=batch_size)
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
    with tfmot.quantization.keras.quantize_scope({**CUSTOM_OBJECTS, **(custom_objects or {})}):
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
    """Copies the (fine-tuned) float weights of a QAT model into a Keras 3 SSR-Net.

    The kernels under the fake quantization are ordinary float weights; this
    gives the float model that the QAT export approximates, e.g. to compare
    their accuracy or to keep training in Keras 3.

    Args:
        qat_model: From :func:`quantize_aware_model`.
        keras3_model: An SSR-Net of the same config (its weights are
            replaced).

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


def qat_ssrnet_to_tflite(
    keras3_model,
    faces: np.ndarray,
    ages: np.ndarray,
    *,
    config: Optional[ssrnet_config.SSRNetConfig] = None,
    epochs: int = 1,
    batch_size: int = 32,
    learning_rate: float = 1e-4,
    calibration_size: int = 500,
    output_path: Optional[PathLike] = None,
    spec=None,
) -> bytes:
    """Keras 3 SSR-Net -> QAT fine-tuning -> int8 ``.tflite``, in one call.

    Args:
        keras3_model: A trained Keras 3 SSR-Net.
        faces: float32 raw 0-255 BGR faces for calibration and fine-tuning
            (keep evaluation faces out).
        ages: Their ages ``(N,)``.
        config: The config the model was built with (default: reference).
        epochs, batch_size, learning_rate: The :class:`QATSchedule`
            (``epochs=0``: the calibrated QAT graph, not fine-tuned).
        calibration_size: Faces (the first ones) that set the initial
            quantization ranges.
        output_path: If given, the ``.tflite`` is written there.
        spec: The :class:`ssrnet_tf.model_spec.ModelSpec` to embed; default
            read off the model (:meth:`ModelSpec.for_model`).

    Returns:
        The flatbuffer bytes.
    """
    from ssrnet_tf.model_spec import ModelSpec  # pylint: disable=import-outside-toplevel

    schedule = QATSchedule(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate)
    float_model = to_tf_keras_ssrnet(keras3_model, config)
    qat_model = quantize_aware_model(float_model, np.asarray(faces)[:calibration_size])
    qat_finetune(qat_model, faces, ages, schedule)
    spec = spec if spec is not None else ModelSpec.for_model(keras3_model, architecture="ssrnet (QAT int8)")
    return export_qat_tflite(qat_model, output_path, spec=spec)
