"""Soft stagewise regression: the SSR-Net output layer (paper eq. 7)."""

from __future__ import annotations

import keras
from keras import ops

from ssrnet_tf.layers import registration


@registration.register
class SoftStagewiseRegression(keras.layers.Layer):
    """Turns SSR-Net stage outputs into an age with a dynamic range.

    For ``K`` stages with ``s_k`` bins each, stage distributions ``p^(k)``,
    bin shifts ``eta^(k)`` and scale factors ``Delta_k``, the output is
    (SSR-Net, eq. 7, with the dynamic range of section 3.3)::

        y = V * sum_k sum_i p_i^(k) * (i + lambda_local * eta_i^(k))
                       / prod_{j<=k} s_j * (1 + lambda_d * Delta_j)

    The original code computed this in a Python ``Lambda``; here it is a
    registered layer made of element-wise ops, a reduction and a constant
    index vector per stage, all of which the TFLite converter maps to
    builtin kernels.

    Two guards make the layer safe to train:

    * **Division guard.** ``1 + lambda_d * Delta_k`` is bounded below by
      ``min_scale`` before it divides. ``Delta_k`` comes from a ``tanh``, so
      with the reference ``lambda_d = 1`` the factor lies in ``(0, 2)`` and
      only approaches zero as ``Delta_k -> -1``, where the original code
      divides by (almost) zero. With the default ``min_scale = 0.1`` outputs
      are unchanged whenever ``Delta_k >= -0.9 / lambda_d`` (the normal
      range; the published models stay far inside it), and the largest
      possible stretch of one stage's bin width is 10x instead of infinite.
    * **Non-negative ages at inference.** ``i + lambda_local * eta_i`` is
      negative for the first bin when ``eta_0 < 0``, so the raw formula can
      give a negative age. When ``training`` is false the age is clamped at
      0. During training the raw value is kept so that the loss can pull a
      negative prediction back up (a clamp would zero its gradient).

    Args:
        stage_bins: Sequence of ``s_k``, the number of bins of each stage
            (each >= 1).
        lambda_local: Weight ``lambda_local`` of the bin shifts ``eta``.
        lambda_d: Weight ``lambda_d`` of the scale factors ``Delta``.
        age_range: ``V``, the width of the age range (101 for ages 0-100).
        min_scale: Lower bound applied to ``1 + lambda_d * Delta_k``.
        **kwargs: Standard ``keras.layers.Layer`` arguments.

    Call arguments:
        inputs: Flat list of ``3 * K`` tensors, in the order of the original
            ``pred_a`` Lambda: the ``K`` stage distributions ``(batch, s_k)``,
            then the ``K`` scale factors ``(batch, 1)``, then the ``K`` shift
            vectors ``(batch, s_k)``.
        training: Whether the layer runs in training mode (no clamp).

    Returns:
        Ages, shape ``(batch, 1)``.

    Example:
        >>> layer = SoftStagewiseRegression(stage_bins=(3, 3, 3))
        >>> probabilities = [keras.ops.ones((2, 3)) / 3.0] * 3
        >>> scales = [keras.ops.zeros((2, 1))] * 3
        >>> shifts = [keras.ops.zeros((2, 3))] * 3
        >>> layer(probabilities + scales + shifts).shape
        (2, 1)

    Reference:
        Yang et al., "SSR-Net: A Compact Soft Stagewise Regression Network
        for Age Estimation", IJCAI 2018.
    """

    def __init__(
        self,
        stage_bins,
        lambda_local=1.0,
        lambda_d=1.0,
        age_range=101.0,
        min_scale=0.1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.stage_bins = check_stage_bins(stage_bins, min_scale)
        self.lambda_local = float(lambda_local)
        self.lambda_d = float(lambda_d)
        self.age_range = float(age_range)
        self.min_scale = float(min_scale)

    def call(self, inputs, training=None):
        return stagewise_age(self, inputs, training)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 1)

    def get_config(self):
        config = super().get_config()
        config.update(stage_config(self))
        return config


def check_stage_bins(stage_bins, min_scale) -> tuple:
    """``stage_bins`` as a tuple of ints, checked with ``min_scale``.

    Raises:
        ValueError: For no stage, a stage with < 1 bin, or ``min_scale <= 0``.
    """
    stage_bins = tuple(int(bins) for bins in stage_bins)
    if not stage_bins:
        raise ValueError("stage_bins must name at least one stage, got ().")
    if any(bins < 1 for bins in stage_bins):
        raise ValueError(f"stage_bins must all be >= 1, got {stage_bins}.")
    if not min_scale > 0:
        raise ValueError(f"min_scale must be > 0, got {min_scale}.")
    return stage_bins


def stage_config(layer) -> dict:
    """The eq. 7 arguments of a soft stagewise regression layer (Keras 3 or its tf_keras twin)."""
    return {
        "stage_bins": list(layer.stage_bins),
        "lambda_local": layer.lambda_local,
        "lambda_d": layer.lambda_d,
        "age_range": layer.age_range,
        "min_scale": layer.min_scale,
    }


def stagewise_age(layer, inputs, training=None):
    """SSR-Net eq. 7 with the division guard and the inference clamp, in ``keras.ops``.

    Shared by :class:`SoftStagewiseRegression` and its tf_keras twin
    (:class:`ssrnet_tf.export.tf_keras_layers.TfKerasSoftStagewiseRegression`):
    with the TensorFlow backend the ops are TensorFlow ops on either's
    tensors.

    Args:
        layer: Holds ``stage_bins``, ``lambda_local``, ``lambda_d``,
            ``age_range`` and ``min_scale``.
        inputs: The ``3 * K`` tensors (see :class:`SoftStagewiseRegression`).
        training: Whether to keep negative raw ages (no clamp).

    Returns:
        Ages ``(batch, 1)``.
    """
    num_stages = len(layer.stage_bins)
    if len(inputs) != 3 * num_stages:
        raise ValueError(
            f"{type(layer).__name__} with {num_stages} stages expects "
            f"{3 * num_stages} input tensors, got {len(inputs)}."
        )
    probabilities = inputs[:num_stages]
    scales = inputs[num_stages : 2 * num_stages]
    shifts = inputs[2 * num_stages :]

    age = None
    denominator = None
    for bins, stage_p, stage_delta, stage_eta in zip(layer.stage_bins, probabilities, scales, shifts):
        # (s_k,) bin indices 0 .. s_k - 1.
        index = ops.arange(bins, dtype=keras.backend.standardize_dtype(stage_p.dtype))
        # (batch, 1): sum_i p_i * (i + lambda_local * eta_i).
        expected_bin = ops.sum(stage_p * (index + layer.lambda_local * stage_eta), axis=-1, keepdims=True)
        # (batch, 1): s_k * (1 + lambda_d * Delta_k), guarded.
        width = float(bins) * ops.maximum(1.0 + layer.lambda_d * stage_delta, layer.min_scale)
        denominator = width if denominator is None else denominator * width
        term = expected_bin / denominator
        age = term if age is None else age + term
    age = layer.age_range * age
    if not training:
        age = ops.maximum(age, 0.0)
    return age
