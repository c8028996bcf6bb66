"""ssrnet_tf: compact, deployable facial age estimation in Keras 3."""

__version__ = "0.1.0"
