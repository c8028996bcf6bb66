"""Tests of the age-estimation metrics: numpy functions and streaming Keras metrics."""

import json
import math

import numpy as np
import pytest

import keras

from ssrnet_tf import metrics

# Errors |pred - true| = 2, 3, 0, 5.
TRUE = [10.0, 20.0, 30.0, 40.0]
PRED = [12.0, 17.0, 30.0, 45.0]

# Faces for the group metrics (LAE's groups 1-10, ..., 61-70, 71-81, Table 1):
#   true  0 -> "1-10"  (age below 1), error |2 - 0|   = 2
#   true  5 -> "1-10",                error |5 - 5|   = 0
#   true 10 -> "1-10"  (edge is in),  error |14 - 10| = 4   -> count 3, MAE 6/3 = 2
#   true 11 -> "11-20",               error |13 - 11| = 2   -> count 1, MAE 2
#   true 25 -> "21-30",               error |20 - 25| = 5   -> count 1, MAE 5
#   "31-40", "41-50", "51-60", "61-70" are empty             -> count 0, MAE NaN
#   true 71 -> "71-81",               error |66 - 71| = 5   -> count 1, MAE 5
#   true 90 -> no group (above 81),   error |84 - 90| = 6   -> reported as "82+"
# Whole-set MAE = (2+0+4+2+5+5+6) / 7 = 24/7; MAE of the grouped faces 18/6 = 3.
# σ (LAE eq. 7) over the non-empty groups {2, 2, 5, 5}, about the grouped faces'
#   MAE 3: deviations -1, -1, 2, 2, squares 10, mean over the 4 filled groups
#   2.5, σ = sqrt(2.5) ≈ 1.5811.
#   (About the groups' own mean 3.5 it would be 1.5: group_mae_std_about_group_mean.)
# AAR (eq. 6, MAE of the whole set) = (7 - 24/7) + (3 - sqrt(2.5)) ≈ 5.1332.
GROUP_TRUE = [0.0, 5.0, 10.0, 11.0, 25.0, 71.0, 90.0]
GROUP_PRED = [2.0, 5.0, 14.0, 13.0, 20.0, 66.0, 84.0]
GROUP_LABELS = ["1-10", "11-20", "21-30", "31-40", "41-50", "51-60", "61-70", "71-81"]
GROUP_COUNTS = [3, 1, 1, 0, 0, 0, 0, 1]
GROUP_MAES = [2.0, 2.0, 5.0, math.nan, math.nan, math.nan, math.nan, 5.0]
GROUP_SIGMA = math.sqrt(2.5)
GROUP_AAR = (7.0 - 24.0 / 7.0) + 3.0 - GROUP_SIGMA

# All eight LAE groups filled (Table 1): one face per group with errors 1..8
# (true ages 5, 15, ..., 75) plus two more faces in 1-10 with error 1.
#   Group MAEs 1, 2, ..., 8; whole-set MAE (36 + 2)/10 = 3.8.
#   Deviations -2.8, -1.8, -0.8, 0.2, 1.2, 2.2, 3.2, 4.2; squares
#   7.84 + 3.24 + 0.64 + 0.04 + 1.44 + 4.84 + 10.24 + 17.64 = 45.92;
#   σ = sqrt(45.92 / 8) = sqrt(5.74) ≈ 2.3958 (eq. 7, divide by 8).
#   About the group MAEs' own mean 4.5: sqrt(42 / 8) = sqrt(5.25) ≈ 2.2913.
#   AAR = (7 - 3.8) + (3 - sqrt(5.74)) ≈ 3.8042.
EIGHT_TRUE = [5.0, 15.0, 25.0, 35.0, 45.0, 55.0, 65.0, 75.0, 3.0, 7.0]
EIGHT_PRED = [6.0, 17.0, 28.0, 39.0, 50.0, 61.0, 72.0, 83.0, 4.0, 6.0]


# === Numpy functions ===


def test_mean_absolute_error():
    # (2 + 3 + 0 + 5) / 4 = 2.5
    assert metrics.mean_absolute_error(TRUE, PRED) == pytest.approx(2.5)


def test_shapes_n_and_n1_are_equivalent():
    column_true = np.asarray(TRUE)[:, None]  # (4, 1)
    assert metrics.mean_absolute_error(column_true, PRED) == pytest.approx(2.5)
    assert metrics.cumulative_accuracy(column_true, np.asarray(PRED)[:, None], 3) == pytest.approx(0.5)


