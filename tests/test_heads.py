"""Tests of the age, age-group and multi-task heads on a tiny trunk."""

import numpy as np
import pytest
import tensorflow as tf

import keras

from ssrnet_tf import heads
from ssrnet_tf.layers import ArgMaxValue
from ssrnet_tf.heads import encodings

import model_checks  # pylint: disable=wrong-import-order  # tests/ is on sys.path

FEATURES = 16
SAMPLES = 48


def labels(seed=0, samples=SAMPLES):
    rng = np.random.default_rng(seed)
    return {
        "age": rng.uniform(0, 116, samples).astype(np.float32),
        "gender": rng.integers(-1, 2, samples),
        "race": rng.integers(-1, 5, samples),
    }


def inputs(seed=0, samples=SAMPLES):
    return np.random.default_rng(seed + 100).normal(size=(samples, FEATURES)).astype(np.float32)


def build_model(head_list):
    """keras.Input((16,)) -> Dense(32, relu) -> heads, as the assembly does."""
    heads.validate_heads(head_list)
    image = keras.Input((FEATURES,), name="features_in")
    features = keras.layers.Dense(32, activation="relu", name="trunk")(image)
    outputs = {}
    for head in head_list:
        outputs.update(head.build_outputs(features))
    return keras.Model(image, outputs)


def compile_and_fit(model, head_list, steps=3):
    losses, weights, metrics, targets = {}, {}, {}, {}
    batch = labels()
    for head in head_list:
        losses.update(head.losses())
        weights.update(head.loss_weights())
        metrics.update(head.metrics())
        targets.update(head.encode_targets(batch))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=losses, loss_weights=weights, metrics=metrics)
    history = model.fit(inputs(), targets, batch_size=SAMPLES // steps, epochs=1, verbose=0)
    return history.history


AGE_HEADS = {
    "multi_granularity": heads.MultiGranularityHead,
    "label_distribution": heads.LabelDistributionHead,
    "regression": heads.RegressionHead,
    "dex": heads.DEXHead,
}
#: Test settings of registered heads (the others: their defaults).
HEAD_KWARGS = {"regression": {"loss": "mse"}, "age_group": {"boundaries": "3_groups"}}
#: One head of every kind in the registry.
ALL_HEADS = [cls(**HEAD_KWARGS.get(key, {})) for key, cls in sorted(heads.HEADS.items())]


def model_heads(head):
    """An age head alone, or an auxiliary head next to a regression head."""
    return [head] if head.is_age_head else [heads.RegressionHead(), head]


@pytest.mark.parametrize("head", ALL_HEADS, ids=lambda head: head.name)
def test_head_trains_saves_and_exports(head, tmp_path):
    head_list = model_heads(head)
    model = build_model(head_list)
    x = inputs(seed=3, samples=5)

    # Forward: every declared output, "age" in years of shape (N, 1).
    outputs = model.predict(x, verbose=0)
    assert set(outputs) == set(heads.validate_heads(head_list))
    assert set(head.output_names) <= set(outputs)
    assert outputs["age"].shape == (5, 1)
    for name, value in outputs.items():
        if value.shape[-1] > 1:  # Softmax branches are distributions.
            np.testing.assert_allclose(value.sum(axis=-1), 1.0, rtol=1e-5)

    # Targets cover exactly the loss keys; the losses' weights match.
    targets = head.encode_targets(labels())
    assert set(targets) == set(head.losses()) == set(head.loss_weights())
    assert set(head.losses()) <= set(head.output_names)
    history = compile_and_fit(model, head_list)
    assert all(np.isfinite(values[-1]) for values in history.values())
    if len(outputs) > 1:  # Keras drops the output-name prefixes of a single-output model.
        for name in head.losses():
            assert f"{name}_loss" in history
        if head.is_age_head:
            assert "age_mae" in history

    # .keras round trip, no custom_objects; TFLite float32: every output, by name.
    model_checks.run_model_saving_test(model, x, tmp_path)
    model_checks.run_litert_export_test(model, x, atol=1e-5)


def test_no_lambda_layers_in_any_head():
    model = build_model([heads.MultiGranularityHead(inference_branch="regression"), heads.MultiTaskHead()])
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in model.layers)


