"""Streaming Keras metrics of facial age estimation.

The metrics keep sums and counts in state variables, so that over several
batches their result equals the numpy function of
:mod:`ssrnet_tf.metrics.age_metrics` on the concatenated data. They use
``keras.ops`` only and take ``y_true``/``y_pred`` of shape ``(batch,)`` or
``(batch, 1)``, as a model with one age output gives them in ``fit``.
"""

from __future__ import annotations

from typing import List, Sequence

import keras
from keras import ops

from ssrnet_tf.metrics import age_metrics

_PACKAGE = "ssrnet_tf"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class CumulativeAccuracy(keras.metrics.Metric):
    """Cumulative accuracy CA(n): the fraction of faces within ``n`` years.

    A face counts when ``|y_pred - y_true| < n`` ("absolute errors smaller
    than n", SSR-Net's CA(n)), or ``<= n`` with ``strict=False``, as in
    :func:`ssrnet_tf.metrics.cumulative_accuracy`.
    With ``sample_weight`` the result is the weighted fraction.

    Args:
        n: Tolerance in years, finite and ``>= 0``.
        strict: Count ``|error| < n`` (default) rather than ``|error| <= n``.
        name: Metric name; defaults to ``"ca_<n>"`` (``"ca_at_most_<n>"``
            with ``strict=False``).
        dtype: Dtype of the state and result.

    Example:
    ```python
    metric = CumulativeAccuracy(5)
    metric.update_state([[20.0], [40.0]], [[25.0], [30.0]])
    metric.result()  # 0.0: errors 5 and 10 are not smaller than 5
    ```
    """

    def __init__(self, n: float, strict: bool = True, name: str | None = None, dtype=None, **kwargs):
        n = age_metrics.validate_tolerance(n)
        if name is None:
            prefix = "ca_" if strict else "ca_at_most_"
            name = prefix + age_metrics.metric_suffix(n)
        super().__init__(name=name, dtype=dtype, **kwargs)
        self.n = n
        self.strict = bool(strict)
        self.hits = self.add_variable(shape=(), initializer="zeros", dtype=self.dtype, name="hits")
        self.total = self.add_variable(shape=(), initializer="zeros", dtype=self.dtype, name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        error, weight = _absolute_error_and_weight(y_true, y_pred, sample_weight, self.dtype)
        tolerance = ops.cast(self.n, self.dtype)
        hit = ops.less(error, tolerance) if self.strict else ops.less_equal(error, tolerance)
        self.hits.assign_add(ops.sum(ops.cast(hit, self.dtype) * weight))
        self.total.assign_add(ops.sum(weight))

    def result(self):
        return ops.divide_no_nan(self.hits, self.total)

    def get_config(self):
        config = super().get_config()
        config.update({"n": self.n, "strict": self.strict})
        return config


class _AgeGroupErrorMetric(keras.metrics.Metric):
    """Base of the metrics built on per-group absolute-error sums and counts.

    Groups are taken by true age as in :func:`ssrnet_tf.metrics.group_mae`:
    group ``k`` holds ``edges[k - 1] < age <= edges[k]``, ages below 1 go
    into the first group and ages above the last edge into the last, up to
    ``last_age`` (LAE's "71-81"); older faces are in no group.

    Args:
        boundaries: Group edges; the defaults give 1-10, ..., 61-70, 71-81.
        last_age: Last age of the last group (``None``: open-ended; ``"lae"``:
            81 with the default edges).
        name: Metric name.
        dtype: Dtype of the state and result.
    """

    def __init__(
        self,
        boundaries: Sequence[int] = age_metrics.DEFAULT_GROUP_EDGES,
        name: str | None = None,
        dtype=None,
        last_age: int | None | str = age_metrics.LAE,
        **kwargs,
    ):
        super().__init__(name=name, dtype=dtype, **kwargs)
        self.boundaries = age_metrics.validate_group_edges(boundaries)
        last_age = age_metrics.resolve_last_age(self.boundaries, last_age)
        age_metrics.group_labels(self.boundaries, last_age)  # checks last_age
        self.last_age = None if last_age is None else int(last_age)
        groups = len(self.boundaries) + 1
        self.error_sum = self.add_variable(shape=(), initializer="zeros", dtype=self.dtype, name="error_sum")
        self.face_count = self.add_variable(shape=(), initializer="zeros", dtype=self.dtype, name="face_count")
        self.group_error_sum = self.add_variable(
            shape=(groups,), initializer="zeros", dtype=self.dtype, name="group_error_sum"
        )
        self.group_count = self.add_variable(
            shape=(groups,), initializer="zeros", dtype=self.dtype, name="group_count"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        error, weight = _absolute_error_and_weight(y_true, y_pred, sample_weight, self.dtype)
        true = ops.reshape(ops.cast(y_true, self.dtype), (-1, 1))  # (batch, 1)
        edges = ops.cast(ops.convert_to_tensor(self.boundaries), self.dtype)[None, :]  # (1, edges)
        # Number of edges strictly below the age, i.e. the group index.
        group = ops.sum(ops.cast(ops.greater(true, edges), "int32"), axis=1)  # (batch,)
        member = ops.one_hot(group, len(self.boundaries) + 1, dtype=self.dtype)  # (batch, groups)
        self.error_sum.assign_add(ops.sum(error * weight))
        self.face_count.assign_add(ops.sum(weight))
        if self.last_age is not None:  # older than the last group: in no group
            member = member * ops.cast(ops.less_equal(true, float(self.last_age)), self.dtype)
        member = member * weight[:, None]
        self.group_error_sum.assign_add(ops.sum(member * error[:, None], axis=0))
        self.group_count.assign_add(ops.sum(member, axis=0))

    def _mae_and_std(self):
        """MAE of the grouped faces, σ of LAE's eq. 7 over the non-empty groups, and their face count."""
        total = ops.sum(self.group_count)
        mae = ops.divide_no_nan(ops.sum(self.group_error_sum), total)
        filled = ops.cast(ops.greater(self.group_count, 0), self.dtype)  # (groups,)
        group_mae = ops.divide_no_nan(self.group_error_sum, self.group_count)  # (groups,)
        variance = ops.divide_no_nan(ops.sum(filled * ops.square(group_mae - self._centre(mae, group_mae, filled))),
                                     ops.sum(filled))
        return mae, ops.sqrt(variance), total

    @staticmethod
    def _centre(mae, group_mae, filled):
        """What the group MAEs deviate from: the whole-set MAE (LAE eq. 7)."""
        del group_mae, filled
        return mae

    def get_config(self):
        config = super().get_config()
        config.update({"boundaries": list(self.boundaries), "last_age": self.last_age})
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class GroupMAEStd(_AgeGroupErrorMetric):
    """σ of LAE's eq. 7: RMS deviation of the group MAEs from the overall MAE.

    Streaming form of :func:`ssrnet_tf.metrics.group_mae_std`:
    ``sqrt(sum_j (MAE^j - MAE)^2 / G)`` over the ``G`` groups that have
    received a face, ``MAE`` being over all faces seen. The result is 0
    before any face has been seen.

    Args:
        boundaries: Group edges; the defaults give 1-10, ..., 61-70, 71-81.
        last_age: Last age of the last group (``None``: open-ended; ``"lae"``:
            81 with the default edges).
        name: Metric name.
        dtype: Dtype of the state and result.

    Reference:
        Bao et al., "LAE: Long-tailed Age Estimation", 2021, eq. 7.
    """

    def __init__(self, boundaries=age_metrics.DEFAULT_GROUP_EDGES, name="group_mae_std", dtype=None, **kwargs):
        super().__init__(boundaries=boundaries, name=name, dtype=dtype, **kwargs)

    def result(self):
        _, sigma, _ = self._mae_and_std()
        return sigma


@keras.saving.register_keras_serializable(package=_PACKAGE)
class GroupMAEStdAboutGroupMean(GroupMAEStd):
    """Population σ of the non-empty groups' MAEs about their own mean.

    Streaming form of
    :func:`ssrnet_tf.metrics.age_metrics.group_mae_std_about_group_mean`;
    not the paper's σ (:class:`GroupMAEStd` is).

    Args:
        boundaries: Group edges; the defaults give 1-10, ..., 61-70, 71-81.
        last_age: Last age of the last group (``None``: open-ended; ``"lae"``:
            81 with the default edges).
        name: Metric name.
        dtype: Dtype of the state and result.
    """

    def __init__(self, boundaries=age_metrics.DEFAULT_GROUP_EDGES, name="group_mae_std_about_group_mean", dtype=None,
                 **kwargs):
        super().__init__(boundaries=boundaries, name=name, dtype=dtype, **kwargs)

    @staticmethod
    def _centre(mae, group_mae, filled):
        del mae
        return ops.divide_no_nan(ops.sum(group_mae * filled), ops.sum(filled))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class AgeAccuracyRepresentativeness(_AgeGroupErrorMetric):
    """AAR = ``max(0, 7 - MAE) + max(0, 3 - σ)``, accumulated over batches.

    ``MAE`` is over all faces seen and ``σ`` the RMS deviation of the
    non-empty age groups' MAEs from it (LAE eqs. 6 and 7), as in
    :func:`ssrnet_tf.metrics.aar`. The result is 0 before any face has been
    seen. Higher is better (at most 10).

    Args:
        boundaries: Group edges; the defaults give 1-10, ..., 61-70, 71-81.
        last_age: Last age of the last group (``None``: open-ended; ``"lae"``:
            81 with the default edges).
        name: Metric name.
        dtype: Dtype of the state and result.

    Example:
    ```python
    model.compile(loss="mae", metrics=[AgeAccuracyRepresentativeness()])
    ```

    Reference:
        - AAR (Age Accuracy and Representativeness) metric of the Guess The
          Age contest (GTA 2021 / GTA 2023).
    """

    def __init__(self, boundaries=age_metrics.DEFAULT_GROUP_EDGES, name="aar", dtype=None, **kwargs):
        super().__init__(boundaries=boundaries, name=name, dtype=dtype, **kwargs)

    def result(self):
        _, sigma, total = self._mae_and_std()
        mae = ops.divide_no_nan(self.error_sum, self.face_count)  # over every face, as in LAE eq. 6
        spread = ops.where(ops.greater(total, 0), ops.relu(age_metrics.AAR_STD_BOUND - sigma), ops.zeros_like(sigma))
        score = ops.relu(age_metrics.AAR_MAE_BOUND - mae) + spread
        return ops.where(ops.greater(self.face_count, 0), score, ops.zeros_like(score))


def default_age_metrics() -> List[keras.metrics.Metric]:
    """The metrics to compile an age model with: MAE, CA(3), CA(5), AAR.

    Returns:
        New metric objects named ``mae``, ``ca_3``, ``ca_5`` and ``aar``.
    """
    return [
        keras.metrics.MeanAbsoluteError(name="mae"),
        CumulativeAccuracy(3),
        CumulativeAccuracy(5),
        AgeAccuracyRepresentativeness(),
    ]


def _absolute_error_and_weight(y_true, y_pred, sample_weight, dtype):
    """``|y_pred - y_true|`` and the per-face weight, both ``(batch,)``."""
    true = ops.reshape(ops.cast(y_true, dtype), (-1,))
    pred = ops.reshape(ops.cast(y_pred, dtype), (-1,))
    error = ops.abs(pred - true)  # (batch,)
    if sample_weight is None:
        return error, ops.ones_like(error)
    weight = ops.cast(sample_weight, dtype)
    weight = ops.reshape(ops.broadcast_to(ops.reshape(weight, (-1, 1)), (ops.shape(error)[0], 1)), (-1,))
    return error, weight
