"""Paired intervals over seeds and faces, and the one verdict rule of the ablation studies."""

import numpy as np
import pytest

from ssrnet_tf.evaluation import paired_comparison as paired


def test_seed_interval_is_the_paired_t_interval():
    interval = paired.seed_interval([6.0, 6.4, 6.2], [5.5, 5.8, 5.8])
    differences = np.array([-0.5, -0.6, -0.4])
    half = 4.303 * differences.std(ddof=1) / np.sqrt(3)
    assert interval.difference == pytest.approx(-0.5)
    assert (interval.low, interval.high) == pytest.approx((-0.5 - half, -0.5 + half))
    assert interval.side() == -1
    assert paired.seed_interval([6.0], [5.0]) is None  # one seed: no interval


def test_pairing_removes_the_shared_seed_spread():
    baseline = [5.0, 7.0, 9.0]  # a large spread over seeds ...
    variant = [4.8, 6.8, 8.8]  # ... that the variant shares: a clear paired difference
    assert paired.seed_interval(baseline, variant).side() == -1


def test_bootstrap_interval_over_faces():
    rng = np.random.default_rng(1)
    base = rng.exponential(6.0, size=(3, 2000))
    better = base * 0.9
    interval = paired.bootstrap_interval(base, better, resamples=500)
    assert interval.difference == pytest.approx(-0.1 * base.mean(), rel=1e-6) and interval.high < 0
    noise = paired.bootstrap_interval(base[0], base[0] + rng.normal(0, 1.0, 2000), resamples=500)
    assert noise.low < 0 < noise.high
    with pytest.raises(ValueError, match="same test faces"):
        paired.bootstrap_interval(base[0], base[0][:10])


def test_verdict_rule():
    lower, higher, around = paired.Interval(-1, -2, -0.5), paired.Interval(1, 0.5, 2), paired.Interval(0, -1, 1)
    assert paired.verdict(-1, [lower, lower]) == "supported"
    assert paired.verdict(-1, [higher, higher]) == "contradicted"
    assert paired.verdict(-1, [lower, around]) == "inconclusive"
    assert paired.verdict(+1, [higher, higher]) == "supported"
    assert paired.verdict(-1, [lower, None]) == "inconclusive"
    assert paired.verdict(-1, [lower, lower], trained_enough=False) == "under-trained"
    with pytest.raises(ValueError):
        paired.verdict(0, [lower])


def test_flattened_curve():
    still_falling = [20, 15, 12, 10, 9, 8, 7.5, 7.0, 6.6, 6.2]
    flat = [20, 12, 9, 8, 7.4, 7.1, 7.0, 6.99, 6.98, 6.97]
    assert not paired.flattened(still_falling)["flat"]
    result = paired.flattened(flat)
    assert result["flat"] and result["best_before_tail"] == 6.99 and result["best"] == 6.97
    assert paired.flattened([7.0]) == {"best_before_tail": None, "best": None, "improvement": None, "flat": False}
    assert paired.t_quantile_95(2) == 4.303 and paired.t_quantile_95(1000) == 1.96
