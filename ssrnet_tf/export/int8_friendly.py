"""Graph rewrites that make a trained model quantize and delegate cleanly.

Full-integer TFLite models run on phones through the XNNPACK (CPU) and
NNAPI/GPU delegates. Two things in SSR-Net stop XNNPACK from taking an int8
graph ("failed to prepare"), measured on this project's CI machine:

* XNNPACK has no int8 ``AVERAGE_POOL_2D``; a ``k x k`` average pool with
  stride ``k`` equals a depthwise convolution with constant weights
  ``1 / k^2``, which XNNPACK runs in int8.
* The published models have *dead* ReLU units (e.g. every ``stage*_stream2
  _dense`` output is 0 on real faces). Their int8 quantization range
  collapses to ``[0, 0]`` and the delegate rejects the node. More generally
  the fusion head is tiny (about 12 % of SSR-Net's parameters) but carries
  the products and the division of eq. 7, where int8 costs the most
  accuracy.

So int8 export quantizes the convolutional feature extractor and keeps the
head (dense, multiply and output layers) in float: see
:func:`float_head_layer_names`.
"""

from __future__ import annotations

from typing import List

import keras
import numpy as np

#: Layer types kept in float32 inside an otherwise int8 model.
_FLOAT_HEAD_TYPES = (keras.layers.Dense, keras.layers.Multiply, keras.layers.Softmax)


def average_pools_as_depthwise(model: keras.Model) -> keras.Model:
    """Returns a copy of ``model`` with every ``AveragePooling2D`` replaced.

    Each ``'valid'`` average pool with ``pool_size == strides`` becomes a
    ``DepthwiseConv2D`` with constant weights ``1 / (kh * kw)`` and no bias:
    the same function (up to float rounding), but int8-delegable. Other
    layers keep their weights.

    Args:
        model: A functional Keras model (not nested; e.g. SSR-Net).

    Returns:
        A new functional model with the same inputs, outputs and layer names.
    """

    def clone(layer):
        if isinstance(layer, keras.layers.AveragePooling2D) and layer.padding == "valid":
            return keras.layers.DepthwiseConv2D(
                layer.pool_size, strides=layer.strides, padding="valid", use_bias=False, name=layer.name
            )
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    for layer in copy.layers:
        source = model.get_layer(layer.name)
        if isinstance(layer, keras.layers.DepthwiseConv2D) and isinstance(source, keras.layers.AveragePooling2D):
            kernel = layer.get_weights()[0]
            layer.set_weights([np.full_like(kernel, 1.0 / (kernel.shape[0] * kernel.shape[1]))])
        elif layer.weights:
            layer.set_weights(source.get_weights())
    return copy


def float_head_layer_names(model: keras.Model) -> List[str]:
    """Names of the layers an int8 export keeps in float.

    Dense, Multiply and Softmax layers, and every custom ssrnet_tf layer
    (the soft stagewise regression, expected values): the head. Nested
    models (a Keras Applications backbone) are left fully quantized.

    Args:
        model: The model to export.

    Returns:
        Layer names.
    """
    names = []
    for layer in model.layers:
        custom = type(layer).__module__.startswith("ssrnet_tf.") and not type(layer).__name__ in (
            "StaticFlatten",
            "PixelNormalization",
        )
        if isinstance(layer, _FLOAT_HEAD_TYPES) or custom:
            names.append(layer.name)
    return names


def _symmetric_per_channel(kernel: np.ndarray) -> np.ndarray:
    """``kernel`` rounded as the TFLite converter quantizes conv weights.

    One symmetric scale ``max|w| / 127`` per output channel (last axis).
    """
    flat = kernel.reshape(-1, kernel.shape[-1])
    scale = np.maximum(np.abs(flat).max(axis=0), np.finfo(np.float32).tiny) / 127.0
    return (np.clip(np.round(kernel / scale), -127, 127) * scale).astype(kernel.dtype)


def _following_batch_norm(model: keras.Model, layer) -> "keras.layers.BatchNormalization | None":
    """The BatchNormalization that alone consumes ``layer``'s output, if any."""
    consumers = [
        other for other in model.layers
        if other is not layer and any(
            getattr(t, "_keras_history", None) is not None and t._keras_history.operation is layer  # pylint: disable=protected-access
            for t in keras.tree.flatten(other.input)
        )
    ] if layer.output is not None else []
    if len(consumers) == 1 and isinstance(consumers[0], keras.layers.BatchNormalization):
        return consumers[0]
    return None


def correct_quantization_bias(model: keras.Model, images: np.ndarray, batch_size: int = 64) -> keras.Model:
    """Cancels the mean output shift that int8 weight rounding causes.

    Rounding a convolution's (batch-norm folded) kernel to int8 changes
    every output by ``conv(x, Q(W) - W)``. Its mean is not zero when the
    input has a large mean: SSR-Net's first convolutions see raw 0-255
    pixels, and a filter whose weights nearly cancel (an edge detector)
    gains a brightness-dependent offset. On this project's UTKFace SSR-Net
    that offset alone, in the tanh stream's first convolution, moved the
    int8 ages by -1.7 years on average. "Bias correction" (Nagel et al.,
    *Data-Free Quantization*, ICCV 2019, here with empirical input
    statistics) subtracts the mean shift, measured on the calibration faces,
    from the layer's bias before conversion. The converter then rounds the
    unchanged kernel exactly as predicted, so the expected error is zero.

    Only the returned copy changes; the Keras model keeps its weights.

    Args:
        model: A functional Keras model (not nested).
        images: Calibration faces, float32 raw 0-255 BGR ``(N, H, W, 3)``.
        batch_size: Prediction batch size.

    Returns:
        A copy of ``model`` whose convolution biases (or, for bias-free
        convolutions followed by batch normalisation, moving means) carry the
        correction.
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    convs = [
        layer for layer in copy.layers
        if type(layer) is keras.layers.Conv2D and layer.groups == 1  # pylint: disable=unidiomatic-typecheck
    ]
    if not convs:
        return copy
    probe = keras.Model(copy.inputs, [layer.input for layer in convs])
    inputs = probe.predict(np.asarray(images, dtype=np.float32), batch_size=batch_size, verbose=0)
    if len(convs) == 1:
        inputs = [inputs]
    for layer, layer_input in zip(convs, inputs):
        kernel = np.asarray(layer.kernel)
        batch_norm = _following_batch_norm(copy, layer)
        fold = np.ones(kernel.shape[-1], dtype=np.float32)
        if batch_norm is not None:
            gamma = np.asarray(batch_norm.gamma) if batch_norm.scale else 1.0
            fold = gamma / np.sqrt(np.asarray(batch_norm.moving_variance) + batch_norm.epsilon)
        error = _symmetric_per_channel(kernel * fold) / np.where(fold == 0, 1.0, fold) - kernel
        shift = tf.nn.conv2d(
            layer_input, error, strides=layer.strides, padding=layer.padding.upper(), dilations=layer.dilation_rate
        )
        shift = np.asarray(tf.reduce_mean(shift, axis=(0, 1, 2)))
        if layer.use_bias:
            layer.bias.assign(np.asarray(layer.bias) - shift)
        elif batch_norm is not None:
            batch_norm.moving_mean.assign(np.asarray(batch_norm.moving_mean) + shift)
    return copy
