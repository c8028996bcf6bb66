"""A Flatten whose TFLite graph is a single static RESHAPE."""

from __future__ import annotations

import math

import keras
from keras import ops

from ssrnet_tf.layers import registration


@registration.register
class StaticFlatten(keras.layers.Layer):
    """Flattens ``(batch, ...)`` to ``(batch, features)`` with a -1 batch.

    ``keras.layers.Flatten`` reshapes to ``(shape(x)[0], features)``, which
    the TFLite converter turns into ``SHAPE -> STRIDED_SLICE -> PACK ->
    RESHAPE``; the first three ops are not taken by the XNNPACK delegate and
    split the graph into partitions. Reshaping to ``(-1, features)`` gives
    one ``RESHAPE`` with a constant shape, which XNNPACK runs, and keeps the
    batch size free. The per-example feature dimensions must be known.
    """

    def build(self, input_shape):
        self.features = self._features(input_shape)
        super().build(input_shape)

    def call(self, inputs):
        # The feature size is fixed at build time: a caller may feed a tensor
        # whose static spatial shape is unknown (e.g. from tf.data).
        return ops.reshape(inputs, (-1, self.features))

    @staticmethod
    def _features(shape) -> int:
        dims = tuple(shape[1:])
        if any(d is None for d in dims):
            raise ValueError(f"StaticFlatten needs static feature dimensions, got {tuple(shape)}.")
        return int(math.prod(dims))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self._features(input_shape))
