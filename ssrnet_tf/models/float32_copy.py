"""A float32 copy of a model trained with mixed precision, for export.

On a GPU the trainer uses the ``mixed_float16`` policy (``run.mixed_precision:
auto``), and every layer of the saved ``.keras`` keeps it: loaded again, the
model computes in float16, and the TFLite converter rejects its float16
``Conv2D``/``MatMul`` ops. The variables of a mixed-precision model are
float32 already, so the same architecture rebuilt with the ``float32``
policy and given the same weights is the model to export.
"""

from __future__ import annotations

from typing import Any, Tuple

import keras


def _as_float32(node: Any) -> Tuple[Any, int]:
    """``node`` with every mixed dtype policy set to float32, and their count."""
    if isinstance(node, list):
        items = [_as_float32(item) for item in node]
        return [item for item, _ in items], sum(count for _, count in items)
    if not isinstance(node, dict):
        return node, 0
    if "DTypePolicy" in str(node.get("class_name", "")) and str(node.get("config", {}).get("name", "")).startswith("mixed_"):
        return {**node, "config": {**node["config"], "name": "float32"}}, 1
    copied, count = {}, 0
    for key, value in node.items():
        copied[key], found = _as_float32(value)
        count += found
    return copied, count


def float32_copy(model: keras.Model) -> keras.Model:
    """Returns ``model`` rebuilt to compute in float32, with its weights.

    A model without mixed-precision layers is returned as it is.

    Args:
        model: Any serialisable Keras model (SSR-Net, a backbone with heads).

    Returns:
        A float32 model with the same architecture, names and weights.

    Example:

    >>> keras.mixed_precision.set_global_policy("mixed_float16")  # doctest: +SKIP
    >>> model = float32_copy(build_ssrnet())  # doctest: +SKIP
    >>> model.layers[1].compute_dtype  # doctest: +SKIP
    'float32'
    """
    from ssrnet_tf.custom_objects import register_all  # pylint: disable=import-outside-toplevel

    config, mixed = _as_float32(keras.saving.serialize_keras_object(model))
    if not mixed:
        return model
    register_all()
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")  # for layers whose config has no dtype
    try:
        copy = keras.saving.deserialize_keras_object(config)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    copy.set_weights(model.get_weights())
    return copy
