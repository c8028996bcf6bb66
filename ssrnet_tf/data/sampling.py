"""Class-balanced sampling for the long-tailed (second) training stage.

Each draw picks an age class uniformly among the classes that have images,
then an image of that class: every class has its own shuffled, endlessly
repeated stream (so within a class each image comes up once per pass, in a
new order each pass), and :func:`tf.data.Dataset.sample_from_datasets`
chooses among the streams with equal weights. The result is infinite: train
with ``steps_per_epoch``. A hundred one-year classes are a hundred small
streams; nothing grows with the number of draws.

Reference:
    Kang et al., "Decoupling Representation and Classifier for Long-Tailed
    Recognition", ICLR 2020 (class-balanced sampling for the second stage).
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np
import tensorflow as tf


def age_classes(ages, *, bin_width: float = 1.0, min_age: float = 0.0) -> np.ndarray:
    """Age class of each sample: ``floor((age - min_age) / bin_width)``, at least 0.

    Args:
        ages: Ages in years.
        bin_width: Years per class (1: one class per year of age).
        min_age: Start of class 0.

    Returns:
        ``(N,)`` int64 class ids.
    """
    if bin_width <= 0:
        raise ValueError(f"bin_width must be > 0, got {bin_width}.")
    ages = np.asarray(ages, dtype=np.float64)
    return np.maximum(np.floor((ages - min_age) / bin_width), 0).astype(np.int64)


def group_by_class(class_ids) -> Dict[int, np.ndarray]:
    """``{class: row indices}`` for every class that occurs, in class order."""
    class_ids = np.asarray(class_ids)
    return {int(c): np.flatnonzero(class_ids == c) for c in np.unique(class_ids)}


def class_balanced(datasets: Sequence[tf.data.Dataset], *, seed: Optional[int] = None) -> tf.data.Dataset:
    """Draws from per-class datasets with equal probability.

    Args:
        datasets: One dataset per class; each should repeat forever (a
            finite one drops out when exhausted and the rest share its
            weight).
        seed: Seed of the class choice.

    Returns:
        The interleaved dataset.
    """
    if not datasets:
        raise ValueError("class_balanced needs at least one class dataset.")
    weights = [1.0 / len(datasets)] * len(datasets)
    return tf.data.Dataset.sample_from_datasets(list(datasets), weights=weights, seed=seed,
                                                stop_on_empty_dataset=False)


def class_streams(class_ids, *, seed: int = 0) -> Dict[int, tf.data.Dataset]:
    """Per-class endless streams of row indices, each reshuffled every pass.

    Args:
        class_ids: Class of each row.
        seed: Base seed (class ``c`` shuffles with ``seed + c``).

    Returns:
        ``{class: dataset of int64 row indices}``.
    """
    return {
        c: tf.data.Dataset.from_tensor_slices(rows)
        .shuffle(len(rows), seed=seed + c, reshuffle_each_iteration=True)
        .repeat()
        for c, rows in group_by_class(class_ids).items()
    }


def balanced_indices(class_ids, *, seed: int = 0) -> tf.data.Dataset:
    """An endless stream of row indices, age classes equally likely.

    Args:
        class_ids: Class of each row (e.g. from :func:`age_classes`).
        seed: Seed of class choice and within-class shuffles.

    Returns:
        Dataset of int64 row indices.
    """
    return class_balanced(list(class_streams(class_ids, seed=seed).values()), seed=seed)
