"""Custom Keras layers of ssrnet_tf (all registered and serializable).

Importing this package registers every layer, which ``keras.saving.
load_model`` needs to read ``.keras`` files made with ssrnet_tf.
"""

from ssrnet_tf.layers.arg_max_value import ArgMaxValue
from ssrnet_tf.layers.expected_value import ExpectedValue
from ssrnet_tf.layers.pixel_normalization import PixelNormalization
from ssrnet_tf.layers.soft_stagewise_regression import SoftStagewiseRegression
from ssrnet_tf.layers.static_flatten import StaticFlatten

__all__ = ["ArgMaxValue", "ExpectedValue", "PixelNormalization", "SoftStagewiseRegression", "StaticFlatten"]
