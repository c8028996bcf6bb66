"""Expected value of a discrete distribution: the age of classification heads."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from ssrnet_tf.layers import registration


@registration.register
class ExpectedValue(keras.layers.Layer):
    """Maps class probabilities to the expectation of per-class values.

    ``y = sum_k p_k * v_k`` for probabilities ``p`` of shape ``(batch, K)``
    and constant values ``v`` (e.g. the ages of the ``K`` classes), as in
    DEX's expected value and DLDL-v2's expectation module (eq. 5). It is one
    matrix product with a constant ``(K, 1)`` matrix, which the TFLite
    converter maps to a single ``FULLY_CONNECTED`` op.

    Args:
        values: Sequence of the ``K`` class values.
        **kwargs: Standard ``keras.layers.Layer`` arguments.

    Call arguments:
        inputs: Probabilities, shape ``(batch, K)``.

    Returns:
        Expectations, shape ``(batch, 1)``.

    Example:
        >>> layer = ExpectedValue(values=[0.0, 10.0, 20.0])
        >>> layer(keras.ops.convert_to_tensor([[0.5, 0.5, 0.0]])).shape
        (1, 1)

    Reference:
        Rothe et al., "DEX: Deep EXpectation of apparent age from a single
        image", ICCV Workshops 2015; Gao et al., "Age Estimation Using
        Expectation of Label Distribution Learning", IJCAI 2018.
    """

    def __init__(self, values, **kwargs):
        super().__init__(**kwargs)
        values = [float(value) for value in np.asarray(values, dtype=np.float64).reshape(-1)]
        if not values:
            raise ValueError(f"{type(self).__name__} needs at least one class value, got [].")
        if not all(np.isfinite(values)):
            raise ValueError(f"{type(self).__name__} values must be finite, got {values}.")
        self.values = values

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] != len(self.values):
            raise ValueError(
                f"{type(self).__name__} has {len(self.values)} class values but its input has "
                f"{input_shape[-1]} classes (shape {tuple(input_shape)})."
            )
        super().build(input_shape)

    def call(self, inputs):
        # (K, 1) constant: folded into the graph, no weights to save.
        matrix = ops.convert_to_tensor(np.asarray(self.values, dtype=np.float32)[:, None], dtype=inputs.dtype)
        return ops.matmul(inputs, matrix)  # (batch, 1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 1)

    def get_config(self):
        config = super().get_config()
        config.update({"values": list(self.values)})
        return config
