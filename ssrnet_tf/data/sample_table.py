"""The common table every dataset reader returns.

Design: one :class:`SampleTable` is a dict-of-columns (numpy arrays of equal
length ``N``), wrapped in a dataclass so the columns are named and typed:

==========  ==========  =====================================================
column      dtype       meaning (missing value)
==========  ==========  =====================================================
``path``    ``str``     image file
``age``     float32     age in years (never missing: rows without an age are
                        skipped by the reader and listed in its report)
``gender``  int32       0 male, 1 female (-1)
``race``    int32       0 White, 1 Black, 2 Asian, 3 Indian, 4 Others (-1)
``subject`` ``str``     person identifier, for subject-wise splits ("")
``split``   ``str``     the dataset's official split, e.g. "train" ("")
==========  ==========  =====================================================

Dataset-specific columns (e.g. APPA-REAL's ``real_age`` and
``apparent_age_std``) live in :attr:`SampleTable.extra`, also of length ``N``.
:attr:`SampleTable.report` is the reader's account of what it read: counts,
and in ``report["skipped"]`` one ``{"path", "reason"}`` dict per entry it
could not use (an unparsable label, say). The input pipeline copies those
into its own report, so nothing a reader drops goes unmentioned.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np

logger = logging.getLogger(__name__)

MISSING_CODE = -1
GENDER_NAMES = ("male", "female")
RACE_NAMES = ("white", "black", "asian", "indian", "others")


@dataclasses.dataclass
class SampleTable:
    """Images and labels of one dataset, column by column.

    Build one with :meth:`from_columns`, which fills missing columns and
    checks lengths; the readers in :mod:`ssrnet_tf.data` all return one.

    Attributes:
        path: ``(N,)`` str, image files.
        age: ``(N,)`` float32, years.
        gender: ``(N,)`` int32, 0 male / 1 female / -1 missing.
        race: ``(N,)`` int32, 0..4 / -1 missing.
        subject: ``(N,)`` str, person id or "".
        split: ``(N,)`` str, official split name or "".
        extra: Further ``(N,)`` columns by name.
        report: The reader's counts and its ``"skipped"`` list.
        name: Dataset name, for messages and reports.

    Example:
        >>> table = SampleTable.from_columns(["a.jpg", "b.jpg"], [30, 41], gender=[0, -1])
        >>> len(table), table.labels()["gender"].tolist()
        (2, [0, -1])
    """

    path: np.ndarray
    age: np.ndarray
    gender: np.ndarray
    race: np.ndarray
    subject: np.ndarray
    split: np.ndarray
    extra: Dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    report: Dict[str, Any] = dataclasses.field(default_factory=dict)
    name: str = ""

    def __post_init__(self):
        n = len(self.path)
        for column in ("age", "gender", "race", "subject", "split"):
            if len(getattr(self, column)) != n:
                raise ValueError(
                    f"{self.name or 'table'}: column {column!r} has "
                    f"{len(getattr(self, column))} rows, path has {n}."
                )
        for column, values in self.extra.items():
            if len(values) != n:
                raise ValueError(
                    f"{self.name or 'table'}: extra column {column!r} has {len(values)} rows, path has {n}."
                )

    @classmethod
    def from_columns(
        cls,
        path: Sequence,
        age: Sequence,
        *,
        gender: Optional[Sequence] = None,
        race: Optional[Sequence] = None,
        subject: Optional[Sequence] = None,
        split: Optional[Sequence] = None,
        extra: Optional[Mapping[str, Sequence]] = None,
        report: Optional[Dict[str, Any]] = None,
        name: str = "",
    ) -> "SampleTable":
        """Builds a table, filling absent columns with their missing value.

        Args:
            path: Image files (``str`` or path-like).
            age: Ages in years.
            gender, race: Integer codes, ``None`` entries or -1 for missing.
            subject, split: Strings, ``None`` entries or "" for missing.
            extra: Further columns of the same length.
            report: The reader's report (a fresh one when ``None``).
            name: Dataset name.

        Returns:
            A :class:`SampleTable`.
        """
        n = len(path)
        return cls(
            path=_strings(path, n),
            age=np.asarray(age, dtype=np.float32).reshape(-1) if n else np.zeros(0, np.float32),
            gender=_codes(gender, n),
            race=_codes(race, n),
            subject=_strings(subject, n),
            split=_strings(split, n),
            extra={key: np.asarray(values) for key, values in (extra or {}).items()},
            report=dict(report) if report is not None else {"skipped": []},
            name=name,
        )

    def __len__(self) -> int:
        return len(self.path)

    def take(self, indices) -> "SampleTable":
        """Rows ``indices`` (int array or boolean mask) as a new table.

        The reader's report is kept (it describes the source the rows came
        from).
        """
        indices = np.asarray(indices)
        if indices.dtype == bool:
            indices = np.flatnonzero(indices)
        return dataclasses.replace(
            self,
            path=self.path[indices],
            age=self.age[indices],
            gender=self.gender[indices],
            race=self.race[indices],
            subject=self.subject[indices],
            split=self.split[indices],
            extra={key: values[indices] for key, values in self.extra.items()},
        )

    def labels(self) -> Dict[str, np.ndarray]:
        """The label dict a head's ``encode_targets`` takes.

        Returns:
            ``{"age": float32 (N,), "gender": int32 (N,), "race": int32 (N,)}``
            with -1 for a missing gender or race.
        """
        return {"age": self.age, "gender": self.gender, "race": self.race}

    def column(self, name: str) -> np.ndarray:
        """A standard or extra column by name."""
        if name in self.extra:
            return self.extra[name]
        if name in ("path", "age", "gender", "race", "subject", "split"):
            return getattr(self, name)
        raise KeyError(f"{self.name or 'table'} has no column {name!r}; extra columns: {sorted(self.extra)}.")

    def summary(self) -> Dict[str, Any]:
        """Counts for logs: rows, age range, missing labels, splits."""
        splits, counts = np.unique(self.split, return_counts=True)
        return {
            "name": self.name,
            "rows": len(self),
            "age_min": float(self.age.min()) if len(self) else None,
            "age_max": float(self.age.max()) if len(self) else None,
            "missing_gender": int(np.sum(self.gender == MISSING_CODE)),
            "missing_race": int(np.sum(self.race == MISSING_CODE)),
            "subjects": int(len(np.unique(self.subject[self.subject != ""]))),
            "splits": {str(s): int(c) for s, c in zip(splits, counts) if s},
            "skipped": len(self.report.get("skipped", [])),
        }


def concatenate(tables: Iterable[SampleTable], name: str = "") -> SampleTable:
    """Stacks tables row-wise; extra columns must agree, reports are merged.

    Args:
        tables: Tables to stack.
        name: Name of the result (default: the names joined by "+").

    Returns:
        One :class:`SampleTable`; its report has ``"parts"`` (each input's
        report) and the union of their ``"skipped"`` lists.
    """
    tables = list(tables)
    if not tables:
        raise ValueError("concatenate needs at least one table.")
    extra_keys = set(tables[0].extra)
    for table in tables[1:]:
        if set(table.extra) != extra_keys:
            raise ValueError(
                f"extra columns differ: {sorted(extra_keys)} vs {sorted(table.extra)} ({table.name})."
            )
    skipped: List[dict] = []
    for table in tables:
        skipped.extend(table.report.get("skipped", []))
    return SampleTable(
        path=np.concatenate([t.path for t in tables]),
        age=np.concatenate([t.age for t in tables]),
        gender=np.concatenate([t.gender for t in tables]),
        race=np.concatenate([t.race for t in tables]),
        subject=np.concatenate([t.subject for t in tables]),
        split=np.concatenate([t.split for t in tables]),
        extra={key: np.concatenate([t.extra[key] for t in tables]) for key in extra_keys},
        report={"parts": [t.report for t in tables], "skipped": skipped},
        name=name or "+".join(t.name for t in tables),
    )


def skip(report: Dict[str, Any], path, reason: str) -> None:
    """Records (and logs) an entry a reader could not use."""
    report.setdefault("skipped", []).append({"path": str(path), "reason": reason})
    logger.warning("skipping %s: %s", path, reason)


def _strings(values, n: int) -> np.ndarray:
    if values is None:
        return np.full(n, "", dtype=str)
    out = np.asarray(["" if v is None else str(v) for v in values], dtype=str)
    if len(out) != n:
        raise ValueError(f"column has {len(out)} rows, expected {n}.")
    return out


def _codes(values, n: int) -> np.ndarray:
    if values is None:
        return np.full(n, MISSING_CODE, dtype=np.int32)
    out = np.asarray([MISSING_CODE if v is None else int(v) for v in values], dtype=np.int32)
    if len(out) != n:
        raise ValueError(f"column has {len(out)} rows, expected {n}.")
    return out
