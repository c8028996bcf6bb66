"""Copying weights between two models of one architecture, by layer name."""

from __future__ import annotations

from typing import Iterator


def leaf_layers(model) -> Iterator:
    """The layers of a Keras 3 or tf_keras model, nested models flattened."""
    for layer in model.layers:
        if hasattr(layer, "layers"):
            yield from leaf_layers(layer)
        else:
            yield layer


def transfer_weights(source_model, target_model) -> None:
    """Copies every layer's weights from ``source_model`` into ``target_model``, by layer name.

    Both models may be Keras 3 or tf_keras (a QAT twin), nested models are
    searched too. Frozen layers of the target without a same-named source
    layer (``trainable=False``: the constant depthwise "average pools" and
    pixel normalisation of a tf_keras twin) keep their weights.

    Args:
        source_model: The model whose weights are copied.
        target_model: The model that receives them.

    Raises:
        ValueError: Naming a layer with weights that has no counterpart, or a
            weight of the wrong shape.
    """
    sources = {layer.name: layer for layer in leaf_layers(source_model) if layer.weights}
    copied = set()
    for layer in leaf_layers(target_model):
        if not layer.weights:
            continue
        source = sources.get(layer.name)
        if source is None:
            if not layer.trainable:
                continue  # a constant layer of the target
            raise ValueError(f"layer '{layer.name}' of '{target_model.name}' has no counterpart in "
                             f"'{source_model.name}'.")
        values = source.get_weights()
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if [tuple(v.shape) for v in values] != expected:
            raise ValueError(
                f"layer '{layer.name}': '{source_model.name}' has weights of shapes "
                f"{[tuple(v.shape) for v in values]}, '{target_model.name}' expects {expected}; "
                "build it with the config the model was built with."
            )
        layer.set_weights(values)
        copied.add(layer.name)
    left = sorted(set(sources) - copied)
    if left:
        raise ValueError(f"layers {left} of '{source_model.name}' have no counterpart in '{target_model.name}'.")
