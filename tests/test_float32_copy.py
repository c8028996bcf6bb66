"""ssrnet_tf.models.float32_copy: mixed-precision models become exportable."""

import numpy as np
import pytest

import keras

from ssrnet_tf import cli, heads, model_spec
from ssrnet_tf.models import build_ssrnet
from ssrnet_tf.models.age_model import build_age_model
from ssrnet_tf.models.float32_copy import float32_copy


def _layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _layers(layer)


@pytest.fixture(name="mixed_policy")
def _mixed_policy():
    keras.mixed_precision.set_global_policy("mixed_float16")
    yield
    keras.mixed_precision.set_global_policy("float32")


def _faces(size):
    return np.random.default_rng(0).uniform(0, 255, (4, size, size, 3)).astype("float32")


def test_float32_model_is_returned_as_is():
    model = build_ssrnet()
    assert float32_copy(model) is model


def test_mixed_ssrnet_is_rebuilt_in_float32_with_its_weights(mixed_policy):
    model = build_ssrnet()
    assert any(layer.dtype_policy.name == "mixed_float16" for layer in model.layers)
    copy = float32_copy(model)
    assert keras.mixed_precision.global_policy().name == "mixed_float16"  # restored
    assert {layer.dtype_policy.name for layer in _layers(copy)} == {"float32"}
    assert [layer.name for layer in copy.layers] == [layer.name for layer in model.layers]
    keras.mixed_precision.set_global_policy("float32")
    reference = build_ssrnet()  # the same weights in a float32 model
    reference.set_weights(model.get_weights())
    x = _faces(64)
    np.testing.assert_allclose(copy.predict(x, verbose=0)["age"], reference.predict(x, verbose=0)["age"], rtol=1e-5, atol=1e-4)


def test_mixed_backbone_with_head_is_rebuilt_in_float32(mixed_policy):
    task = build_age_model("mobilenet_v3_small", heads.build_head("label_distribution"), input_size=32, weights=None)
    copy = float32_copy(task.model)
    assert {layer.dtype_policy.name for layer in _layers(copy)} == {"float32"}
    keras.mixed_precision.set_global_policy("float32")
    reference = build_age_model("mobilenet_v3_small", heads.build_head("label_distribution"), input_size=32, weights=None)
    reference.model.set_weights(task.model.get_weights())
    x = _faces(32)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(copy(x, training=False)["age"]),
                               keras.ops.convert_to_numpy(reference.model(x, training=False)["age"]), rtol=1e-5, atol=1e-4)


def test_export_command_takes_a_mixed_precision_model(mixed_policy, tmp_path):
    model = build_ssrnet()
    path = model_spec.save_keras(model, tmp_path / "mixed.keras", model_spec.ModelSpec.for_model(model))
    keras.mixed_precision.set_global_policy("float32")  # a fresh process: the policy is in the file
    assert cli.main(["export", str(path), "--out", str(tmp_path / "m.tflite")]) == 0
    assert (tmp_path / "m.tflite").stat().st_size > 0