def test_combined_heads_have_distinct_outputs_and_train():
    head_list = [
        heads.MultiGranularityHead(),
        heads.MultiTaskHead(),
        heads.AgeGroupHead("5_groups"),
        heads.AgeGroupHead("10_groups", output_name="age_group10", name="age_group10"),
    ]
    names = heads.validate_heads(head_list)
    assert len(names) == len(set(names)) == 10
    model = build_model(head_list)
    assert set(model.predict(inputs(samples=2), verbose=0)) == set(names)
    history = compile_and_fit(model, head_list)
    for name in ("age_g1_loss", "age_regression_loss", "gender_loss", "race_loss", "age_group_loss",
                 "age_group10_loss", "age_mae", "age_group_accuracy"):
        assert name in history and np.isfinite(history[name][-1]), name


def test_validate_heads_rejects_bad_combinations():
    with pytest.raises(ValueError, match="exactly one age head"):
        heads.validate_heads([heads.DEXHead(), heads.RegressionHead()])
    with pytest.raises(ValueError, match="exactly one age head"):
        heads.validate_heads([heads.MultiTaskHead()])
    with pytest.raises(ValueError, match="'age_group'"):
        heads.validate_heads([heads.DEXHead(), heads.AgeGroupHead(), heads.AgeGroupHead(name="other")])
    with pytest.raises(ValueError, match="unique"):
        heads.validate_heads([heads.DEXHead(), heads.AgeGroupHead(), heads.AgeGroupHead()])


def test_multi_task_all_missing_race_gives_zero_loss_and_finite_gradients():
    head_list = [heads.RegressionHead(), heads.MultiTaskHead()]
    model = build_model(head_list)
    batch = {"age": np.full(8, 30.0), "gender": np.array([0, 1, -1, 0, 1, 1, 0, -1]), "race": np.full(8, -1)}
    targets = {}
    for head in head_list:
        targets.update(head.encode_targets(batch))
    losses = head_list[1].losses()
    x = inputs(samples=8)
    with tf.GradientTape() as tape:
        outputs = model(x, training=True)
        race = losses["race"](targets["race"], outputs["race"])
        gender = losses["gender"](targets["gender"], outputs["gender"])
        total = race + gender
    gradients = tape.gradient(total, model.trainable_variables)
    assert float(race) == 0.0 and float(gender) > 0.0
    assert all(np.all(np.isfinite(g.numpy())) for g in gradients if g is not None)
    # The race layer gets exactly zero gradient from a batch without race labels.
    race_kernel = model.get_layer("multi_task_race").kernel
    index = [v.path for v in model.trainable_variables].index(race_kernel.path)
    np.testing.assert_array_equal(gradients[index].numpy(), 0.0)

    # In fit(), the same batch gives race_loss == 0 and finite weights.
    model.compile(optimizer="adam", loss={**head_list[0].losses(), **losses},
                  loss_weights={**head_list[0].loss_weights(), **head_list[1].loss_weights()})
    history = model.fit(x, targets, batch_size=8, epochs=1, verbose=0).history
    assert history["race_loss"][-1] == 0.0
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())


def test_multi_task_missing_label_arrays_are_masked():
    targets = heads.MultiTaskHead().encode_targets({"age": np.array([20.0, 30.0]), "gender": np.array([1, 0])})
    assert targets["gender"].tolist() == [1, 0] and targets["race"].tolist() == [-1, -1]
    with pytest.raises(ValueError, match="race"):
        heads.MultiTaskHead().encode_targets({"age": np.array([20.0]), "race": np.array([7])})
    only_gender = heads.MultiTaskHead(tasks=("gender",))
    assert only_gender.output_names == ("gender",) and set(only_gender.losses()) == {"gender"}


