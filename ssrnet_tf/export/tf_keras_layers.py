"""tf_keras twins of the custom ssrnet_tf layers (for tfmot, which takes tf_keras models only).

Each class computes what its Keras 3 layer computes, with TFLite-friendly
ops, and is registered serializable so that tfmot can clone it.
:data:`ssrnet_tf.export.tf_keras_twin.TWINS` maps the Keras 3 layers to
them.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

try:
    import tf_keras
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "the tf_keras twins need tf_keras (tfmot does not accept Keras 3 models): "
        "pip install tf_keras tensorflow-model-optimization"
    ) from error

from ssrnet_tf.layers import soft_stagewise_regression  # noqa: E402  (after the tf_keras check)

#: Package under which the tf_keras layers are registered.
_PACKAGE = "ssrnet_tf"


@tf_keras.saving.register_keras_serializable(package=_PACKAGE)
class TfKerasSoftStagewiseRegression(tf_keras.layers.Layer):
    """Soft stagewise regression (SSR-Net eq. 7) as a tf_keras layer.

    The tf_keras twin of :class:`ssrnet_tf.layers.SoftStagewiseRegression`,
    computing it with the same function
    (:func:`ssrnet_tf.layers.soft_stagewise_regression.stagewise_age`), with
    the same arguments, inputs and semantics (``1 + lambda_d * Delta_k``
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
        self.stage_bins = soft_stagewise_regression.check_stage_bins(stage_bins, min_scale)
        self.lambda_local = float(lambda_local)
        self.lambda_d = float(lambda_d)
        self.age_range = float(age_range)
        self.min_scale = float(min_scale)

    def call(self, inputs, training=None):
        return soft_stagewise_regression.stagewise_age(self, inputs, training)

    def compute_output_shape(self, input_shape):
        return tf.TensorShape((input_shape[0][0], 1))

    def get_config(self):
        config = super().get_config()
        config.update(soft_stagewise_regression.stage_config(self))
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



@tf_keras.saving.register_keras_serializable(package=_PACKAGE)
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



#: Custom objects for deserializing (and quantize-cloning) a twin.
CUSTOM_OBJECTS = {
    prefix + cls.__name__: cls
    for cls in (TfKerasSoftStagewiseRegression, TfKerasStaticFlatten, TfKerasExpectedValue)
    for prefix in ("", f"{_PACKAGE}>")
}
