"""Keras 3 -> tf_keras graph translation: the twin that tfmot can quantize.

TensorFlow Model Optimization (``tfmot``) only accepts flat ``tf_keras``
(Keras 2) functional models; every ssrnet_tf model is a Keras 3 model.
:func:`build_tf_keras_twin` walks a Keras 3 functional graph operation by
operation (nested functional models, such as a Keras Applications backbone,
are inlined) and calls for each layer its tf_keras twin, made by the
builder that :data:`TWINS` registers for the layer's type. The twin keeps
every layer name and the output structure (``{"age": ...}``), so weights
move across by name (:func:`ssrnet_tf.models.weight_transfer.transfer_weights`)
and the same code quantizes SSR-Net and a MobileNetV2 age model.

:data:`TWINS` is the one place a layer type gets its twin. Standard layers
are rebuilt from the arguments that define them; a few are rewritten into
what tfmot and XNNPACK handle in int8, computing the same function:

* ``AveragePooling2D`` (``pool_size == strides``, ``'valid'``) -> a frozen
  ``DepthwiseConv2D`` with constant ``1 / k^2`` weights, as
  :func:`ssrnet_tf.export.int8_friendly.average_pools_as_depthwise` does for
  the post-training int8 export (XNNPACK has no int8 ``AVERAGE_POOL_2D``);
* :class:`ssrnet_tf.layers.PixelNormalization` (``x[..., order] * scale +
  offset``) -> a frozen 1x1 ``Conv2D`` (the channel permutation times the
  scale as kernel, the offset as bias);
* the custom ssrnet_tf layers -> their twins in
  :mod:`ssrnet_tf.export.tf_keras_layers` (eq. 7 of SSR-Net, the static
  flatten, the expected value).

A layer of another type (e.g. MobileNetV3's hard-swish built from raw
``x + 3`` operations) raises a ``ValueError`` naming it:
:func:`untranslatable_operations` lists them up front.

Example:
    >>> from ssrnet_tf.models import build_ssrnet
    >>> twin = to_tf_keras_twin(build_ssrnet())
    >>> sorted(twin.output)
    ['age']
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple

import keras
import numpy as np
import tensorflow as tf

from ssrnet_tf.export import tf_keras_layers
from ssrnet_tf.export.tf_keras_layers import tf_keras
from ssrnet_tf.layers.expected_value import ExpectedValue
from ssrnet_tf.layers.pixel_normalization import PixelNormalization
from ssrnet_tf.layers.soft_stagewise_regression import SoftStagewiseRegression
from ssrnet_tf.layers.static_flatten import StaticFlatten
from ssrnet_tf.models.weight_transfer import transfer_weights

#: A twin builder: Keras 3 layer -> (tf_keras layer, constant weights or None).
TwinBuilder = Callable[[keras.layers.Layer], Tuple["tf_keras.layers.Layer", Optional[List[np.ndarray]]]]


def _same(tf_keras_class, *arguments: str) -> TwinBuilder:
    """A builder of ``tf_keras_class`` with the same name and ``arguments`` of the config."""

    def build(layer):
        config = layer.get_config()
        return tf_keras_class(name=layer.name, **{key: config[key] for key in arguments}), None

    return build


def _pixel_normalization_conv(layer: PixelNormalization):
    """A frozen 1x1 Conv2D computing ``x[..., order] * scale + offset``, and its weights."""
    scale = np.broadcast_to(np.asarray(layer.scale, dtype=np.float32), (3,))
    offset = np.broadcast_to(np.asarray(layer.offset, dtype=np.float32), (3,))
    order = (2, 1, 0) if layer.reverse_channels else (0, 1, 2)
    kernel = np.zeros((1, 1, 3, 3), dtype=np.float32)  # (kh, kw, in, out)
    for out_channel, in_channel in enumerate(order):
        kernel[0, 0, in_channel, out_channel] = scale[out_channel]
    conv = tf_keras.layers.Conv2D(3, 1, trainable=False, name=layer.name)
    return conv, [kernel, np.array(offset)]


def _average_pool_depthwise(layer: keras.layers.AveragePooling2D):
    """A ``'valid'`` average pool as a frozen depthwise convolution with constant ``1 / k^2`` weights."""
    if layer.padding != "valid" or tuple(layer.strides) != tuple(layer.pool_size):
        raise ValueError(f"average pool '{layer.name}' needs 'valid' padding and strides == pool_size for its "
                         f"int8 twin, got {layer.padding!r}, strides {layer.strides}, pool {layer.pool_size}.")
    height, width = layer.pool_size
    conv = tf_keras.layers.DepthwiseConv2D(
        (height, width), strides=(height, width), padding="valid", use_bias=False, trainable=False, name=layer.name
    )
    return conv, None  # constants set once built (they depend on the channel count)


def _soft_stagewise_regression(layer: SoftStagewiseRegression):
    config = layer.get_config()
    arguments = ("stage_bins", "lambda_local", "lambda_d", "age_range", "min_scale")
    return tf_keras_layers.TfKerasSoftStagewiseRegression(name=layer.name, **{key: config[key] for key in arguments}), None


#: The tf_keras twin of each Keras 3 layer type (exact types; the one registry of twins).
TWINS: Dict[type, TwinBuilder] = {
    keras.layers.Conv2D: _same(tf_keras.layers.Conv2D, "filters", "kernel_size", "strides", "padding",
                               "dilation_rate", "groups", "activation", "use_bias"),
    keras.layers.DepthwiseConv2D: _same(tf_keras.layers.DepthwiseConv2D, "kernel_size", "strides", "padding",
                                        "depth_multiplier", "dilation_rate", "activation", "use_bias"),
    keras.layers.BatchNormalization: _same(tf_keras.layers.BatchNormalization, "axis", "momentum", "epsilon",
                                           "center", "scale"),
    keras.layers.Activation: _same(tf_keras.layers.Activation, "activation"),
    keras.layers.ReLU: _same(tf_keras.layers.ReLU, "max_value", "negative_slope", "threshold"),
    keras.layers.Softmax: _same(tf_keras.layers.Softmax, "axis"),
    keras.layers.MaxPooling2D: _same(tf_keras.layers.MaxPooling2D, "pool_size", "strides", "padding"),
    keras.layers.AveragePooling2D: _average_pool_depthwise,
    keras.layers.GlobalAveragePooling2D: _same(tf_keras.layers.GlobalAveragePooling2D, "keepdims"),
    keras.layers.GlobalMaxPooling2D: _same(tf_keras.layers.GlobalMaxPooling2D, "keepdims"),
    keras.layers.ZeroPadding2D: _same(tf_keras.layers.ZeroPadding2D, "padding"),
    keras.layers.Add: _same(tf_keras.layers.Add),
    keras.layers.Multiply: _same(tf_keras.layers.Multiply),
    keras.layers.Dense: _same(tf_keras.layers.Dense, "units", "activation", "use_bias"),
    keras.layers.Dropout: _same(tf_keras.layers.Dropout, "rate"),
    keras.layers.Rescaling: _same(tf_keras.layers.Rescaling, "scale", "offset"),
    keras.layers.Identity: _same(tf_keras.layers.Identity),
    PixelNormalization: _pixel_normalization_conv,
    StaticFlatten: lambda layer: (tf_keras_layers.TfKerasStaticFlatten(name=layer.name), None),
    SoftStagewiseRegression: _soft_stagewise_regression,
    ExpectedValue: lambda layer: (tf_keras_layers.TfKerasExpectedValue(layer.values, name=layer.name), None),
}


def _only_node(operation):
    nodes = operation._inbound_nodes  # pylint: disable=protected-access
    if len(nodes) != 1:
        raise ValueError(f"layer '{operation.name}' is called {len(nodes)} times; the twin needs one call per layer.")
    return nodes[0]


def _leaf_operations(model):
    """``(operation, is_leaf)`` of a functional model, nested functional models inlined."""
    for operation in model.operations:
        if isinstance(operation, keras.layers.InputLayer):
            continue
        if isinstance(operation, keras.Model):
            yield from _leaf_operations(operation)
        else:
            yield operation


def untranslatable_operations(model) -> List[str]:
    """``'name (Type)'`` of every operation of ``model`` that has no tf_keras twin."""
    return [f"{operation.name} ({type(operation).__name__})"
            for operation in _leaf_operations(model) if type(operation) not in TWINS]


def _translate(model, input_twins: list, twins: Dict[int, object]) -> None:
    """Calls the twin of every operation of ``model`` on the twins of its inputs (recursive)."""
    for tensor, twin in zip(model.inputs, input_twins):
        twins[id(tensor)] = twin
    for operation in model.operations:
        if isinstance(operation, keras.layers.InputLayer):
            continue
        node = _only_node(operation)
        if isinstance(operation, keras.Model):
            _translate(operation, [twins[id(tensor)] for tensor in node.input_tensors], twins)
            outputs = [twins[id(tensor)] for tensor in operation.outputs]
        else:
            builder = TWINS.get(type(operation))
            if builder is None:
                raise ValueError(f"layer '{operation.name}' ({type(operation).__name__}) has no tf_keras twin; "
                                 f"supported: {', '.join(sorted(kind.__name__ for kind in TWINS))}.")
            layer, constants = builder(operation)
            args = keras.tree.map_structure(lambda value: twins.get(id(value), value), node.arguments.args)
            outputs = tf.nest.flatten(layer(*args))
            if isinstance(operation, keras.layers.AveragePooling2D):
                kernel = layer.get_weights()[0]
                constants = [np.full_like(kernel, 1.0 / (kernel.shape[0] * kernel.shape[1]))]
            if constants is not None:
                layer.set_weights(constants)
        for tensor, twin in zip(node.output_tensors, outputs):
            twins[id(tensor)] = twin


def build_tf_keras_twin(keras3_model) -> "tf_keras.Model":
    """The tf_keras architecture of a Keras 3 functional model (untrained weights).

    Args:
        keras3_model: Any ssrnet_tf age model (SSR-Net, a backbone with
            heads) or another functional model of the layers in
            :data:`TWINS`.

    Returns:
        A flat ``tf_keras.Model`` with the same input name, output structure
        and layer names; constant layers (average pools, pixel
        normalisation) hold their constant weights and are frozen.

    Raises:
        ValueError: Naming a layer without a twin, or called more than once.
    """
    image = tf_keras.Input(tuple(keras3_model.input_shape[1:]), name=keras3_model.inputs[0].name)
    twins: Dict[int, object] = {}
    _translate(keras3_model, [image], twins)
    outputs = keras.tree.map_structure(lambda tensor: twins[id(tensor)], keras3_model.output)
    return tf_keras.Model(image, outputs, name=keras3_model.name)


def to_tf_keras_twin(keras3_model) -> "tf_keras.Model":
    """The tf_keras twin of a Keras 3 model, with its weights.

    Args:
        keras3_model: A (trained) Keras 3 functional model.

    Returns:
        A ``tf_keras.Model`` computing the same function
        (:func:`build_tf_keras_twin` plus
        :func:`ssrnet_tf.models.weight_transfer.transfer_weights`).

    Raises:
        ValueError: If a layer has no twin, or the weights do not match.
    """
    twin = build_tf_keras_twin(keras3_model)
    transfer_weights(keras3_model, twin)
    return twin


def max_twin_difference(keras3_model, twin, images: np.ndarray, batch_size: int = 128) -> Dict[str, float]:
    """Largest absolute difference of every output, Keras 3 vs twin, on ``images``."""
    expected = keras3_model.predict(images, batch_size=batch_size, verbose=0)
    actual = twin.predict(images, batch_size=batch_size, verbose=0)
    return {name: float(np.abs(np.asarray(actual[name]) - np.asarray(expected[name])).max()) for name in expected}
