"""Registers every serializable ssrnet_tf object with Keras.

``.keras`` files that contain ssrnet_tf layers, losses or metrics can only
be loaded once those classes are registered; call :func:`register_all`
(or import :mod:`ssrnet_tf.layers` and friends) before
``keras.saving.load_model``. :func:`ssrnet_tf.model_spec.load_keras` does it
for you.
"""

import importlib

#: Modules whose import registers serializable objects.
_MODULES = ("ssrnet_tf.layers", "ssrnet_tf.losses", "ssrnet_tf.metrics", "ssrnet_tf.training.schedules")


def register_all() -> None:
    """Imports every module that registers Keras objects (idempotent)."""
    for name in _MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:
                raise
