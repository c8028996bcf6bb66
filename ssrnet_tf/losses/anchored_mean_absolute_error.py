"""The expectation-regression term of LAE's second stage: (L_er - mae)^2."""

from __future__ import annotations

import math

import keras
from keras import ops

from ssrnet_tf.layers import registration


@registration.register
class AnchoredMeanAbsoluteError(keras.losses.Loss):
    """Squared deviation of a batch's MAE from a fixed MAE: ``(L_er - anchor)^2``.

    ``L_er = mean_i |y_hat_i - y_i|`` is the L1 error of the expected age
    over the batch, and ``anchor`` is the validation MAE the first stage
    reached. LAE's second stage re-trains the classifier on class-balanced
    batches with ``L_ld + (L_er - mae)^2``: this term keeps the re-balanced
    classifier's error near the first stage's, so that re-balancing trades
    head-class error for tail-class error without drifting off in overall
    accuracy. It is a batch-level quantity: :meth:`call` returns it once per
    sample, so the mean reduction gives the term itself (under a
    ``tf.distribute`` strategy, per replica).

    Args:
        anchor: The MAE to stay near, in years (>= 0; stage 1's validation MAE).
        reduction: A ``keras.losses.Loss`` reduction.
        name: Loss name.
        dtype: Loss computation dtype.

    Example:
        >>> loss = AnchoredMeanAbsoluteError(anchor=2.0)
        >>> float(loss([[10.0], [20.0]], [[13.0], [20.0]]))  # (1.5 - 2)^2
        0.25

    Reference:
        Bao et al., "LAE: Long-tailed Age Estimation", arXiv 2110.12741, 2021
        (second stage of the two-stage training).
    """

    def __init__(self, anchor, reduction="sum_over_batch_size", name="anchored_mean_absolute_error", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        anchor = float(anchor)
        if not math.isfinite(anchor) or anchor < 0:
            raise ValueError(f"anchor must be a finite MAE >= 0, got {anchor}.")
        self.anchor = anchor

    def call(self, y_true, y_pred):
        y_pred = ops.reshape(ops.convert_to_tensor(y_pred), (-1,))  # (batch,) one age per sample
        y_true = ops.cast(ops.reshape(ops.convert_to_tensor(y_true), (-1,)), y_pred.dtype)
        errors = ops.abs(y_pred - y_true)  # (batch,)
        deviation = ops.square(ops.mean(errors) - self.anchor)  # ()
        return ops.ones_like(errors) * deviation  # (batch,)

    def get_config(self):
        config = super().get_config()
        config.update({"anchor": self.anchor})
        return config
