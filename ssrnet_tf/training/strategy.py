"""Picking a tf.distribute strategy and mixed precision from the hardware."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def choose_strategy(name: str = "auto"):
    """Returns a ``tf.distribute.Strategy``.

    ``"auto"``: TPUStrategy when a TPU is attached (Colab), MirroredStrategy
    with several GPUs, else the default strategy (one GPU or the CPU).

    Args:
        name: ``"auto"``, ``"default"``, ``"mirrored"`` or ``"tpu"``.

    Raises:
        ValueError: For an unknown name, or ``"tpu"`` without a TPU.
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    if name not in ("auto", "default", "mirrored", "tpu"):
        raise ValueError(f"run.strategy must be auto, default, mirrored or tpu, got {name!r}.")
    if name in ("auto", "tpu"):
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            logger.info("using TPUStrategy")
            return tf.distribute.TPUStrategy(resolver)
        except (ValueError, RuntimeError, tf.errors.NotFoundError) as error:
            if name == "tpu":
                raise ValueError(f"run.strategy is 'tpu' but no TPU was found ({error}).") from None
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        logger.info("using MirroredStrategy over %d GPUs", len(gpus))
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def configure_mixed_precision(mode: str = "auto") -> str:
    """Sets the Keras dtype policy; returns its name.

    ``"auto"`` uses ``mixed_float16`` when a GPU is present (``mixed_bfloat16``
    on TPU is left to the user), ``float32`` otherwise.
    """
    import keras  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    if mode not in ("auto", "on", "off"):
        raise ValueError(f"run.mixed_precision must be auto, on or off, got {mode!r}.")
    use = mode == "on" or (mode == "auto" and bool(tf.config.list_physical_devices("GPU")))
    policy = "mixed_float16" if use else "float32"
    keras.mixed_precision.set_global_policy(policy)
    return policy