@pytest.mark.parametrize("branch", ["expectation", "regression", 5, 20])
def test_multi_granularity_inference_branch(branch):
    head = heads.MultiGranularityHead(inference_branch=branch)
    model = build_model([head])
    outputs = model.predict(inputs(samples=4), verbose=0)
    assert [outputs[f"age_g{g}"].shape[1] for g in (1, 5, 10, 20)] == [100, 20, 10, 5]
    if branch == "regression":
        want = outputs["age_regression"]
    else:
        granularity = 1 if branch == "expectation" else branch
        want = outputs[f"age_g{granularity}"] @ encodings.class_centers(granularity)[:, None]
    np.testing.assert_allclose(outputs["age"], want, rtol=1e-5)


def test_multi_granularity_targets_and_weights():
    head = heads.MultiGranularityHead(granularities=(1, 5, 10, 20), regression_weight=1.0, regression_scale=10.0)
    targets = head.encode_targets({"age": np.array([44.0, 100.0, 116.0, 0.0])})
    # Paper indexing (Fig. 2): 44 is the 43rd one-year class, the 8th, 4th and 2nd coarser one.
    assert targets["age_g1"].tolist() == [43, 99, 99, 0]
    assert targets["age_g5"].tolist() == [8, 19, 19, 0]
    assert targets["age_g10"].tolist() == [4, 9, 9, 0]
    assert targets["age_g20"].tolist() == [2, 4, 4, 0]
    np.testing.assert_array_equal(targets["age_regression"][:, 0], [44, 100, 116, 0])
    # lambda = 1 weighs the MSE in squared years, the paper's eq. 1.
    assert head.loss_weights() == {"age": 0.0, "age_g1": 1.0, "age_g5": 1.0, "age_g10": 1.0, "age_g20": 1.0,
                                   "age_regression": 1.0}
    assert heads.MultiGranularityHead(class_indexing="floor").encode_targets(
        {"age": np.array([44.0])})["age_g1"].tolist() == [44]
    no_regression = heads.MultiGranularityHead(granularities=(2, 7), use_regression=False)
    assert no_regression.output_names == ("age", "age_g2", "age_g7")
    with pytest.raises(ValueError, match="inference_branch"):
        heads.MultiGranularityHead(inference_branch=3)
    with pytest.raises(ValueError, match="use_regression"):
        heads.MultiGranularityHead(use_regression=False, inference_branch="regression")
    with pytest.raises(ValueError, match="distinct"):
        heads.MultiGranularityHead(granularities=(5, 5))


def test_label_distribution_and_dex_expectation():
    for head, branch in ((heads.LabelDistributionHead(), "age_distribution"), (heads.DEXHead(), "age_classes")):
        outputs = build_model([head]).predict(inputs(samples=4), verbose=0)
        assert outputs[branch].shape == (4, 101)
        np.testing.assert_allclose(outputs["age"][:, 0], outputs[branch] @ np.arange(101.0), rtol=1e-5)
    targets = heads.LabelDistributionHead(sigma=3.0).encode_targets({"age": np.array([44.0, 116.0])})
    np.testing.assert_allclose(targets["age_distribution"], encodings.gaussian_label_distribution([44, 116], 3.0))
    np.testing.assert_array_equal(targets["age"][:, 0], [44.0, 116.0])
    assert heads.DEXHead().encode_targets({"age": np.array([44.4, 116.0])})["age_classes"].tolist() == [44, 100]


@pytest.mark.parametrize("head", ALL_HEADS, ids=lambda head: head.name)
def test_config_round_trip_and_registry(head):
    config = head.get_config()
    assert type(head).from_config(config).get_config() == config
    key = {cls: key for key, cls in heads.HEADS.items()}[type(head)]
    assert heads.build_head(key, **config).get_config() == config


