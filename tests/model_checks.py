"""Shared checks of layer, head and model tests (as keras-hub's ``TestCase`` helpers).

Every check compares outputs whether the model returns one array or a dict
of named outputs. ``tests/`` is on ``sys.path`` (rootdir conftest), so tests
``import model_checks``.
"""

from __future__ import annotations

import keras
import numpy as np

from ssrnet_tf import model_spec
from ssrnet_tf.export import TFLiteModel, calibration, convert_to_tflite


def random_faces(n: int = 4, size: int = 64, seed: int = 0) -> np.ndarray:
    """Uniform noise images ``(n, size, size, 3)`` in 0-255, float32."""
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


def drawn_faces(n: int = 16, size: int = 64) -> np.ndarray:
    """Drawn faces (:func:`ssrnet_tf.faces.synthetic_face`) ``(n, size, size, 3)``, float32."""
    return calibration.drawn_faces(size, n)


def as_dict(outputs) -> dict:
    """Model outputs as ``{name: array}`` (a single array is ``"age"``)."""
    if isinstance(outputs, dict):
        return {name: keras.ops.convert_to_numpy(value) for name, value in outputs.items()}
    return {"age": keras.ops.convert_to_numpy(outputs)}


def assert_outputs_close(got, expected, *, rtol: float = 0.0, atol: float = 0.0) -> None:
    """Same output names, values within ``rtol``/``atol`` (exactly equal by default)."""
    got, expected = as_dict(got), as_dict(expected)
    assert set(got) == set(expected), (sorted(got), sorted(expected))
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, rtol=rtol, atol=atol, err_msg=name)


def run_serialization_test(layer_or_model, inputs, *, clone_weights: bool = False):
    """``from_config(get_config())`` gives the same config and the same outputs.

    Args:
        layer_or_model: A layer or a functional model.
        inputs: What it is called on.
        clone_weights: Copy the weights into the clone (models, layers with weights).

    Returns:
        The clone.
    """
    clone = type(layer_or_model).from_config(layer_or_model.get_config())
    if clone_weights:
        clone.set_weights(layer_or_model.get_weights())
    if not isinstance(layer_or_model, keras.Model):
        assert clone.get_config() == layer_or_model.get_config()
    assert_outputs_close(clone(inputs), layer_or_model(inputs))
    return clone


def run_model_saving_test(model, inputs, tmp_path, *, spec=None):
    """``.keras`` save and load (with a spec, no ``custom_objects``) gives identical outputs.

    Returns:
        The loaded model.
    """
    spec = spec or model_spec.ModelSpec()
    path = model_spec.save_keras(model, tmp_path / "model.keras", spec)
    loaded, loaded_spec = model_spec.load_keras(path)
    assert loaded_spec == spec
    assert_outputs_close(loaded.predict(inputs, verbose=0), model.predict(inputs, verbose=0))
    return loaded


def run_litert_export_test(model, inputs, *, rtol: float = 1e-4, atol: float = 1e-4, path=None) -> TFLiteModel:
    """A float32 ``.tflite`` of ``model`` gives every output, by name, close to Keras'.

    ``atol`` is scaled by each output's largest magnitude (ages are ~100,
    probabilities ~1).

    Returns:
        The TFLite runner.
    """
    runner = TFLiteModel(convert_to_tflite(model, path))
    expected = as_dict(model.predict(inputs, verbose=0))
    got = runner.predict_outputs(inputs)
    assert set(got) == set(expected), (sorted(got), sorted(expected))
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, rtol=rtol, atol=atol * max(1.0, float(np.abs(value).max())),
                                   err_msg=name)
    return runner