def test_cumulative_accuracy_is_strict_by_default():
    # "absolute errors smaller than n": errors 2, 3, 0, 5; CA(3) counts 2 and 0, CA(5) 2, 3, 0.
    assert metrics.cumulative_accuracy(TRUE, PRED, 3) == pytest.approx(2 / 4)
    assert metrics.cumulative_accuracy(TRUE, PRED, 5) == pytest.approx(3 / 4)
    metric = metrics.CumulativeAccuracy(5)
    metric.update_state(TRUE, PRED)
    assert metric.name == "ca_5" and float(metric.result()) == pytest.approx(3 / 4)


@pytest.mark.parametrize(
    "n,strict,expected",
    [
        (3, False, 3 / 4),  # errors 2, 3, 0 are <= 3
        (3, True, 2 / 4),  # error 3 == n is out: only 2, 0 are < 3
        (5, False, 4 / 4),  # error 5 == n is in
        (5, True, 3 / 4),  # 2, 3, 0 < 5
        (0, False, 1 / 4),  # only the exact guess
        (0, True, 0.0),  # nothing is < 0
        (2.5, False, 2 / 4),  # 2, 0
    ],
)
def test_cumulative_accuracy(n, strict, expected):
    assert metrics.cumulative_accuracy(TRUE, PRED, n, strict=strict) == pytest.approx(expected)


def test_group_mae_counts_nan_and_placement():
    groups = metrics.group_mae(GROUP_TRUE, GROUP_PRED)
    assert [group.label for group in groups] == GROUP_LABELS
    assert [group.count for group in groups] == GROUP_COUNTS
    np.testing.assert_allclose([group.mae for group in groups], GROUP_MAES)  # NaN == NaN here


def test_fractional_age_goes_above_the_edge():
    # 10.5 > 10, so "11-20"; -1 is below 1, so "1-10".
    groups = metrics.group_mae([10.5, -1.0], [10.5, 0.0])
    assert groups[0].count == 1 and groups[0].mae == pytest.approx(1.0)
    assert groups[1].count == 1 and groups[1].mae == pytest.approx(0.0)


def test_group_mae_std_is_lae_eq_7_over_eight_groups():
    # See EIGHT_TRUE: deviations from the whole-set MAE 3.8, divided by 8.
    assert metrics.mean_absolute_error(EIGHT_TRUE, EIGHT_PRED) == pytest.approx(3.8)
    assert metrics.group_mae_std(EIGHT_TRUE, EIGHT_PRED) == pytest.approx(math.sqrt(5.74))
    assert metrics.aar(EIGHT_TRUE, EIGHT_PRED) == pytest.approx(3.2 + 3.0 - math.sqrt(5.74))
    assert metrics.group_mae_std_about_group_mean(EIGHT_TRUE, EIGHT_PRED) == pytest.approx(math.sqrt(5.25))


def test_group_mae_std_leaves_empty_groups_out():
    # See GROUP_TRUE: 4 filled groups about the grouped faces' MAE 3 (the face above 81 is in none).
    assert metrics.group_mae_std(GROUP_TRUE, GROUP_PRED) == pytest.approx(GROUP_SIGMA)
    assert metrics.group_mae_std_about_group_mean(GROUP_TRUE, GROUP_PRED) == pytest.approx(1.5)


def test_group_mae_std_of_one_group_is_zero():
    # All faces in "21-30": one MAE, σ = 0.
    assert metrics.group_mae_std([21, 25, 30], [20, 30, 31]) == 0.0


def test_aar():
    # ≈ 5.1332, see GROUP_TRUE.
    assert metrics.aar(GROUP_TRUE, GROUP_PRED) == pytest.approx(GROUP_AAR)


def test_aar_perfect_is_ten():
    # MAE 0, σ 0: 7 + 3.
    assert metrics.aar([5, 35, 80], [5, 35, 80]) == pytest.approx(10.0)


def test_aar_clips_each_term_at_zero():
    # Errors 20 ("1-10") and 0 ("41-50"): MAE 10, σ of {20, 0} = 10.
    # max(0, 7 - 10) + max(0, 3 - 10) = 0 + 0.
    assert metrics.aar([5, 50], [25, 50]) == 0.0
    # Errors 10 and 10 in "21-30" and "31-40": MAE 10, σ 0.
    # max(0, 7 - 10) + max(0, 3 - 0) = 0 + 3.
    assert metrics.aar([30, 31], [40, 41]) == pytest.approx(3.0)


def test_custom_boundaries():
    # Edges (1, 5): groups "1" (<= 1), "2-5", "6+".
    assert metrics.group_labels((1, 5)) == ["1", "2-5", "6+"]
    # true 1 -> "1" (error 1); true 3 -> "2-5" (error 3); true 9 -> "6+" (error 2).
    groups = metrics.group_mae([1, 3, 9], [2, 6, 7], boundaries=(1, 5))
    got = [(group.label, group.count, group.mae) for group in groups]
    assert got == [("1", 1, 1.0), ("2-5", 1, 3.0), ("6+", 1, 2.0)]


