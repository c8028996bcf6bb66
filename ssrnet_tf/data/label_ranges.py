"""Plausible age ranges per dataset: labels outside are skipped and reported.

A file named ``2023_party.jpg`` in a UTKFace-style folder, or a CSV row
with age 250, is a labelling mistake, not a person: one such label moved an
evaluation MAE from about 16 to 26. Readers check every age against the
range its dataset documents and skip the rest with the reason.

Ranges (inclusive, years):

* UTKFace: "age is an integer from 0 to 116" (the dataset page,
  https://susanqq.github.io/UTKFace/).
* MORPH-II: "Their ages range from 16 to 77 years old" (SSR-Net paper,
  Sec. 4.1; ../shared/papers/ssrnet.md).
* IMDB-WIKI: 0-100, the range SSR-Net's and DEX's pre-processing keep
  (:func:`ssrnet_tf.data.imdb_wiki.read_imdb_wiki` filters it already).
* APPA-REAL and ChaLearn LAP 2016: apparent and real ages 0-100.
* MegaAge / MegaAge-Asian: 0-70 (the MegaAge paper's label range).
* FG-NET: 0-69 (its documented age range).
* A generic CSV: 0-120 (oldest documented human: 122).
"""

from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

AGE_RANGES: Dict[str, Tuple[float, float]] = {
    "utkface": (0, 116),
    "morph2": (16, 77),
    "imdb": (0, 100),
    "wiki": (0, 100),
    "appa_real": (0, 100),
    "chalearn_lap2016": (0, 100),
    "megaage": (0, 70),
    "megaage_asian": (0, 70),
    "fgnet": (0, 69),
    "csv": (0, 120),
}
GENERIC = "csv"


def age_range(dataset: Optional[str]) -> Tuple[float, float]:
    """The inclusive plausible age range of ``dataset`` (a generic one for others)."""
    return AGE_RANGES.get(dataset or GENERIC, AGE_RANGES[GENERIC])


def age_problem(age: float, dataset: Optional[str]) -> Optional[str]:
    """Why ``age`` is not a plausible label of ``dataset``, or ``None``."""
    low, high = age_range(dataset)
    if not isinstance(age, (int, float)) or not math.isfinite(age):
        return f"age {age!r} is not a finite number"
    if not low <= age <= high:
        name = dataset if dataset in AGE_RANGES else "a generic table"
        return f"age {age:g} is outside the plausible range {low:g}-{high:g} of {name}"
    return None


def drop_implausible(table, dataset: Optional[str]):
    """``table`` without rows whose age is implausible for ``dataset``.

    The dropped rows are appended to ``table.report["skipped"]`` (and
    logged) with the reason, like any entry a reader could not use.

    Args:
        table: A :class:`ssrnet_tf.data.sample_table.SampleTable`.
        dataset: Key of :data:`AGE_RANGES` (others use the generic range).

    Returns:
        The filtered table (``table`` itself if nothing is dropped).
    """
    import numpy as np  # pylint: disable=import-outside-toplevel

    from ssrnet_tf.data import sample_table  # pylint: disable=import-outside-toplevel

    keep = np.ones(len(table), dtype=bool)
    report = table.report
    for row, (path, age) in enumerate(zip(table.path.tolist(), table.age.tolist())):
        problem = age_problem(float(age), dataset)
        if problem is not None:
            keep[row] = False
            sample_table.skip(report, path, problem)
    if keep.all():
        return table
    filtered = table.take(np.flatnonzero(keep))
    filtered.report = report
    return filtered
