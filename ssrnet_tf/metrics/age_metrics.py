"""Evaluation metrics of facial age estimation, computed with numpy.

All functions take the true and predicted ages of ``N`` faces, each of shape
``(N,)`` or ``(N, 1)``, and raise ``ValueError`` naming the argument when an
input is empty, contains NaN (or infinity), or when the two disagree in ``N``.

Conventions:

* **MAE** is the mean of ``|y_pred - y_true|`` in years.
* **CA(n)**, the cumulative accuracy, is the fraction of faces whose
  absolute error is *smaller than* ``n`` years, ``|error| < n``: SSR-Net
  (Yang et al., 2018) defines CA(n) on MegaAge-Asian as "the percentage of
  images with absolute errors smaller than n". ``strict=False`` counts
  ``|error| <= n`` instead (a named option; whole-year predictions with an
  error of exactly ``n`` then count).
* **Age groups** are taken by *true* age: LAE's eight groups (Bao et al.,
  2021, Table 1: "1-10 11-20 21-30 31-40 41-50 51-60 61-70 71-81"). With the
  default edges ``(10, 20, ..., 70)`` and last age 81, group ``k`` holds the
  ages ``a`` with ``edges[k - 1] < a <= edges[k]``, the last one
  ``70 < a <= 81``. Ages below 1 (e.g. a newborn labelled 0) go into the
  first group, and a fractional age such as 10.5 into ``11-20``. Ages above
  the last age (UTKFace goes to 116) are in none of the groups: they count
  in the MAE and CA(n) of the whole set, and :func:`age_report` reports
  them separately (``"above_groups"``), but not in σ.
* **σ** follows LAE's eq. 7 (Bao et al., 2021), ``σ = sqrt(sum_{j=1..8}
  (MAE^j - MAE)^2 / 8)``, "where MAE denotes the mean absolute error on the
  entire test set" and ``MAE^j`` the MAE of age group ``j``: the deviations
  are taken from the MAE of the set the groups cover (the paper's whole test
  set lies in its groups; ours may hold older faces, left out here), not
  from the mean of the group MAEs.
  **Empty groups** (our choice; the paper's test set fills all eight): an
  empty group has no ``MAE^j``, so its term is left out and the sum is
  divided by the number of groups that hold faces, i.e. σ is the root mean
  square deviation over the observed groups. With all eight groups filled
  this is eq. 7 exactly (divide by 8); counting an empty group as a zero
  deviation instead would flatter a model evaluated on a set without, say,
  any face over 70. :func:`group_mae_std_about_group_mean` keeps the other
  definition (population σ of the group MAEs about their own mean).
* **AAR** = ``max(0, 7 - MAE) + max(0, 3 - σ)`` (LAE eq. 6), between 0 and
  10, higher is better.

Reference:
    - Bao et al., "LAE: Long-tailed Age Estimation", arXiv 2110.12741, 2021,
      eqs. 6 and 7 and Table 1 (the eight age groups).
    - AAR (Age Accuracy and Representativeness) metric of the Guess The Age
      contest (GTA 2021 at CAIP 2021, reused in GTA 2023): Greco et al.,
      "Guess the Age 2021: Age Estimation from Facial Images with Deep
      Convolutional Neural Networks".
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

#: Upper (inclusive) ages of all groups but the last: 1-10, ..., 61-70, 71-81.
DEFAULT_GROUP_EDGES: Tuple[int, ...] = (10, 20, 30, 40, 50, 60, 70)

#: The last age of LAE's last group ("71-81"); older faces are in no group.
LAE_LAST_AGE = 81

#: ``last_age`` default: :data:`LAE_LAST_AGE` with LAE's edges (:data:`DEFAULT_GROUP_EDGES`), open-ended with others.
LAE = "lae"

#: AAR rewards an MAE below this many years.
AAR_MAE_BOUND = 7.0

#: AAR rewards a σ of the group MAEs below this many years.
AAR_STD_BOUND = 3.0


@dataclasses.dataclass(frozen=True)
class AgeGroupMAE:
    """The MAE of the faces in one age group.

    Attributes:
        label: The group, as ``"1-10"`` or ``"71-81"`` (``"71+"`` without a
            last age).
        count: How many faces have their true age in the group.
        mae: Their mean absolute error in years; NaN when ``count`` is 0.
    """

    label: str
    count: int
    mae: float


def validate_group_edges(boundaries: Sequence[int]) -> Tuple[int, ...]:
    """Checks the group edges and returns them as a tuple of ints.

    Args:
        boundaries: Strictly increasing whole ages ``>= 1``; each is the last
            age of a group, and one more group holds the ages above the last
            edge.

    Returns:
        The edges as a tuple of Python ints.

    Raises:
        ValueError: If ``boundaries`` is empty, not made of whole numbers
            ``>= 1``, or not strictly increasing.
    """
    edges = tuple(boundaries)
    if not edges:
        raise ValueError("boundaries must hold at least one age, got an empty sequence.")
    for edge in edges:
        if isinstance(edge, bool) or not isinstance(edge, (int, float, np.integer, np.floating)):
            raise ValueError(f"boundaries must be whole ages, got {edge!r} in {edges}.")
        if not float(edge).is_integer() or edge < 1:
            raise ValueError(f"boundaries must be whole ages >= 1, got {edge!r} in {edges}.")
    edges = tuple(int(edge) for edge in edges)
    if any(high <= low for low, high in zip(edges, edges[1:])):
        raise ValueError(f"boundaries must be strictly increasing, got {edges}.")
    return edges


def group_labels(boundaries: Sequence[int] = DEFAULT_GROUP_EDGES, last_age: Union[int, None, str] = LAE) -> List[str]:
    """Names the age groups cut by ``boundaries``.

    Args:
        boundaries: Group edges, see :func:`validate_group_edges`.

    Returns:
        ``len(boundaries) + 1`` labels; the defaults give ``["1-10",
        "11-20", ..., "61-70", "71-81"]`` (``"71+"`` with ``last_age=None``).
    """
    last_age = resolve_last_age(boundaries, last_age)
    edges = _checked_edges(boundaries, last_age)
    lows = (1,) + tuple(edge + 1 for edge in edges[:-1])
    labels = [f"{low}-{high}" if low < high else f"{high}" for low, high in zip(lows, edges)]
    return labels + [f"{edges[-1] + 1}+" if last_age is None else f"{edges[-1] + 1}-{last_age}"]


def mean_absolute_error(y_true, y_pred) -> float:
    """Mean absolute error in years.

    Args:
        y_true: True ages, shape ``(N,)`` or ``(N, 1)``.
        y_pred: Predicted ages, same ``N``.

    Returns:
        ``mean(|y_pred - y_true|)``.

    Raises:
        ValueError: On empty, NaN or mismatched inputs.
    """
    true, pred = _as_age_pair(y_true, y_pred)
    return float(np.mean(np.abs(pred - true)))


def cumulative_accuracy(y_true, y_pred, n: float, strict: bool = True) -> float:
    """Cumulative accuracy CA(n): the fraction of faces within ``n`` years.

    The bound is strict by default, ``|error| < n`` ("absolute errors
    smaller than n", SSR-Net's CA(n)); ``strict=False`` uses
    ``|error| <= n``.

    Args:
        y_true: True ages, shape ``(N,)`` or ``(N, 1)``.
        y_pred: Predicted ages, same ``N``.
        n: Tolerance in years, finite and ``>= 0``.
        strict: Count ``|error| < n`` (default) rather than ``|error| <= n``.

    Returns:
        A fraction in ``[0, 1]``.

    Raises:
        ValueError: On empty, NaN or mismatched inputs, or a bad ``n``.
    """
    tolerance = validate_tolerance(n)
    true, pred = _as_age_pair(y_true, y_pred)
    error = np.abs(pred - true)
    hits = error < tolerance if strict else error <= tolerance
    return float(np.mean(hits))


def group_mae(y_true, y_pred, boundaries: Sequence[int] = DEFAULT_GROUP_EDGES,
              last_age: Union[int, None, str] = LAE) -> List[AgeGroupMAE]:
    """MAE per age group, the groups taken by true age.

    Args:
        y_true: True ages, shape ``(N,)`` or ``(N, 1)``. Ages below 1 count
            in the first group.
        y_pred: Predicted ages, same ``N``.
        boundaries: Group edges, see :func:`validate_group_edges`; the
            defaults give 1-10, 11-20, ..., 61-70, 71-81.
        last_age: The last age of the last group (``None``: open-ended;
            ``"lae"``: 81 with the default edges, else open-ended); older
            faces are in no group.

    Returns:
        One :class:`AgeGroupMAE` per group, in age order; a group with no
        faces has ``count=0`` and ``mae=nan``.

    Raises:
        ValueError: On empty, NaN or mismatched inputs, or bad boundaries.
    """
    counts, maes = _group_counts_and_maes(y_true, y_pred, boundaries, last_age)
    labels = group_labels(boundaries, last_age)
    return [AgeGroupMAE(label, int(count), float(mae)) for label, count, mae in zip(labels, counts, maes)]


def group_mae_std(y_true, y_pred, boundaries: Sequence[int] = DEFAULT_GROUP_EDGES,
                  last_age: Union[int, None, str] = LAE) -> float:
    """σ of LAE's eq. 7: RMS deviation of the group MAEs from the whole-set MAE.

    ``σ = sqrt(sum_j (MAE^j - MAE)^2 / G)`` over the ``G`` groups that hold
    at least one face, ``MAE`` being the MAE of all the faces in the groups
    (every face, unless some are older than ``last_age``). With the eight
    default groups all filled, ``G = 8`` as in the paper; an empty group
    has no ``MAE^j`` and is left out of both the sum and ``G`` (see the
    module docstring).

    Args:
        y_true: True ages, shape ``(N,)`` or ``(N, 1)``.
        y_pred: Predicted ages, same ``N``.
        boundaries: Group edges, see :func:`validate_group_edges`.

    Returns:
        σ in years.

    Raises:
        ValueError: On empty, NaN or mismatched inputs, or bad boundaries.

    Reference:
        Bao et al., "LAE: Long-tailed Age Estimation", 2021, eq. 7.
    """
    counts, maes = _group_counts_and_maes(y_true, y_pred, boundaries, last_age)
    filled = maes[counts > 0]
    if not filled.size:  # every face is older than the last group
        return float("nan")
    covered = float(np.sum(maes[counts > 0] * counts[counts > 0]) / np.sum(counts))  # MAE of the grouped faces
    return float(np.sqrt(np.mean(np.square(filled - covered))))


def group_mae_std_about_group_mean(y_true, y_pred, boundaries: Sequence[int] = DEFAULT_GROUP_EDGES,
                                   last_age: Union[int, None, str] = LAE) -> float:
    """Population standard deviation (ddof=0) of the non-empty groups' MAEs.

    Not the paper's σ (:func:`group_mae_std` is): the deviations are taken
    from the mean of the group MAEs rather than from the whole-set MAE. Kept
    for comparison with results computed that way. Empty groups are left out.

    Args:
        y_true: True ages, shape ``(N,)`` or ``(N, 1)``.
        y_pred: Predicted ages, same ``N``.
        boundaries: Group edges, see :func:`validate_group_edges`.

    Returns:
        The standard deviation in years.

    Raises:
        ValueError: On empty, NaN or mismatched inputs, or bad boundaries.
    """
    counts, maes = _group_counts_and_maes(y_true, y_pred, boundaries, last_age)
    filled = maes[counts > 0]
    return float(np.std(filled)) if filled.size else float("nan")


def aar(y_true, y_pred, boundaries: Sequence[int] = DEFAULT_GROUP_EDGES,
        last_age: Union[int, None, str] = LAE) -> float:
    """Age Accuracy and Representativeness, ``max(0, 7 - MAE) + max(0, 3 - σ)``.

    LAE's eq. 6: ``MAE`` is over all faces and ``σ`` is
    :func:`group_mae_std` (eq. 7). The score lies in ``[0, 10]``; higher
    is better.

    Args:
        y_true: True ages, shape ``(N,)`` or ``(N, 1)``.
        y_pred: Predicted ages, same ``N``.
        boundaries: Group edges, see :func:`validate_group_edges`.

    Returns:
        The AAR score.

    Raises:
        ValueError: On empty, NaN or mismatched inputs, or bad boundaries.

    Reference:
        - AAR metric (Guess The Age contest, GTA 2021 / GTA 2023).
    """
    mae = mean_absolute_error(y_true, y_pred)
    sigma = group_mae_std(y_true, y_pred, boundaries, last_age)
    return aar_from_mae_and_std(mae, sigma)


def aar_from_mae_and_std(mae: float, sigma: float) -> float:
    """AAR from an MAE and a σ already computed.

    Args:
        mae: Mean absolute error in years.
        sigma: Standard deviation of the group MAEs in years.

    Returns:
        ``max(0, 7 - mae) + max(0, 3 - sigma)``.
    """
    spread = 0.0 if math.isnan(sigma) else max(0.0, AAR_STD_BOUND - sigma)  # NaN: no face in any group
    return max(0.0, AAR_MAE_BOUND - mae) + spread


def age_report(
    y_true,
    y_pred,
    ca_thresholds: Sequence[float] = (3, 5, 10),
    strict: bool = True,
    boundaries: Sequence[int] = DEFAULT_GROUP_EDGES,
    last_age: Union[int, None, str] = LAE,
) -> Dict[str, object]:
    """All the metrics of this module in one JSON-serialisable dict.

    Args:
        y_true: True ages, shape ``(N,)`` or ``(N, 1)``.
        y_pred: Predicted ages, same ``N``.
        ca_thresholds: The ``n`` of each CA(n) to report.
        strict: Bound of CA(n), see :func:`cumulative_accuracy`.
        boundaries: Group edges, see :func:`validate_group_edges`.

    Returns:
        A dict of plain Python values::

            {"count": 6, "mae": 2.5, "ca_3": 0.5, "ca_5": 1.0, ...,
             "ca_strict": True,
             "groups": [{"label": "1-10", "count": 2, "mae": 1.0}, ...,
                        {"label": "71-81", "count": 0, "mae": None}],
             "above_groups": {"label": "82+", "count": 1, "mae": 4.0},
             "group_mae_std": 1.2, "aar": 6.3}

        ``above_groups`` (only with a ``last_age``) holds the faces older
        than the last group, which σ leaves out.

        ``ca_<n>`` keys use ``metric_suffix(n)`` (``ca_2_5`` for 2.5), and
        the MAE of an empty group is ``None``.

    Raises:
        ValueError: On empty, NaN or mismatched inputs, bad thresholds or
            bad boundaries.
    """
    true, pred = _as_age_pair(y_true, y_pred)
    keys = [f"ca_{metric_suffix(n)}" for n in ca_thresholds]
    if len(set(keys)) != len(keys):
        raise ValueError(f"ca_thresholds must be distinct, got {tuple(ca_thresholds)}.")
    mae = mean_absolute_error(true, pred)
    sigma = group_mae_std(true, pred, boundaries, last_age)
    report: Dict[str, object] = {"count": int(true.size), "mae": mae}
    for key, n in zip(keys, ca_thresholds):
        report[key] = cumulative_accuracy(true, pred, n, strict=strict)
    report["ca_strict"] = bool(strict)
    report["groups"] = [
        {"label": group.label, "count": group.count, "mae": None if math.isnan(group.mae) else group.mae}
        for group in group_mae(true, pred, boundaries, last_age)
    ]
    last_age = resolve_last_age(boundaries, last_age)
    if last_age is not None:
        above = true > last_age
        report["above_groups"] = {"label": f"{last_age + 1}+", "count": int(above.sum()),
                                  "mae": float(np.mean(np.abs(pred[above] - true[above]))) if above.any() else None}
    report["group_mae_std"] = sigma
    report["aar"] = aar_from_mae_and_std(mae, sigma)
    return report


def validate_tolerance(n) -> float:
    """Checks the ``n`` of CA(n).

    Args:
        n: Tolerance in years.

    Returns:
        ``n`` as a float.

    Raises:
        ValueError: If ``n`` is not a finite number ``>= 0``.
    """
    if isinstance(n, bool) or not isinstance(n, (int, float, np.integer, np.floating)):
        raise ValueError(f"n must be a number of years, got {n!r}.")
    if not math.isfinite(n) or n < 0:
        raise ValueError(f"n must be finite and >= 0, got {n!r}.")
    return float(n)


def metric_suffix(n) -> str:
    """Names a tolerance for a metric or report key: 3 -> "3", 2.5 -> "2_5".

    Args:
        n: Tolerance in years.

    Returns:
        The shortest decimal form of ``n`` with ``.`` replaced by ``_``.
    """
    return f"{validate_tolerance(n):g}".replace(".", "_")


def resolve_last_age(boundaries, last_age=LAE) -> Optional[int]:
    """The last age of the last group: ``"lae"`` is 81 with LAE's edges and ``None`` (open-ended) with others."""
    if last_age == LAE:
        return LAE_LAST_AGE if tuple(validate_group_edges(boundaries)) == DEFAULT_GROUP_EDGES else None
    return last_age


def _checked_edges(boundaries, last_age) -> Tuple[int, ...]:
    edges = validate_group_edges(boundaries)
    if last_age is not None and (isinstance(last_age, bool) or not float(last_age).is_integer()
                                 or last_age <= edges[-1]):
        raise ValueError(f"last_age must be a whole age above the last edge {edges[-1]}, got {last_age!r}.")
    return edges


def _group_counts_and_maes(y_true, y_pred, boundaries, last_age) -> Tuple[np.ndarray, np.ndarray]:
    """Per-group face counts and MAEs (NaN where the count is 0); faces older than ``last_age`` are in none."""
    last_age = resolve_last_age(boundaries, last_age)
    edges = _checked_edges(boundaries, last_age)
    true, pred = _as_age_pair(y_true, y_pred)
    if last_age is not None:
        inside = true <= last_age
        true, pred = true[inside], pred[inside]
    # Number of edges strictly below the age: edges[k-1] < age <= edges[k].
    group = np.searchsorted(np.asarray(edges, dtype=np.float64), true, side="left")  # (N,)
    groups = len(edges) + 1
    counts = np.bincount(group, minlength=groups)  # (groups,)
    sums = np.bincount(group, weights=np.abs(pred - true), minlength=groups)  # (groups,)
    with np.errstate(invalid="ignore", divide="ignore"):
        maes = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return counts, maes


def _as_age_vector(values, name: str) -> np.ndarray:
    """``values`` as a float64 vector, checked."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must hold numeric ages: {error}") from error
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"{name} must have shape (N,) or (N, 1), got {array.shape}.")
    if array.size == 0:
        raise ValueError(f"{name} is empty; at least one face is needed.")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return array


def _as_age_pair(y_true, y_pred) -> Tuple[np.ndarray, np.ndarray]:
    """Checked ``(true, pred)`` float64 vectors of one length."""
    true = _as_age_vector(y_true, "y_true")
    pred = _as_age_vector(y_pred, "y_pred")
    if true.shape != pred.shape:
        raise ValueError(
            f"y_true and y_pred must hold the same number of faces, got y_true with "
            f"{true.size} and y_pred with {pred.size}."
        )
    return true, pred
