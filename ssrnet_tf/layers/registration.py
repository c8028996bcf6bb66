"""One registration point for the package's serializable Keras objects."""

import keras

PACKAGE = "ssrnet_tf"


def register(cls):
    """Registers ``cls`` so that ``.keras`` files load without custom_objects.

    Args:
        cls: A Keras layer, loss or metric class.

    Returns:
        ``cls``, registered as ``ssrnet_tf>ClassName``.
    """
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)
