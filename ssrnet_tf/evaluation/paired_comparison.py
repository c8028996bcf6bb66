"""Is one variant better than another? Paired intervals over seeds and over test faces, and one verdict rule.

An ablation compares each variant with the study's baseline on the same
split and the same seeds, so the comparison is *paired* twice:

* **over seeds**: the per-seed differences of a metric (variant minus
  baseline, seed by seed), their mean and a 95 % Student-t interval
  (:func:`seed_interval`);
* **over test faces**: each face's absolute error averaged over the seeds,
  for both variants; the MAE difference and a 95 % percentile bootstrap
  interval from resampling the faces (:func:`bootstrap_interval`).

**The verdict rule** (:func:`verdict`), stated once: a claim that a variant
moves a metric in a direction is

* *supported* when both 95 % intervals lie entirely on the claimed side of 0,
* *contradicted* when both lie entirely on the other side,
* *inconclusive* otherwise;

and a study whose best variant misses its accuracy floor (test MAE 7.0, 7.5
for SSR-Net from scratch) is *under-trained*: no verdict is drawn from it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, Optional, Sequence

import numpy as np

#: Two-sided 95 % quantiles of Student's t, by degrees of freedom (1.960 beyond the table).
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
        11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
        20: 2.086, 25: 2.060, 30: 2.042}

VERDICTS = ("supported", "contradicted", "inconclusive", "under-trained")


def t_quantile_95(degrees: int) -> float:
    """The two-sided 95 % quantile of Student's t with ``degrees`` of freedom."""
    if degrees < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {degrees}.")
    if degrees in _T95:
        return _T95[degrees]
    below = [d for d in _T95 if d < degrees]
    return _T95[max(below)] if degrees <= 30 else 1.960


@dataclasses.dataclass
class Interval:
    """A difference and its 95 % interval."""

    difference: float
    low: float
    high: float

    def to_dict(self) -> Dict[str, float]:
        return {"difference": round(self.difference, 4), "low": round(self.low, 4), "high": round(self.high, 4)}

    def side(self) -> int:
        """+1 if the interval lies above 0, -1 below, 0 if it contains 0."""
        if self.low > 0:
            return 1
        if self.high < 0:
            return -1
        return 0


def seed_interval(baseline: Sequence[float], variant: Sequence[float]) -> Optional[Interval]:
    """Mean per-seed difference ``variant - baseline`` with a 95 % t interval (``None`` with < 2 seeds).

    Args:
        baseline: The baseline's metric per seed.
        variant: The variant's metric for the same seeds, in the same order.
    """
    differences = np.asarray(variant, np.float64) - np.asarray(baseline, np.float64)
    if differences.size < 2:
        return None
    mean = float(differences.mean())
    half = t_quantile_95(differences.size - 1) * float(differences.std(ddof=1)) / math.sqrt(differences.size)
    return Interval(mean, mean - half, mean + half)


def bootstrap_interval(baseline_errors: np.ndarray, variant_errors: np.ndarray, resamples: int = 2000,
                       seed: int = 0) -> Interval:
    """MAE difference ``variant - baseline`` over the same test faces, with a 95 % bootstrap interval.

    Args:
        baseline_errors: ``(faces,)`` or ``(seeds, faces)`` absolute errors of
            the baseline (averaged over seeds first).
        variant_errors: The same for the variant, face by face.
        resamples: Bootstrap resamples of the faces.
        seed: Seed of the resampling.

    Raises:
        ValueError: If the two do not cover the same number of faces.
    """
    a = np.asarray(baseline_errors, np.float64)
    b = np.asarray(variant_errors, np.float64)
    a = a.mean(axis=0) if a.ndim == 2 else a
    b = b.mean(axis=0) if b.ndim == 2 else b
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"paired errors need the same test faces, got {a.shape} and {b.shape}.")
    paired = b - a
    rows = np.random.default_rng(seed).integers(0, paired.size, size=(resamples, paired.size))
    means = paired[rows].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return Interval(float(paired.mean()), float(low), float(high))


def verdict(claimed: int, intervals: Sequence[Optional[Interval]], trained_enough: bool = True) -> str:
    """The verdict rule of the module docstring.

    Args:
        claimed: The claimed sign of ``variant - baseline``: -1 (lower),
            +1 (higher).
        intervals: The seed and face intervals of that difference (``None``
            entries, e.g. a seed interval with one seed, make it
            inconclusive).
        trained_enough: Whether the study reached its accuracy floor.
    """
    if claimed not in (-1, 1):
        raise ValueError(f"claimed must be -1 or +1, got {claimed}.")
    if not trained_enough:
        return "under-trained"
    if not intervals or any(interval is None for interval in intervals):
        return "inconclusive"
    sides = {interval.side() for interval in intervals}
    if sides == {claimed}:
        return "supported"
    if sides == {-claimed}:
        return "contradicted"
    return "inconclusive"


def flattened(validation_mae: Sequence[float], tail: float = 0.2, tolerance: float = 0.02) -> Dict[str, float]:
    """Whether a validation curve has flattened: the last ``tail`` of epochs improve its best by < ``tolerance``.

    Returns:
        ``{"best_before_tail", "best", "improvement", "flat"}`` (improvement
        as a fraction of the best before the tail).
    """
    values = np.asarray([v for v in validation_mae if v is not None and math.isfinite(v)], np.float64)
    if values.size < 2:  # too short a curve to say (None, not NaN: the result goes to JSON and compares equal)
        return {"best_before_tail": None, "best": None, "improvement": None, "flat": False}
    head = max(1, int(round(values.size * (1.0 - tail))))
    before, best = float(values[:head].min()), float(values.min())
    improvement = (before - best) / before if before > 0 else 0.0
    return {"best_before_tail": round(before, 4), "best": round(best, 4), "improvement": round(improvement, 4),
            "flat": bool(improvement < tolerance)}
