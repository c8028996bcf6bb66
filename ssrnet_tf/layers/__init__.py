"""Custom Keras layers of ssrnet_tf (all registered and serializable)."""

from ssrnet_tf.layers.soft_stagewise_regression import SoftStagewiseRegression

__all__ = ["SoftStagewiseRegression"]
