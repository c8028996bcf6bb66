"""Precise BN: moving statistics become the mean of the batches' statistics."""

import keras
import numpy as np

from ssrnet_tf.training import precise_batch_norm


def _model():
    inputs = keras.Input((4, 4, 2))
    x = keras.layers.Conv2D(3, 1, use_bias=False, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn", momentum=0.999)(x)
    inner = keras.Model(inputs, x, name="inner")  # nested, like a Keras Applications backbone
    outer_in = keras.Input((4, 4, 2))
    y = keras.layers.BatchNormalization(name="frozen_bn")(inner(outer_in))
    return keras.Model(outer_in, y)


def test_recalibration_sets_the_mean_of_batch_statistics_and_restores_momentum():
    model = _model()
    model.get_layer("frozen_bn").trainable = False
    frozen_before = [w.numpy().copy() for w in model.get_layer("frozen_bn").weights]
    rng = np.random.default_rng(0)
    batches = [rng.normal(loc=i, scale=1.0 + i, size=(8, 4, 4, 2)).astype("float32") for i in range(3)]
    assert precise_batch_norm.recalibrate_batch_norm(model, batches) == 3

    kernel = model.get_layer("inner").get_layer("conv").kernel.numpy()[0, 0]  # (2, 3)
    features = [b.reshape(-1, 2) @ kernel for b in batches]
    bn = model.get_layer("inner").get_layer("bn")
    np.testing.assert_allclose(bn.moving_mean.numpy(), np.mean([f.mean(0) for f in features], 0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), np.mean([f.var(0) for f in features], 0), rtol=1e-3)
    assert bn.momentum == 0.999
    for before, after in zip(frozen_before, model.get_layer("frozen_bn").weights):
        np.testing.assert_array_equal(before, after.numpy())  # frozen layers keep their statistics


def test_callback_recalibrates_once_per_epoch_before_validation():
    model = _model()
    batch = np.full((8, 4, 4, 2), 5.0, "float32")
    callback = precise_batch_norm.PreciseBatchNormCallback([batch])
    callback.set_model(model)
    callback.on_epoch_begin(0)
    callback.on_test_begin()
    bn = model.get_layer("inner").get_layer("bn")
    expected = bn.moving_mean.numpy().copy()
    np.testing.assert_allclose(expected, (batch.reshape(-1, 2) @ model.get_layer("inner").get_layer("conv").kernel.numpy()[0, 0]).mean(0), rtol=1e-5)
    bn.moving_mean.assign(np.zeros(3, "float32"))
    callback.on_epoch_end(0)  # already done before validation: not again
    np.testing.assert_array_equal(bn.moving_mean.numpy(), np.zeros(3))