def test_age_report_is_json_and_bundles_everything():
    report = metrics.age_report(GROUP_TRUE, GROUP_PRED, strict=False)
    json.dumps(report, allow_nan=False)  # no NaN, only plain values
    # Errors 2, 0, 4, 2, 5, 5, 6: <= 3 -> 3 faces, <= 5 -> 6, <= 10 -> 7.
    assert report["count"] == 7
    assert report["mae"] == pytest.approx(24 / 7)
    assert report["ca_3"] == pytest.approx(3 / 7)
    assert report["ca_5"] == pytest.approx(6 / 7)
    assert report["ca_10"] == pytest.approx(1.0)
    assert report["ca_strict"] is False
    assert report["group_mae_std"] == pytest.approx(GROUP_SIGMA)
    assert report["aar"] == pytest.approx(GROUP_AAR)
    assert report["groups"][3] == {"label": "31-40", "count": 0, "mae": None}
    assert report["groups"][-1] == {"label": "71-81", "count": 1, "mae": 5.0}
    assert report["above_groups"] == {"label": "82+", "count": 1, "mae": 6.0}


def test_age_report_strict_and_custom_thresholds():
    # Strict: errors < 5 -> 2, 0, 4, 2 = 4 faces; < 2.5 -> 2, 0, 2 = 3.
    report = metrics.age_report(GROUP_TRUE, GROUP_PRED, ca_thresholds=(2.5, 5))
    assert report["ca_2_5"] == pytest.approx(3 / 7)
    assert report["ca_5"] == pytest.approx(4 / 7)
    assert report["ca_strict"] is True


@pytest.mark.parametrize(
    "y_true,y_pred,message",
    [
        ([1, 2, 3], [1, 2], "y_true and y_pred"),
        ([], [], "y_true is empty"),
        ([1, 2], [1, math.nan], "y_pred contains NaN"),
        ([[1, 2], [3, 4]], [1, 2], "y_true must have shape"),
        ([1, "a"], [1, 2], "y_true must hold numeric"),
    ],
)
def test_bad_inputs_raise(y_true, y_pred, message):
    with pytest.raises(ValueError, match=message):
        metrics.age_report(y_true, y_pred)


@pytest.mark.parametrize("n", [-1, math.inf, "3", True])
def test_bad_tolerance_raises(n):
    with pytest.raises(ValueError, match="n must be"):
        metrics.cumulative_accuracy(TRUE, PRED, n)


@pytest.mark.parametrize("boundaries", [(), (20, 10), (10, 10), (0, 10), (10.5,)])
def test_bad_boundaries_raise(boundaries):
    with pytest.raises(ValueError, match="boundaries"):
        metrics.group_mae(TRUE, PRED, boundaries=boundaries)


def test_duplicate_thresholds_raise():
    with pytest.raises(ValueError, match="ca_thresholds"):
        metrics.age_report(TRUE, PRED, ca_thresholds=(3, 3.0))


# === Streaming Keras metrics ===


def _random_ages(seed=0, size=90):
    """Whole ages, with "51-60" and "61-70" empty, and whole errors (many == 3 or 5)."""
    rng = np.random.default_rng(seed)
    true = np.concatenate([rng.integers(0, 51, size - 10), rng.integers(71, 95, 10)]).astype("float32")
    pred = true + rng.integers(-8, 9, size).astype("float32")
    return true, pred


def _feed(metric, true, pred, splits=(7, 40)):
    """Updates ``metric`` batch by batch, alternating (batch, 1) and (batch,)."""
    for index, (batch_true, batch_pred) in enumerate(zip(np.split(true, splits), np.split(pred, splits))):
        if index % 2 == 0:
            batch_true, batch_pred = batch_true[:, None], batch_pred[:, None]
        metric.update_state(batch_true, batch_pred)
    return float(keras.ops.convert_to_numpy(metric.result()))


@pytest.mark.parametrize("n,strict", [(3, False), (3, True), (5, False), (0, False)])
def test_streaming_cumulative_accuracy_matches_numpy(n, strict):
    true, pred = _random_ages()
    got = _feed(metrics.CumulativeAccuracy(n, strict=strict), true, pred)
    assert got == pytest.approx(metrics.cumulative_accuracy(true, pred, n, strict=strict), rel=1e-6)


