"""Evaluation metrics of facial age estimation: MAE, CA(n), group MAE, σ, AAR.

:mod:`~ssrnet_tf.metrics.age_metrics` computes them with numpy on whole
evaluation sets; :mod:`~ssrnet_tf.metrics.keras_metrics` holds the streaming
Keras metrics (registered and serializable) for ``model.compile``. Importing
this package registers those metrics, which ``keras.saving.load_model`` needs
for models compiled with them.
"""

from ssrnet_tf.metrics.age_metrics import AAR_MAE_BOUND
from ssrnet_tf.metrics.age_metrics import AAR_STD_BOUND
from ssrnet_tf.metrics.age_metrics import DEFAULT_GROUP_EDGES
from ssrnet_tf.metrics.age_metrics import AgeGroupMAE
from ssrnet_tf.metrics.age_metrics import aar
from ssrnet_tf.metrics.age_metrics import age_report
from ssrnet_tf.metrics.age_metrics import cumulative_accuracy
from ssrnet_tf.metrics.age_metrics import group_labels
from ssrnet_tf.metrics.age_metrics import group_mae
from ssrnet_tf.metrics.age_metrics import group_mae_std
from ssrnet_tf.metrics.age_metrics import group_mae_std_about_group_mean
from ssrnet_tf.metrics.age_metrics import mean_absolute_error
from ssrnet_tf.metrics.keras_metrics import AgeAccuracyRepresentativeness
from ssrnet_tf.metrics.keras_metrics import CumulativeAccuracy
from ssrnet_tf.metrics.keras_metrics import GroupMAEStd
from ssrnet_tf.metrics.keras_metrics import GroupMAEStdAboutGroupMean
from ssrnet_tf.metrics.keras_metrics import default_age_metrics

__all__ = [
    "AAR_MAE_BOUND",
    "AAR_STD_BOUND",
    "DEFAULT_GROUP_EDGES",
    "AgeAccuracyRepresentativeness",
    "AgeGroupMAE",
    "CumulativeAccuracy",
    "GroupMAEStd",
    "GroupMAEStdAboutGroupMean",
    "aar",
    "age_report",
    "cumulative_accuracy",
    "default_age_metrics",
    "group_labels",
    "group_mae",
    "group_mae_std",
    "group_mae_std_about_group_mean",
    "mean_absolute_error",
]
