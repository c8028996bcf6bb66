"""The SE-ResNeXt LDL report's multi-task design: gender and ethnicity from an early block, concatenated into the age layer."""

import keras
import numpy as np
import pytest

from ssrnet_tf import heads
from ssrnet_tf.models import backbones
from ssrnet_tf.models.age_model import build_age_model


def test_early_features_are_the_last_layer_at_an_eighth_of_the_input():
    # ResNet-50's 1/8 stage ends in conv3_block4_out with 512 channels: the report's "512-dimension feature vector".
    application = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(64, 64, 3), pooling="avg")
    tap = backbones.early_feature_layer(application, 64)
    assert tap.name == "conv3_block4_out" and tuple(tap.output.shape[1:]) == (8, 8, 512)
    model = backbones.build_backbone("mobilenet_v3_small", 64, alpha=0.75, weights=None, early_features=True)
    pooled, early = model.outputs
    assert len(pooled.shape) == 2 and tuple(early.shape[1:3]) == (8, 8)


def test_concatenated_design_feeds_gender_and_race_scores_into_the_age_layer():
    """'The output of these two FC layers and the output of the last average pooling layer are then concatenated'."""
    task = build_age_model("mobilenet_v3_small", heads.build_head("label_distribution"),
                           [heads.build_head("multi_task", design="concatenated")], input_size=64, alpha=0.75,
                           weights=None)
    model = task.model
    pooled_width = model.get_layer("mobilenet_v3_small_backbone").outputs[0].shape[-1]
    joined = model.get_layer("age_features")
    assert joined.output.shape[-1] == pooled_width + 2 + 5  # the report: 2048 + 2 + 5 = 2055
    early_pool = model.get_layer("multi_task_early_pool")
    assert model.get_layer("multi_task_gender_fc").input.shape[-1] == early_pool.output.shape[-1]
    outputs = model(np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32"))
    assert outputs["gender"].shape == (2, 2) and outputs["race"].shape == (2, 5) and outputs["age"].shape == (2, 1)
    np.testing.assert_allclose(np.sum(outputs["race"], axis=1), 1.0, rtol=1e-5)
    task.compile("adam")  # same losses and targets as the parallel design
    targets = task.encode_targets({"age": np.array([20.0, 40.0]), "gender": np.array([0, 1]), "race": np.array([1, -1])})
    assert set(targets) >= {"gender", "race", "age_distribution"}


def test_parallel_design_is_unchanged_and_designs_are_checked():
    task = build_age_model("mobilenet_v3_small", heads.build_head("dex"), [heads.build_head("multi_task")],
                           input_size=64, alpha=0.75, weights=None)
    assert "age_features" not in [layer.name for layer in task.model.layers]
    assert task.model.get_layer("multi_task_gender").activation.__name__ == "softmax"
    with pytest.raises(ValueError, match="design must be one of"):
        heads.build_head("multi_task", design="stacked")
    assert heads.build_head("multi_task", design="concatenated").get_config()["design"] == "concatenated"