def test_streaming_group_metrics_match_numpy():
    true, pred = _random_ages(seed=1)
    assert metrics.group_mae(true, pred)[5].count == 0  # "51-60" is empty
    sigma = _feed(metrics.GroupMAEStd(), true, pred)
    score = _feed(metrics.AgeAccuracyRepresentativeness(), true, pred)
    assert sigma == pytest.approx(metrics.group_mae_std(true, pred), rel=1e-5)
    assert score == pytest.approx(metrics.aar(true, pred), rel=1e-5)


def test_streaming_sigma_is_lae_eq_7_hand_example():
    # See EIGHT_TRUE: σ = sqrt(5.74) about the whole-set MAE; sqrt(5.25) about the group mean.
    assert _feed(metrics.GroupMAEStd(), np.asarray(EIGHT_TRUE), np.asarray(EIGHT_PRED), (3, 6)) == pytest.approx(
        math.sqrt(5.74), rel=1e-6)
    assert _feed(metrics.GroupMAEStdAboutGroupMean(), np.asarray(EIGHT_TRUE), np.asarray(EIGHT_PRED),
                 (3, 6)) == pytest.approx(math.sqrt(5.25), rel=1e-6)
    true, pred = _random_ages(seed=2)
    assert _feed(metrics.GroupMAEStdAboutGroupMean(), true, pred) == pytest.approx(
        metrics.group_mae_std_about_group_mean(true, pred), rel=1e-5)


def test_streaming_aar_hand_example_and_reset():
    metric = metrics.AgeAccuracyRepresentativeness()
    assert float(metric.result()) == 0.0  # nothing seen yet
    metric.update_state(np.asarray(GROUP_TRUE[:3])[:, None], np.asarray(GROUP_PRED[:3])[:, None])
    metric.update_state(GROUP_TRUE[3:], GROUP_PRED[3:])
    assert float(metric.result()) == pytest.approx(GROUP_AAR, rel=1e-6)
    metric.reset_state()
    assert float(metric.result()) == 0.0


def test_sample_weight_zero_drops_a_face():
    # Weight 0 on the error-5 face: CA(5) over errors 2, 3, 0 = 1.0.
    metric = metrics.CumulativeAccuracy(5)
    metric.update_state(TRUE, PRED, sample_weight=[1.0, 1.0, 1.0, 0.0])
    assert float(metric.result()) == pytest.approx(1.0)
    aar_metric = metrics.AgeAccuracyRepresentativeness()
    aar_metric.update_state(GROUP_TRUE + [50.0], GROUP_PRED + [0.0], sample_weight=[1.0] * 7 + [0.0])
    assert float(aar_metric.result()) == pytest.approx(GROUP_AAR, rel=1e-6)


@pytest.mark.parametrize(
    "metric",
    [
        metrics.CumulativeAccuracy(2.5, strict=True, name="ca"),
        metrics.GroupMAEStd(boundaries=(10, 30)),
        metrics.AgeAccuracyRepresentativeness(boundaries=(5, 18, 65), name="aar_custom"),
    ],
    ids=lambda metric: type(metric).__name__,
)
def test_config_round_trip(metric):
    config = metric.get_config()
    assert type(metric).from_config(config).get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
    assert type(restored) is type(metric)
    assert restored.get_config() == config
    assert keras.saving.get_registered_name(type(metric)) == f"ssrnet_tf>{type(metric).__name__}"


def test_default_names():
    assert [metric.name for metric in metrics.default_age_metrics()] == ["mae", "ca_3", "ca_5", "aar"]
    assert metrics.CumulativeAccuracy(2.5).name == "ca_2_5"
    assert metrics.CumulativeAccuracy(2.5, strict=False).name == "ca_at_most_2_5"


def test_bad_metric_arguments_raise():
    with pytest.raises(ValueError, match="n must be"):
        metrics.CumulativeAccuracy(-1)
    with pytest.raises(ValueError, match="boundaries"):
        metrics.AgeAccuracyRepresentativeness(boundaries=(30, 20))


def test_default_metrics_in_compile_and_fit():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype("float32")
    y = rng.integers(0, 90, size=(16, 1)).astype("float32")  # (N, 1) ages
    age = keras.layers.Dense(1, bias_initializer=keras.initializers.Constant(30.0))
    model = keras.Sequential([keras.Input((4,)), age])
    model.compile(optimizer="sgd", loss="mae", metrics=metrics.default_age_metrics())
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    for name in ("mae", "ca_3", "ca_5", "aar"):
        assert np.isfinite(history.history[name][0]), name
    evaluated = model.evaluate(x, y, batch_size=5, return_dict=True, verbose=0)  # 4 batches
    report = metrics.age_report(y, model.predict(x, verbose=0))
    for name in ("mae", "ca_3", "ca_5", "aar"):
        assert evaluated[name] == pytest.approx(report[name], rel=1e-4, abs=1e-5), name
