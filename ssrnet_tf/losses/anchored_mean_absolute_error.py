"""The expectation-regression term of LAE's second stage: (L_er - mae)^2."""

from __future__ import annotations

import math

import keras
from keras import ops

from ssrnet_tf.layers import registration


@registration.register
class AnchoredMeanAbsoluteError(keras.losses.Loss):
    """Squared deviation of each sample's L1 error from a fixed MAE.

    LAE's classification stage (Bao et al., 2021, eq. 4) optimises the
    classifier with::

        L_cl = L_ld + (L_er - mae)^2,   L_er = |y_i - sum_k k * z_hat_i^k|  (eq. 2)

    ``L_er`` is the L1 error of sample ``i``'s expected age and ``mae`` the
    validation MAE of the representation stage (eq. 5). The square is taken
    *per sample*, "for further narrowing down the standard deviation of
    different age groups": it pulls every sample's error towards the
    stage-1 MAE, so faces with a large error (the tail classes) are pushed
    hardest. :meth:`call` returns ``(|y_pred_i - y_true_i| - anchor)^2``
    for every sample and the default mean reduction averages it over the
    batch, so the loss is ``mean_i (L_er_i - mae)^2``, which equals
    ``(mean_i L_er_i - mae)^2`` plus the variance of the errors.

    Args:
        anchor: The MAE to stay near, in years (>= 0; stage 1's validation MAE).
        reduction: A ``keras.losses.Loss`` reduction.
        name: Loss name.
        dtype: Loss computation dtype.

    Example:
        >>> loss = AnchoredMeanAbsoluteError(anchor=2.0)
        >>> float(loss([[10.0], [20.0]], [[13.0], [20.0]]))  # ((3-2)^2 + (0-2)^2) / 2
        2.5

    Reference:
        Bao et al., "LAE: Long-tailed Age Estimation", arXiv 2110.12741, 2021
        (classification stage, eqs. 2, 4 and 5).
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
        errors = ops.abs(y_pred - y_true)  # (batch,) L_er of each sample
        return ops.square(errors - self.anchor)  # (batch,)

    def get_config(self):
        config = super().get_config()
        config.update({"anchor": self.anchor})
        return config
