"""Value of the most probable class: the age of a plain classification head."""

from __future__ import annotations

import numpy as np
from keras import ops

from ssrnet_tf.layers import expected_value, registration


@registration.register
class ArgMaxValue(expected_value.ExpectedValue):
    """Maps class probabilities to the value of the arg-max class.

    ``y = v_{argmax_k p_k}`` for probabilities ``p`` of shape ``(batch, K)``
    and constant values ``v``: the prediction of age estimation cast as
    plain classification, "the class with the highest probability (argmax)
    is considered the predicted age value" (the LDL report's classification
    baseline), as opposed to DEX's expectation (:class:`ExpectedValue`).
    It has no gradient; train the probabilities with their own loss. Ops:
    ``ARG_MAX`` and ``GATHER`` in TFLite. Arguments, checks and config are
    those of :class:`ExpectedValue`.

    Args:
        values: Sequence of the ``K`` class values.
        **kwargs: Standard ``keras.layers.Layer`` arguments.

    Call arguments:
        inputs: Probabilities, shape ``(batch, K)``.

    Returns:
        Values, shape ``(batch, 1)``.

    Example:
        >>> layer = ArgMaxValue(values=[0.0, 10.0, 20.0])
        >>> keras.ops.convert_to_numpy(layer(keras.ops.convert_to_tensor([[0.2, 0.5, 0.3]]))).tolist()
        [[10.0]]

    Reference:
        Rothe et al., "DEX", 2015 (expectation vs arg-max); the SE-ResNeXt
        LDL report's classification baseline.
    """

    def call(self, inputs):
        table = ops.convert_to_tensor(np.asarray(self.values, dtype=np.float32), dtype=inputs.dtype)  # (K,)
        index = ops.argmax(inputs, axis=-1)  # (batch,)
        return ops.expand_dims(ops.take(table, index, axis=0), -1)  # (batch, 1)
