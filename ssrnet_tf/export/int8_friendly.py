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


def _consumers(model: keras.Model, layer) -> list:
    """The layers of ``model`` that take ``layer``'s output as an input (nested models included)."""
    members = {id(other) for other in model.layers}
    found = []
    for node in getattr(layer, "_outbound_nodes", []):
        other = node.operation
        if other is not layer and id(other) in members and all(other is not f for f in found):
            found.append(other)
    return found


def _following_batch_norm(model: keras.Model, layer) -> "keras.layers.BatchNormalization | None":
    """The BatchNormalization that alone consumes ``layer``'s output, if any."""
    consumers = _consumers(model, layer)
    if len(consumers) == 1 and isinstance(consumers[0], keras.layers.BatchNormalization):
        return consumers[0]
    return None


#: Pixel scaling that an int8 graph carries without rounding: the input
#: ``QUANTIZE`` (scale 1, zero point -128) makes raw bytes ``x`` into
#: ``q = x - 128``, and ``x / 128 - 1`` is that same ``q`` at scale 1/128.
EXACT_INT8_SCALE, EXACT_INT8_OFFSET = 1.0 / 128.0, -1.0


def _walk(model: keras.Model):
    """``(container, layer)`` for every layer, nested models included."""
    for layer in model.layers:
        yield model, layer
        if isinstance(layer, keras.Model):
            yield from _walk(layer)


def _first_convolution(container: keras.Model, layer):
    """``(model, conv)``: the one ``Conv2D`` that takes ``layer``'s output, else ``(None, None)``.

    The path may enter a nested model (a Keras Applications network inside
    a backbone) and pass one ``ZeroPadding2D``.
    """
    consumers = _consumers(container, layer)
    while len(consumers) == 1 and isinstance(consumers[0], keras.Model) and len(consumers[0].inputs) == 1:
        container = consumers[0]
        entry = container.inputs[0]._keras_history.operation  # pylint: disable=protected-access
        consumers = _consumers(container, entry)
    if len(consumers) == 1 and isinstance(consumers[0], keras.layers.ZeroPadding2D):
        consumers = _consumers(container, consumers[0])
    if len(consumers) == 1 and type(consumers[0]) is keras.layers.Conv2D and consumers[0].groups == 1:  # pylint: disable=unidiomatic-typecheck
        return container, consumers[0]
    return None, None


def exact_int8_input_scaling(model: keras.Model) -> keras.Model:
    """A copy whose pixel scaling is ``x / 128 - 1``, the difference folded into the first convolution.

    A model that scales its 0-255 input, such as MobileNet's ``x / 127.5 - 1``
    (:class:`ssrnet_tf.layers.PixelNormalization`), becomes an int8 ``MUL``
    and ``ADD`` after the input ``QUANTIZE``. With a step of 2/255 every
    scaled pixel lies exactly half-way between two int8 values, and LiteRT's
    XNNPACK and builtin kernels round such ties differently. Measured on the
    shipped ``compact-utkface_int8.tflite``, 31 % of the scaled input values
    were one step apart before the first convolution. The ages then differed
    by 0.51 years per test face on average and by up to 10.1 years.

    ``x / 128 - 1`` is exactly ``q / 128`` for the int8 input ``q = x - 128``,
    so no rounding happens. With ``y = s * x + o`` the model's scaling and
    ``y' = x / 128 - 1``, ``y = a * y' + c`` with ``a = 128 s`` and
    ``c = 128 s + o`` per channel. The first convolution's kernel is
    multiplied by ``a`` and its bias, or the following batch normalisation's
    moving mean, absorbs the constant ``c``. Outputs are unchanged except
    where the convolution reads zero padding, which the copy pads with
    ``y' = 0``, i.e. ``y = c`` (0.0039 for ``x / 127.5 - 1``) instead of 0.

    Scalings whose output feeds anything but one convolution (through at most
    a ``ZeroPadding2D``) are left as they are.

    Args:
        model: A Keras model, possibly with a nested backbone.

    Returns:
        ``model`` itself when there is nothing to fold, else a rewritten copy.
    """
    from ssrnet_tf.layers import PixelNormalization  # pylint: disable=import-outside-toplevel

    def foldable(container, layer):
        return isinstance(layer, PixelNormalization) and _first_convolution(container, layer)[1] is not None

    if not any(foldable(container, layer) for container, layer in _walk(model)):
        return model
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    for container, layer in list(_walk(copy)):
        if not foldable(container, layer):
            continue
        conv_container, conv = _first_convolution(container, layer)
        channels = conv.kernel.shape[-2]
        scale = np.broadcast_to(np.asarray(layer.scale, np.float64), (channels,))
        offset = np.broadcast_to(np.asarray(layer.offset, np.float64), (channels,))
        gain = scale / EXACT_INT8_SCALE
        constant = offset - EXACT_INT8_OFFSET * gain
        kernel = np.asarray(conv.kernel, np.float64)
        shift = np.einsum("hwck,c->k", kernel, constant)
        conv.kernel.assign((kernel * gain[None, None, :, None]).astype(np.float32))
        batch_norm = _following_batch_norm(conv_container, conv)
        if conv.use_bias:
            conv.bias.assign((np.asarray(conv.bias, np.float64) + shift).astype(np.float32))
        elif batch_norm is not None:
            batch_norm.moving_mean.assign((np.asarray(batch_norm.moving_mean, np.float64) - shift).astype(np.float32))
        else:
            raise ValueError(f"{conv.name}: no bias and no batch normalisation to absorb the scaling's offset.")
        layer.scale, layer.offset = EXACT_INT8_SCALE, EXACT_INT8_OFFSET
    return copy


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
