"""Loading the model a command was pointed at: .keras, .h5 or a registry name."""

from __future__ import annotations

import os
import pathlib

from ssrnet_tf.commands.common import WEIGHTS_DIR_ENV


def load_model_and_spec(name_or_path: str, weights_dir=None):
    """Returns ``(keras_model, ModelSpec)`` for a ``.keras`` file, a published
    ``.h5`` file or a published-weights registry name (``imdb``, ...)."""
    from ssrnet_tf import model_spec, pretrained  # pylint: disable=import-outside-toplevel

    if str(name_or_path).endswith(".keras"):
        model, spec = model_spec.load_keras(name_or_path)
        return model, spec or model_spec.ModelSpec.for_model(model)
    model = pretrained.load_pretrained(name_or_path, weights_dir=weights_dir or os.environ.get(WEIGHTS_DIR_ENV))
    spec = model_spec.ModelSpec.for_model(
        model,
        architecture="ssrnet(3,3,3)",
        alignment="none",  # the original SSR-Net demo: MTCNN box grown by 40 % per side
        margin=0.4,
        training_data=f"published SSR-Net weights: {pathlib.Path(str(name_or_path)).stem}",
    )
    return model, spec
