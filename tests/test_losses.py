"""Tests of the masked cross-entropy used for partially labelled tasks."""

import numpy as np
import pytest
import tensorflow as tf

import keras

from ssrnet_tf.losses import MaskedSparseCategoricalCrossentropy

PROBABILITIES = np.array([[0.5, 0.5], [0.2, 0.8], [0.9, 0.1], [0.3, 0.7]], dtype=np.float32)


def manual_masked_mean(labels, probabilities, weights=None):
    labels = np.asarray(labels)
    valid = labels != -1
    if not valid.any():
        return 0.0
    weights = np.ones(len(labels)) if weights is None else np.asarray(weights, dtype=np.float64)
    ce = -np.log(probabilities[valid, labels[valid]].astype(np.float64))
    return float(np.sum(ce * weights[valid]) / valid.sum())


@pytest.mark.parametrize("labels", [[0, 1, 0, 1], [0, -1, -1, 1], [-1, 1, -1, -1], [-1, -1, -1, -1]])
def test_mean_over_labelled_samples(labels):
    loss = MaskedSparseCategoricalCrossentropy()
    got = float(loss(np.array(labels), PROBABILITIES))
    assert got == pytest.approx(manual_masked_mean(labels, PROBABILITIES), rel=1e-5, abs=1e-7)


def test_column_labels_and_sample_weights():
    labels = np.array([[0], [1], [-1], [1]])
    weights = np.array([2.0, 1.0, 5.0, 0.5], dtype=np.float32)
    got = float(MaskedSparseCategoricalCrossentropy()(labels, PROBABILITIES, sample_weight=weights))
    assert got == pytest.approx(manual_masked_mean(labels[:, 0], PROBABILITIES, weights), rel=1e-5)


def test_sum_reduction_and_logits():
    labels = np.array([0, -1, 1, -1])
    summed = MaskedSparseCategoricalCrossentropy(reduction="sum")(labels, PROBABILITIES)
    assert float(summed) == pytest.approx(-np.log(0.5) - np.log(0.1), rel=1e-5)
    logits = np.log(PROBABILITIES)
    from_logits = MaskedSparseCategoricalCrossentropy(from_logits=True)(labels, logits)
    assert float(from_logits) == pytest.approx(manual_masked_mean(labels, PROBABILITIES), rel=1e-5)


def test_all_missing_gives_zero_loss_and_finite_zero_gradients():
    loss = MaskedSparseCategoricalCrossentropy()
    logits = tf.Variable(np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32))
    for labels in (np.full(4, -1), np.array([-1, 3, -1, -1])):
        with tf.GradientTape() as tape:
            value = loss(labels, tf.nn.softmax(logits))
        gradient = tape.gradient(value, logits).numpy()
        assert np.isfinite(float(value)) and np.all(np.isfinite(gradient))
        np.testing.assert_array_equal(gradient[labels == -1], 0.0)
    assert float(loss(np.full(4, -1), tf.nn.softmax(logits))) == 0.0


def test_masking_inside_compiled_model():
    inputs = keras.Input((3,))
    outputs = keras.layers.Dense(2, activation="softmax", name="race")(inputs)
    model = keras.Model(inputs, {"race": outputs})
    model.compile(optimizer="sgd", loss={"race": MaskedSparseCategoricalCrossentropy()})
    x = np.random.default_rng(1).normal(size=(8, 3)).astype(np.float32)
    labels = np.array([0, -1, 1, -1, -1, 0, -1, -1])
    probabilities = model.predict(x, verbose=0)["race"]
    got = model.evaluate(x, {"race": labels}, batch_size=8, verbose=0)
    got = got[0] if isinstance(got, list) else got
    assert got == pytest.approx(manual_masked_mean(labels, probabilities), rel=1e-4)
    assert model.evaluate(x, {"race": np.full(8, -1)}, batch_size=8, verbose=0) == pytest.approx(0.0)


def test_config_round_trip_and_validation():
    loss = MaskedSparseCategoricalCrossentropy(ignore_label=255, from_logits=True, name="race_ce")
    config = keras.saving.serialize_keras_object(loss)
    restored = keras.saving.deserialize_keras_object(config)
    assert isinstance(restored, MaskedSparseCategoricalCrossentropy)
    assert (restored.ignore_label, restored.from_logits, restored.name) == (255, True, "race_ce")
    with pytest.raises(ValueError, match="ignore_label"):
        MaskedSparseCategoricalCrossentropy(ignore_label=0.5)
