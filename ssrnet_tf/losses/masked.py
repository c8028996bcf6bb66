"""Cross-entropy that skips samples whose label is missing."""

from __future__ import annotations

import keras

from ssrnet_tf.layers import registration


@registration.register
class MaskedSparseCategoricalCrossentropy(keras.losses.Loss):
    """Sparse categorical cross-entropy over the labelled samples only.

    Samples whose label equals ``ignore_label`` (``-1``: the gender or race
    of a face is unknown) contribute nothing, so datasets with different
    label sets can be mixed in one batch (multi-task age/gender/race
    learning). With the default ``"sum_over_batch_size"`` reduction the loss
    is the **mean over the labelled samples** of the batch, not over the
    whole batch; a batch without any labelled sample gives a loss of exactly
    0 (not NaN) and zero gradients. With ``sample_weight`` the loss is
    ``sum(w_i * ce_i) / n_labelled``; with ``reduction="sum"`` it is the sum
    over labelled samples.

    It builds on ``keras.losses.sparse_categorical_crossentropy``'s
    ``ignore_class``, which zeroes the masked samples (their predictions are
    replaced before the logarithm, so no NaN reaches the gradient) and marks
    them with a Keras mask; ``keras.losses.Loss`` then rescales the valid
    samples by ``batch / n_labelled`` (``divide_no_nan``). Under a
    ``tf.distribute`` strategy the mean is taken per replica.

    Args:
        ignore_label: The label of a missing annotation.
        from_logits: Whether ``y_pred`` holds logits instead of
            probabilities.
        reduction: A ``keras.losses.Loss`` reduction.
        name: Loss name.
        dtype: Loss computation dtype.

    Example:
        >>> loss = MaskedSparseCategoricalCrossentropy()
        >>> float(loss([0, -1], [[0.5, 0.5], [0.9, 0.1]]))  # ln 2
        0.693...
    """

    def __init__(
        self,
        ignore_label=-1,
        from_logits=False,
        reduction="sum_over_batch_size",
        name="masked_sparse_categorical_crossentropy",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if isinstance(ignore_label, bool) or not float(ignore_label).is_integer():
            raise ValueError(f"ignore_label must be an integer, got {ignore_label!r}.")
        self.ignore_label = int(ignore_label)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        y_true = keras.ops.convert_to_tensor(y_true)
        y_pred = keras.ops.convert_to_tensor(y_pred)
        # (batch,) per-sample losses, zero and masked where the label is missing.
        return keras.losses.sparse_categorical_crossentropy(
            y_true, y_pred, from_logits=self.from_logits, ignore_class=self.ignore_label
        )

    def get_config(self):
        config = super().get_config()
        config.update({"ignore_label": self.ignore_label, "from_logits": self.from_logits})
        return config
