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
