"""Weights a run starts from (fine-tuning): published SSR-Net files or our own models.

``model.initial_weights`` in an experiment config names them:

* a published SSR-Net registry name (``"imdb"``, ``"wiki"``, ...) or one of
  the published Keras 2 ``.h5`` files, mapped onto our SSR-Net by
  :func:`ssrnet_tf.pretrained.reference_layer_map` (the model must be an
  SSR-Net(3,3,3) at 64 px);
* a ``.keras`` or ``.weights.h5`` file saved by this package from a model of
  the same architecture (weights matched by layer name; a shape mismatch is
  an error naming the layer).
"""

from __future__ import annotations

import os
from typing import Optional

#: Environment variable naming a folder of published ``.h5`` files.
WEIGHTS_DIR_ENV = "SSRNET_TF_WEIGHTS_DIR"


def load_initial_weights(model, source: str, weights_dir: Optional[str] = None) -> str:
    """Loads ``source`` into ``model`` in place.

    Args:
        model: The freshly built ``keras.Model``.
        source: A published registry name or a weights/model file path.
        weights_dir: Folder of published files searched first (default
            ``$SSRNET_TF_WEIGHTS_DIR``).

    Returns:
        The file the weights came from.

    Raises:
        FileNotFoundError: If ``source`` is neither a registry name nor a file.
        ValueError: If the file does not fit the model (naming file and layer).
    """
    from ssrnet_tf import pretrained  # pylint: disable=import-outside-toplevel

    try:
        path = pretrained.resolve_weights(source, weights_dir=weights_dir or os.environ.get(WEIGHTS_DIR_ENV))
    except FileNotFoundError as error:
        raise FileNotFoundError(f"model.initial_weights: {error}") from None
    if path.suffix == ".h5" and not path.name.endswith(".weights.h5"):
        num_stages = sum(1 for layer in model.layers if layer.name.endswith("_probabilities"))
        pretrained.load_keras2_weights(model, path, pretrained.reference_layer_map(num_stages))
    else:
        try:
            model.load_weights(path)
        except ValueError as error:
            raise ValueError(f"{path}: does not fit the model being trained ({error}).") from None
    return str(path)
