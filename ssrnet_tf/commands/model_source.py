"""Kept for ``export/qat_ssrnet.py`` until the QAT scripts move to the one loader.

New code calls :func:`ssrnet_tf.faces.age_predictor.load_age_model`.
"""

from __future__ import annotations

import os

from ssrnet_tf.commands.common import WEIGHTS_DIR_ENV


def load_model_and_spec(name_or_path: str, weights_dir=None):
    """``(keras_model, ModelSpec)`` of :func:`ssrnet_tf.faces.age_predictor.load_age_model`."""
    from ssrnet_tf.faces.age_predictor import load_age_model  # pylint: disable=import-outside-toplevel

    model = load_age_model(name_or_path, weights_dir=weights_dir or os.environ.get(WEIGHTS_DIR_ENV))
    return model.require_keras("train it"), model.spec
