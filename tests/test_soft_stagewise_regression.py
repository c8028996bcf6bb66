"""Tests of the soft stagewise regression layer (SSR-Net eq. 7)."""

import numpy as np
import pytest

import keras

from ssrnet_tf.layers import SoftStagewiseRegression

import model_checks  # pylint: disable=wrong-import-order  # tests/ is on sys.path


def reference_age(p, delta, eta, bins, lambda_local, lambda_d, age_range):
    """Eq. 7 written out with explicit loops, as in the original Lambda."""
    batch = p[0].shape[0]
    ages = np.zeros(batch)
    for n in range(batch):
        denominator = 1.0
        for k, s_k in enumerate(bins):
            denominator *= s_k * (1.0 + lambda_d * delta[k][n, 0])
            ages[n] += sum(
                p[k][n, i] * (i + lambda_local * eta[k][n, i]) for i in range(s_k)
            ) / denominator
    return age_range * ages


def random_stage_outputs(bins, batch=5, seed=0, delta_low=-0.5):
    rng = np.random.default_rng(seed)
    p = [rng.uniform(0, 1, (batch, s)).astype("float32") for s in bins]
    delta = [rng.uniform(delta_low, 0.9, (batch, 1)).astype("float32") for _ in bins]
    eta = [rng.uniform(-1, 1, (batch, s)).astype("float32") for s in bins]
    return p, delta, eta


@pytest.mark.parametrize(
    "bins,lambda_local,lambda_d,age_range",
    [((3, 3, 3), 1.0, 1.0, 101.0), ((5,), 0.5, 0.25, 80.0), ((2, 4, 3, 6), 1.0, 0.8, 101.0)],
)
def test_matches_equation_7(bins, lambda_local, lambda_d, age_range):
    p, delta, eta = random_stage_outputs(bins)
    layer = SoftStagewiseRegression(bins, lambda_local, lambda_d, age_range)
    got = keras.ops.convert_to_numpy(layer(p + delta + eta, training=True))
    want = reference_age(p, delta, eta, bins, lambda_local, lambda_d, age_range)
    assert got.shape == (5, 1)
    np.testing.assert_allclose(got[:, 0], want, rtol=1e-5, atol=1e-4)


def test_guard_bounds_division_when_delta_approaches_minus_one():
    bins = (3, 3)
    p, delta, eta = random_stage_outputs(bins)
    delta[0][:] = -1.0  # 1 + lambda_d * Delta = 0: the original divides by zero
    layer = SoftStagewiseRegression(bins, min_scale=0.1)
    got = keras.ops.convert_to_numpy(layer(p + delta + eta))
    assert np.all(np.isfinite(got))
    # Exactly eq. 7 with 1 + Delta replaced by the floor 0.1 (Delta = -0.9).
    delta_floor = [np.full_like(delta[0], -0.9), delta[1]]
    want = np.maximum(reference_age(p, delta_floor, eta, bins, 1.0, 1.0, 101.0), 0)
    np.testing.assert_allclose(got[:, 0], want, rtol=1e-5, atol=1e-3)


def test_guard_leaves_normal_range_unchanged():
    bins = (3, 3, 3)
    p, delta, eta = random_stage_outputs(bins, delta_low=-0.89)
    loose = SoftStagewiseRegression(bins, min_scale=1e-9)
    guarded = SoftStagewiseRegression(bins, min_scale=0.1)
    inputs = p + delta + eta
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loose(inputs, training=True)),
        keras.ops.convert_to_numpy(guarded(inputs, training=True)),
    )


def test_negative_age_is_clamped_at_inference_only():
    bins = (2,)
    p = [np.array([[1.0, 0.0]], "float32")]  # all mass on bin 0
    eta = [np.array([[-0.9, 0.0]], "float32")]  # shifted below 0
    delta = [np.zeros((1, 1), "float32")]
    layer = SoftStagewiseRegression(bins)
    raw = float(keras.ops.convert_to_numpy(layer(p + delta + eta, training=True))[0, 0])
    served = float(keras.ops.convert_to_numpy(layer(p + delta + eta, training=False))[0, 0])
    assert raw == pytest.approx(101.0 * -0.9 / 2.0, rel=1e-5)
    assert served == 0.0


def test_config_round_trip():
    layer = SoftStagewiseRegression((4, 2), lambda_local=0.5, lambda_d=0.3, age_range=90.0, min_scale=0.2, name="x")
    p, delta, eta = random_stage_outputs((4, 2))
    model_checks.run_serialization_test(layer, p + delta + eta)


def test_registered_for_deserialization():
    layer = SoftStagewiseRegression((3,))
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(restored, SoftStagewiseRegression)


@pytest.mark.parametrize(
    "kwargs,argument",
    [({"stage_bins": ()}, "stage_bins"), ({"stage_bins": (3, 0)}, "stage_bins"), ({"stage_bins": (3,), "min_scale": 0.0}, "min_scale")],
)
def test_bad_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        SoftStagewiseRegression(**kwargs)


def test_wrong_number_of_inputs_is_reported():
    layer = SoftStagewiseRegression((3, 3))
    p, delta, eta = random_stage_outputs((3,))
    with pytest.raises(ValueError, match="expects 6 input tensors, got 3"):
        layer(p + delta + eta)
