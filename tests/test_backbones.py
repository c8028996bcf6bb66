"""Keras Applications backbones: registry, in-model preprocessing, errors."""

import numpy as np
import pytest

import keras

from ssrnet_tf.layers.pixel_normalization import PixelNormalization, pixel_normalization_for
from ssrnet_tf.models.backbones import BACKBONES, build_backbone

import model_checks  # pylint: disable=wrong-import-order  # tests/ is on sys.path

#: keras.applications modules whose preprocess_input each mode reproduces.
MODES = {
    "tf": keras.applications.mobilenet_v2.preprocess_input,
    "caffe": keras.applications.resnet50.preprocess_input,
    "torch": keras.applications.densenet.preprocess_input,
    "rgb": lambda x: x,
}


@pytest.mark.parametrize("mode", sorted(MODES))
def test_pixel_normalization_matches_keras_preprocess_input(mode):
    rgb = np.random.default_rng(0).uniform(0, 255, (2, 5, 5, 3)).astype("float32")
    bgr = rgb[..., ::-1].copy()
    ours = keras.ops.convert_to_numpy(pixel_normalization_for(mode)(bgr))
    np.testing.assert_allclose(ours, MODES[mode](rgb.copy()), rtol=1e-5, atol=1e-4)


def test_pixel_normalization_round_trips_config():
    layer = pixel_normalization_for("torch")
    assert isinstance(model_checks.run_serialization_test(layer, np.full((1, 2, 2, 3), 100.0, "float32")),
                      PixelNormalization)
    with pytest.raises(ValueError, match="unknown preprocessing mode"):
        pixel_normalization_for("yuv")


def test_registry_has_the_required_families():
    required = {"mobilenet", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "resnet50",
                "densenet121", "vgg16"} | {f"efficientnet_b{i}" for i in range(4)} | {f"efficientnet_v2_b{i}" for i in range(4)}
    assert required <= set(BACKBONES)


def test_unknown_backbone_lists_valid_names():
    with pytest.raises(ValueError, match="mobilenet_v2.*resnet50|valid backbones"):
        build_backbone("resnet51", 32, weights=None)


def test_alpha_only_where_the_family_has_one():
    with pytest.raises(ValueError, match="alpha"):
        build_backbone("resnet50", 32, alpha=0.5, weights=None)
    model = build_backbone("mobilenet_v2", 32, alpha=0.35, weights=None)
    assert model.output_shape == (None, 1280)


def test_input_size_is_checked():
    with pytest.raises(ValueError, match="input_size"):
        build_backbone("mobilenet", 16, weights=None)


def test_batch_norm_momentum_is_set_on_every_batch_norm_and_checked():
    backbone = build_backbone("mobilenet_v2", 64, alpha=0.35, weights=None, batch_norm_momentum=0.9)
    application = next(layer for layer in backbone.layers if isinstance(layer, keras.Model))
    momenta = {layer.momentum for layer in application.layers if isinstance(layer, keras.layers.BatchNormalization)}
    assert momenta == {0.9}
    # From scratch (weights=None) the default follows the weights within ~100 steps.
    default = build_backbone("mobilenet_v2", 64, alpha=0.35, weights=None)
    application = next(layer for layer in default.layers if isinstance(layer, keras.Model))
    assert {l.momentum for l in application.layers if isinstance(l, keras.layers.BatchNormalization)} == {0.99}
    with pytest.raises(ValueError, match="batch_norm_momentum"):
        build_backbone("mobilenet_v2", 64, alpha=0.35, weights=None, batch_norm_momentum=1.5)


def test_minimalistic_mobilenet_v3_has_only_relu_and_no_squeeze_excite():
    """The variant the shipped compact model uses: no hard-swish and no SE, the ops that made int8 files fragile."""
    def layer_types(name):
        application = next(l for l in build_backbone(name, 32, weights=None).layers if hasattr(l, "layers"))
        return {type(layer).__name__ for layer in application.layers}

    assert {"Multiply", "Activation"} <= layer_types("mobilenet_v3_small")
    minimalistic = layer_types("mobilenet_v3_small_minimalistic")
    assert "ReLU" in minimalistic and not {"Multiply", "Activation"} & minimalistic
