"""Custom Keras losses of ssrnet_tf (all registered and serializable).

Importing this package registers every loss, which ``keras.saving.
load_model`` needs to read compiled ``.keras`` files made with ssrnet_tf.
The distribution loss of DLDL-v2 is Keras' own ``keras.losses.
KLDivergence``.
"""

from ssrnet_tf.losses.anchored_mean_absolute_error import AnchoredMeanAbsoluteError
from ssrnet_tf.losses.masked import MaskedSparseCategoricalCrossentropy

__all__ = ["AnchoredMeanAbsoluteError", "MaskedSparseCategoricalCrossentropy"]
