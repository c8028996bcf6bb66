"""Tests of the SSR-Net functional model."""

import numpy as np
import pytest

import keras

from ssrnet_tf.layers import SoftStagewiseRegression
from ssrnet_tf.models import build_ssrnet

import model_checks  # pylint: disable=wrong-import-order  # tests/ is on sys.path


def random_faces(n=4, seed=0, size=64):
    return model_checks.random_faces(n, size, seed)


def with_random_weights(model, seed=0):
    """Random weights, with batch norm calibrated so that ages spread out.

    Kernels are drawn with a fan-in scale, the stage distributions get a
    positive bias, and each batch-norm layer's moving statistics are set to
    the statistics of its input on random faces (what training would do).
    """
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            kernel, bias = layer.get_weights()
            fan_in = int(np.prod(kernel.shape[:-1]))
            bias_low = 0.5 if layer.name.endswith("_probabilities") else -0.1
            layer.set_weights([
                rng.normal(0, 1.5 / np.sqrt(fan_in), kernel.shape).astype("float32"),
                rng.uniform(bias_low, bias_low + 0.2, bias.shape).astype("float32"),
            ])
    faces = random_faces(16, seed=seed + 1)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            features = keras.Model(model.input, layer.input).predict(faces, verbose=0)
            gamma, beta = layer.get_weights()[:2]
            layer.set_weights([gamma, beta, features.mean(axis=(0, 1, 2)), features.var(axis=(0, 1, 2))])
    return model


def test_reference_configuration_has_40915_parameters():
    assert build_ssrnet().count_params() == 40915


def test_has_no_lambda_layer_and_uses_the_registered_layer():
    model = build_ssrnet()
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in model.layers)
    assert isinstance(model.get_layer("age"), SoftStagewiseRegression)


@pytest.mark.parametrize(
    "stage_bins", [(5,), (4, 2), (3, 3, 3), (2, 5, 3), (3, 2, 4, 6)], ids=str
)
@pytest.mark.parametrize("stage_activation", ["relu", "softmax"])
def test_forward_pass_for_one_to_four_stages(stage_bins, stage_activation):
    model = build_ssrnet(stage_bins=stage_bins, stage_activation=stage_activation)
    ages = model.predict(random_faces(), verbose=0)["age"]
    assert ages.shape == (4, 1)
    assert np.all(np.isfinite(ages)) and np.all(ages >= 0)


def test_softmax_stage_distributions_sum_to_one():
    model = build_ssrnet(stage_activation="softmax")
    probe = keras.Model(model.input, model.get_layer("stage2_probabilities").output)
    sums = probe.predict(random_faces(), verbose=0).sum(axis=-1)
    np.testing.assert_allclose(sums, 1.0, rtol=1e-5)


def test_other_input_sizes_and_widths():
    model = build_ssrnet(input_shape=(96, 80, 3), stream_widths=(16, 8), stage_bins=(4, 4))
    assert model.predict(random_faces(2, size=96)[:, :, :80], verbose=0)["age"].shape == (2, 1)


def test_get_config_from_config_gives_identical_outputs():
    model = with_random_weights(build_ssrnet(stage_bins=(4, 2, 3)))
    model_checks.run_serialization_test(model, random_faces(), clone_weights=True)


def test_keras_save_load_gives_identical_outputs(tmp_path):
    model_checks.run_model_saving_test(with_random_weights(build_ssrnet()), random_faces(), tmp_path)


def test_tflite_float32_matches_keras(tmp_path):
    model = with_random_weights(build_ssrnet(stage_bins=(3, 2, 4)))
    faces = random_faces(8)
    keras_ages = model.predict(faces, verbose=0)["age"]
    assert keras_ages.std() > 1.0, "random weights should give a spread of ages"
    model_checks.run_litert_export_test(model, faces, rtol=0.0, atol=1e-4, path=tmp_path / "ssrnet.tflite")


def test_backbone_exposes_every_block_and_the_head_taps_them():
    from ssrnet_tf import heads
    from ssrnet_tf.models import build_ssrnet_backbone

    backbone = build_ssrnet_backbone((64, 64, 3), (32, 16))
    shapes = {name: tuple(tensor.shape[1:]) for name, tensor in backbone.output.items()}
    assert shapes["stream1_block1"] == (31, 31, 32) and shapes["stream2_block4"] == (4, 4, 16)
    assert len(shapes) == 8
    head = heads.SSRNetHead(stage_bins=(4, 2), stage_levels=(3, 1))
    outputs = head.build_outputs(backbone.output)
    assert set(outputs) == {"age"} and head.is_age_head and head.takes_feature_maps
    assert heads.SSRNetHead.from_config(head.get_config()).get_config() == head.get_config()
    with pytest.raises(ValueError, match="stream1_block3"):
        head.build_outputs({"stream1_block1": backbone.output["stream1_block1"]})
    with pytest.raises(ValueError, match="stage_bins"):
        heads.SSRNetHead(stage_bins=(3, 0))


def test_single_output_keras_files_load_as_dict_output_models(tmp_path):
    """``.keras`` files saved before dict outputs (bare age tensor) load with the same ages."""
    from ssrnet_tf import model_spec

    model = with_random_weights(build_ssrnet(stage_bins=(4, 2), stage_levels=(3, 1), stream_widths=(16, 8)))
    old_format = keras.Model(model.input, model.output["age"], name="ssrnet")
    path = model_spec.save_keras(old_format, tmp_path / "old.keras", model_spec.ModelSpec(outputs={"age": ""}))
    loaded, spec = model_spec.load_keras(path)
    assert spec.outputs == {"age": ""}
    faces = random_faces()
    assert set(loaded.output) == {"age"}
    np.testing.assert_array_equal(loaded.predict(faces, verbose=0)["age"], old_format.predict(faces, verbose=0))
