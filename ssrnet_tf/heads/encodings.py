"""Label encodings of the age heads: pure NumPy functions.

Every head turns raw labels (ages in years, gender and race indices) into
the ``y`` arrays its losses need through these functions, so that the
encodings can be tested on their own and reused by readers and notebooks.

Conventions shared by all functions:

* Ages are years, ``float`` or ``int``, of any shape that flattens to
  ``(N,)``. Negative or non-finite ages raise ``ValueError``.
* An age range ``[min_age, max_age]`` is given in whole years, with
  ``0 <= min_age < max_age``.
* Ages outside the range are **clipped** into it: an age below ``min_age``
  goes to the first class, an age above ``max_age`` (UTKFace holds ages up
  to 116) to the last one. A network whose output is an expectation over
  the range cannot predict outside it anyway.
"""

from __future__ import annotations

import math
from typing import Dict, Sequence, Union

import numpy as np

#: The label of a sample whose gender/race (or other task) is unknown.
MISSING_LABEL = -1

#: Age-group splits of ages 1-80 into 3, 5 and 10 groups, as multi-task
#: age/gender/race learning (Gu and Yang, section 2.1) defines them: "we
#: separate the age range 1-80 into three groups, 1-26, 27-52 and 53-80. Then,
#: we create five groups, 1-11, 12-23, 24-39, 40-55 and 56-80. In the last, we
#: run the model on ten age groups, 1-8, 9-16, ..., 65-72 and 73-80". Each
#: tuple holds the first age of every group after the first one
#: (``age_group_index`` boundaries); ages below 1 join the first group and ages
#: above 80 the last one.
AGE_GROUP_PRESETS: Dict[str, tuple] = {
    "3_groups": (27, 53),
    "5_groups": (12, 24, 40, 56),
    "10_groups": (9, 17, 25, 33, 41, 49, 57, 65, 73),
}


def check_age_range(min_age, max_age) -> None:
    """Checks that ``[min_age, max_age]`` is a valid range of whole years.

    Raises:
        ValueError: If either bound is not a whole number of years, if
            ``min_age < 0`` or if ``max_age <= min_age``.
    """
    for label, value in (("min_age", min_age), ("max_age", max_age)):
        if isinstance(value, bool) or not float(value).is_integer():
            raise ValueError(f"{label} must be a whole number of years, got {value!r}.")
    if min_age < 0:
        raise ValueError(f"min_age must be >= 0, got {min_age}.")
    if max_age <= min_age:
        raise ValueError(f"max_age must be > min_age, got min_age={min_age}, max_age={max_age}.")


def _check_granularity(granularity) -> int:
    if isinstance(granularity, bool) or not float(granularity).is_integer() or granularity < 1:
        raise ValueError(f"granularity must be a whole number of years >= 1, got {granularity!r}.")
    return int(granularity)


def validate_ages(ages) -> np.ndarray:
    """Returns ``ages`` as a float64 ``(N,)`` array after checking them.

    Raises:
        ValueError: If an age is negative, NaN or infinite.
    """
    ages = np.asarray(ages, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(ages)):
        raise ValueError(f"ages must be finite, got {ages[~np.isfinite(ages)][:5].tolist()}.")
    if np.any(ages < 0):
        raise ValueError(f"ages must be >= 0 years, got {ages[ages < 0][:5].tolist()}.")
    return ages


def num_classes(granularity, min_age=0, max_age=100) -> int:
    """Number of classes of width ``granularity`` that cover the age range.

    ``ceil((max_age - min_age) / granularity)``: ages 0-100 give 100, 20,
    10 and 5 classes for granularities 1, 5, 10 and 20. The top age
    ``max_age`` falls into the last class (see :func:`granularity_class`).

    Raises:
        ValueError: For an invalid granularity or age range.
    """
    granularity = _check_granularity(granularity)
    check_age_range(min_age, max_age)
    return int(math.ceil((max_age - min_age) / granularity))


#: Class indexings of :func:`granularity_class`.
#: ``"paper"``: class ``k`` holds the ages in ``(min_age + k g, min_age + (k + 1) g]``,
#: i.e. ``ceil((age - min_age) / g) - 1``; ``"floor"``: ``[min_age + k g, min_age + (k + 1) g)``,
#: i.e. ``floor((age - min_age) / g)``.
CLASS_INDEXINGS = ("paper", "floor")


def _check_indexing(indexing) -> str:
    if indexing not in CLASS_INDEXINGS:
        raise ValueError(f"indexing must be one of {CLASS_INDEXINGS}, got {indexing!r}.")
    return indexing