def test_build_head_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="valid heads: .*multi_granularity"):
        heads.build_head("mystery")


def test_encode_targets_needs_valid_ages():
    with pytest.raises(ValueError, match="'age'"):
        heads.DEXHead().encode_targets({"gender": np.array([0])})
    with pytest.raises(ValueError, match=">= 0"):
        heads.LabelDistributionHead().encode_targets({"age": np.array([-3.0])})


def test_heads_reject_unpooled_features():
    with pytest.raises(ValueError, match=r"\(batch, D\)"):
        heads.DEXHead().build_outputs(keras.Input((4, 4, 8)))


def test_multi_granularity_default_loss_is_the_papers_eq_1():
    # L = sum_g CE_g + lambda * MSE in squared years, lambda = 1 (Age-Granularity-Net eq. 1).
    keras.utils.set_random_seed(0)
    head = heads.MultiGranularityHead()
    model = build_model([head])
    model.compile(optimizer="sgd", loss=head.losses(), loss_weights=head.loss_weights())
    x = inputs(samples=6)
    ages = np.array([1.0, 9.0, 23.0, 44.0, 67.0, 90.0])
    targets = head.encode_targets({"age": ages})
    outputs = model.predict(x, verbose=0)
    expected = sum(
        np.mean(-np.log(outputs[f"age_g{g}"][np.arange(6), targets[f"age_g{g}"]])) for g in (1, 5, 10, 20)
    ) + np.mean((outputs["age_regression"][:, 0] - ages) ** 2)
    got = model.evaluate(x, targets, batch_size=6, verbose=0, return_dict=True)["loss"]
    assert got == pytest.approx(expected, rel=1e-4)


def test_age_group_head_as_the_age_head_of_the_multitask_paper():
    # The paper's model: shared features, age-group + gender + race branches, summed losses.
    head_list = [heads.AgeGroupHead("3_groups", predict_age=True), heads.MultiTaskHead()]
    assert heads.validate_heads(head_list) == ["age", "age_group", "gender", "race"]
    model = build_model(head_list)
    outputs = model.predict(inputs(samples=3), verbose=0)
    np.testing.assert_allclose(outputs["age"][:, 0], outputs["age_group"] @ np.array([13.5, 39.5, 66.5]), rtol=1e-5)
    targets = head_list[0].encode_targets({"age": np.array([26.0, 27.0, 80.0])})
    assert targets["age_group"].tolist() == [0, 1, 2]
    assert head_list[0].loss_weights() == {"age_group": 1.0, "age": 0.0}
    restored = heads.AgeGroupHead.from_config(head_list[0].get_config())
    assert restored.is_age_head and restored.predict_age and not heads.AgeGroupHead().is_age_head


def test_dex_arg_max_is_the_classification_baseline():
    # Same softmax as DEX; the age is the class of highest probability, not the expectation.
    head = heads.DEXHead(min_age=0, max_age=4, prediction="arg_max")
    model = build_model([head])
    outputs = model.predict(inputs(samples=5), verbose=0)
    np.testing.assert_array_equal(outputs["age"][:, 0], np.argmax(outputs["age_classes"], axis=1).astype(np.float32))
    layer = ArgMaxValue([10.0, 20.0, 30.0])
    probabilities = np.array([[0.2, 0.5, 0.3], [0.4, 0.1, 0.5]], np.float32)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(probabilities)), [[20.0], [30.0]])
    assert ArgMaxValue.from_config(layer.get_config()).values == [10.0, 20.0, 30.0]
    assert heads.DEXHead.from_config(head.get_config()).prediction == "arg_max"
    with pytest.raises(ValueError, match="no gradient"):
        heads.DEXHead(prediction="arg_max", age_loss_weight=1.0)
    with pytest.raises(ValueError, match="prediction"):
        heads.DEXHead(prediction="median")