def granularity_class(ages, granularity, min_age=0, max_age=100, indexing="paper") -> np.ndarray:
    """Class index of each age at one granularity (Age-Granularity-Net).

    Age-Granularity-Net (Zhou et al., 2019, Fig. 2) indexes the classes so
    that "the ground truth of a sample image is 44 years [...] is viewed as
    the 43'rd class in the 100-class loss, the 8'th class in the 20-class
    loss, the 4'th class in the 10-class loss and 2'nd class in the 5-class
    loss". One rule gives all four: class ``k`` (0-based) holds the ages in
    ``(min_age + k g, min_age + (k + 1) g]``, ``ceil((age - min_age) / g) -
    1`` (``indexing="paper"``, the default): the 100 one-year classes are
    the ages 1..100, the 20 five-year classes 1-5, 6-10, ..., 96-100.
    ``indexing="floor"`` uses ``floor((age - min_age) / g)`` instead (44 is
    class 44 at one year; the 1-year classes are 0..99).

    Indices are clipped to ``[0, K - 1]`` with ``K = num_classes(granularity,
    min_age, max_age)``: ages at or below ``min_age`` (a newborn labelled 0)
    go to the first class and ages above ``max_age`` (UTKFace holds ages up
    to 116) to the last one.

    Args:
        ages: Ages in years.
        granularity: Class width in whole years.
        min_age: Lowest age of the range.
        max_age: Highest age of the range.
        indexing: ``"paper"`` or ``"floor"`` (:data:`CLASS_INDEXINGS`).

    Returns:
        int32 class indices, shape ``(N,)``.

    Raises:
        ValueError: For negative/non-finite ages or invalid parameters.
    """
    classes = num_classes(granularity, min_age, max_age)
    ages = validate_ages(ages)
    scaled = (ages - min_age) / int(granularity)
    index = np.ceil(scaled) - 1 if _check_indexing(indexing) == "paper" else np.floor(scaled)
    return np.clip(index, 0, classes - 1).astype(np.int32)


def class_centers(granularity, min_age=0, max_age=100, indexing="paper") -> np.ndarray:
    """Representative age of each class of :func:`granularity_class`.

    Labels are whole years, so a class stands for the whole years it holds
    and its centre is the midpoint of that interval. With ``"paper"``
    indexing class ``k`` holds ``min_age + k g + 1 .. min_age + (k + 1) g``
    (the ages 1..100 at one year over 0-100, so class ``k`` has centre
    ``k + 1``; ages at or below ``min_age`` are clipped into class 0). With
    ``"floor"`` indexing it holds ``min_age + k g .. min_age + (k + 1) g -
    1``, the last class also every year up to ``max_age`` (centre ``k`` at
    one year, the last ``max_age - 0.5``).

    Returns:
        float32 centres in years, shape ``(K,)``.
    """
    classes = num_classes(granularity, min_age, max_age)
    granularity = int(granularity)
    first = min_age + granularity * np.arange(classes, dtype=np.float64)
    if _check_indexing(indexing) == "paper":
        first = first + 1
        last = np.minimum(first + granularity - 1, max_age)
    else:
        last = np.minimum(first + granularity - 1, max_age)
        last[-1] = max_age
    return ((first + last) / 2.0).astype(np.float32)


def discrete_ages(min_age=0, max_age=100) -> np.ndarray:
    """The whole years ``min_age .. max_age`` (101 values for 0-100), float32."""
    check_age_range(min_age, max_age)
    return np.arange(min_age, max_age + 1, dtype=np.float32)


def discrete_age_class(ages, min_age=0, max_age=100) -> np.ndarray:
    """Index of the nearest whole year in ``min_age .. max_age`` (DEX labels).

    Ages are rounded half up (apparent ages such as 23.5 are fractional) and
    clipped into the range, so 0-100 gives classes 0..100 and age 116 is
    class 100.

    Returns:
        int32 class indices, shape ``(N,)``.
    """
    check_age_range(min_age, max_age)
    ages = validate_ages(ages)
    index = np.floor(np.clip(ages, min_age, max_age) + 0.5) - min_age
    return np.clip(index, 0, max_age - min_age).astype(np.int32)


def gaussian_label_distribution(ages, sigma=2.0, min_age=0, max_age=100) -> np.ndarray:
    """Gaussian label distributions over the whole years of the range.

    DLDL-v2 (Gao et al., "Age Estimation Using Expectation of Label
    Distribution Learning", IJCAI 2018), eq. 1: the target of an age ``y``
    is ``p_k ∝ exp(-(l_k - y)^2 / (2 sigma^2))`` over the ``K`` discrete
    ages ``l_k`` of :func:`discrete_ages`, normalised so that each row sums
    to 1 over those ``K`` ages. Ages outside the range are clipped into it
    first, so age 116 gets the distribution of age ``max_age``.

    Returns:
        float32 distributions, shape ``(N, K)``.

    Raises:
        ValueError: If ``sigma <= 0`` or for invalid ages/range.
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}.")
    support = discrete_ages(min_age, max_age).astype(np.float64)  # (K,)
    ages = np.clip(validate_ages(ages), min_age, max_age)  # (N,)
    logits = -np.square(support[None, :] - ages[:, None]) / (2.0 * sigma**2)
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def resolve_age_groups(boundaries: Union[str, Sequence[float]]) -> tuple:
    """Returns the boundaries of a preset name or checks explicit ones.

    Args:
        boundaries: A key of :data:`AGE_GROUP_PRESETS` or a strictly
            increasing sequence of positive ages.

    Returns:
        The boundaries as a tuple of floats.

    Raises:
        ValueError: For an unknown preset or invalid boundaries.
    """
    if isinstance(boundaries, str):
        if boundaries not in AGE_GROUP_PRESETS:
            raise ValueError(
                f"Unknown age-group preset {boundaries!r}; valid presets: {sorted(AGE_GROUP_PRESETS)}."
            )
        boundaries = AGE_GROUP_PRESETS[boundaries]
    values = tuple(float(b) for b in boundaries)
    if not values:
        raise ValueError("Age-group boundaries must hold at least one age (two groups).")
    if any(not math.isfinite(b) or b <= 0 for b in values):
        raise ValueError(f"Age-group boundaries must be finite and > 0, got {values}.")
    if any(b >= c for b, c in zip(values, values[1:])):
        raise ValueError(f"Age-group boundaries must be strictly increasing, got {values}.")
    return values


def age_group_centers(boundaries: Union[str, Sequence[float]], min_age: float = 1, max_age: float = 80) -> np.ndarray:
    """Representative age of each group: the midpoint of its whole years.

    Group ``i`` holds the whole years ``boundaries[i - 1] .. boundaries[i] -
    1``, the first from ``min_age`` and the last up to ``max_age``: the
    ``"3_groups"`` preset (1-26, 27-52, 53-80) gives 13.5, 39.5 and 66.5.

    Args:
        boundaries: A key of :data:`AGE_GROUP_PRESETS` or increasing ages.
        min_age: First age of the first group.
        max_age: Last age of the last group.

    Returns:
        float32 centres in years, shape ``(B + 1,)``.

    Raises:
        ValueError: For invalid boundaries or a range that does not hold them.
    """
    values = resolve_age_groups(boundaries)
    if not min_age < values[0] or not values[-1] <= max_age:
        raise ValueError(f"age groups {values} must lie inside [{min_age}, {max_age}].")
    firsts = np.asarray((float(min_age),) + values, dtype=np.float64)
    lasts = np.asarray(tuple(value - 1 for value in values) + (float(max_age),), dtype=np.float64)
    return ((firsts + lasts) / 2.0).astype(np.float32)


def age_group_index(ages, boundaries: Union[str, Sequence[float]]) -> np.ndarray:
    """Age-group index of each age.

    ``B`` boundaries make ``B + 1`` groups: group ``i`` holds the ages
    ``boundaries[i - 1] <= age < boundaries[i]``; ages below the first
    boundary are group 0 and ages at or above the last are group ``B``.

    Args:
        ages: Ages in years.
        boundaries: A key of :data:`AGE_GROUP_PRESETS` or increasing ages.

    Returns:
        int32 group indices, shape ``(N,)``.
    """
    values = np.asarray(resolve_age_groups(boundaries))
    ages = validate_ages(ages)
    return np.searchsorted(values, ages, side="right").astype(np.int32)


def task_labels(labels, classes: int, task: str) -> np.ndarray:
    """Checks categorical labels with :data:`MISSING_LABEL` for unknown ones.

    Args:
        labels: Integer labels, ``0 .. classes - 1`` or ``-1`` (missing).
        classes: Number of classes of the task.
        task: Task name, for error messages.

    Returns:
        int32 labels, shape ``(N,)``.

    Raises:
        ValueError: For non-integer labels or labels out of range.
    """
    values = np.asarray(labels).reshape(-1)
    if values.size and not np.all(np.isfinite(values.astype(np.float64))):
        raise ValueError(f"{task} labels must be integers in 0..{classes - 1} or {MISSING_LABEL}, got NaN/inf.")
    if values.size and not np.all(np.equal(np.mod(values.astype(np.float64), 1.0), 0.0)):
        raise ValueError(f"{task} labels must be integers, got {values[:5].tolist()}.")
    values = values.astype(np.int64)
    invalid = (values != MISSING_LABEL) & ((values < 0) | (values >= classes))
    if np.any(invalid):
        raise ValueError(
            f"{task} labels must be in 0..{classes - 1} or {MISSING_LABEL} (missing), "
            f"got {np.unique(values[invalid])[:5].tolist()}."
        )
    return values.astype(np.int32)
