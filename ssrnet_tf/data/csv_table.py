"""A generic CSV of labelled faces, and the label parsing the CSV readers share.

Format: a header row, then one row per image with the columns ``path`` and
``age`` and, optionally, ``gender``, ``race``, ``subject`` and ``split``::

    path,age,gender,race,subject,split
    faces/0001.jpg,34,1,2,p17,train
    faces/0002.png,8.5,,,p18,test

Relative paths are relative to ``image_root`` (default: the CSV's folder).
Gender may be written ``0``/``1``, ``m``/``f`` or ``male``/``female``; race
as a code 0-4 or a name (white, black, asian, indian, others). Empty cells
are missing labels. Any further column is kept in ``extra`` (as float32 when
every value parses as a number, else as strings).
"""

from __future__ import annotations

import csv
import io
import logging
import os
import pathlib
from typing import Dict, List, Optional, Union

import numpy as np

from ssrnet_tf.data import sample_table
from ssrnet_tf.data.label_ranges import age_problem
from ssrnet_tf.utils import atomic

logger = logging.getLogger(__name__)

STANDARD_COLUMNS = ("path", "age", "gender", "race", "subject", "split")
_GENDER_CODES = {"0": 0, "1": 1, "m": 0, "f": 1, "male": 0, "female": 1, "-1": -1, "": -1}
_RACE_CODES = {
    **{str(i): i for i in range(5)},
    **{name: i for i, name in enumerate(sample_table.RACE_NAMES)},
    "other": 4, "caucasian": 0, "afroamerican": 1, "african american": 1, "hispanic": 4,
    "-1": -1, "": -1,
}


def parse_age(text: str) -> float:
    """An age in years from a CSV cell.

    Raises:
        ValueError: If the cell is empty, not a number, or negative.
    """
    try:
        age = float(str(text).strip())
    except ValueError:
        raise ValueError(f"age {text!r} is not a number") from None
    if not np.isfinite(age) or age < 0:
        raise ValueError(f"age {text!r} is not a non-negative number")
    return age


def parse_gender(text) -> int:
    """0 male / 1 female / -1 missing, from a code or a word.

    Returns:
        The code; unrecognised values give -1 (callers count them).
    """
    return _GENDER_CODES.get(str(text).strip().lower(), sample_table.MISSING_CODE)


def parse_race(text) -> int:
    """0 White, 1 Black, 2 Asian, 3 Indian, 4 Others, -1 missing or unknown."""
    return _RACE_CODES.get(str(text).strip().lower(), sample_table.MISSING_CODE)


def read_rows(csv_path: pathlib.Path, required, what: str = "CSV"):
    """Reads a CSV with a header into stripped string dicts.

    Args:
        csv_path: The file.
        required: Columns the header must have.
        what: How the file is called in error messages.

    Returns:
        ``(header, rows)``.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the header lacks a required column.
    """
    if not csv_path.is_file():
        raise FileNotFoundError(f"{csv_path}: {what} not found.")
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [column.strip() for column in (reader.fieldnames or [])]
            missing = [c for c in required if c not in header]
            if missing:
                raise ValueError(f"{csv_path}: header {header} lacks {missing}.")
            rows = [{(k or "").strip(): (v if isinstance(v, str) else "").strip() for k, v in row.items()}
                    for row in reader]
    except UnicodeDecodeError as error:
        raise ValueError(f"{csv_path}: not UTF-8 text ({error.reason} at byte {error.start}); "
                         "save the table as UTF-8.") from None
    except csv.Error as error:
        raise ValueError(f"{csv_path}: not a readable CSV table ({error}).") from None
    return header, rows


def read_csv_table(
    csv_path: Union[str, os.PathLike],
    *,
    image_root: Union[str, os.PathLike, None] = None,
    name: Optional[str] = None,
) -> sample_table.SampleTable:
    """Reads a generic ``path,age[,gender,race,subject,split]`` CSV.

    Rows whose age cannot be read or is implausible (outside the generic
    range of :mod:`ssrnet_tf.data.label_ranges`) are skipped, logged with their file and
    listed in ``report["skipped"]``; a gender or race that is present but
    unrecognised becomes -1 and is counted in ``report["invalid_gender"]`` /
    ``report["invalid_race"]``.

    Args:
        csv_path: The CSV file.
        image_root: Folder relative paths start from (default: the CSV's).
        name: Dataset name (default: the CSV's stem).

    Returns:
        A :class:`SampleTable`.

    Raises:
        FileNotFoundError: If the CSV does not exist.
        ValueError: If the header lacks ``path`` or ``age``.
    """
    csv_path = pathlib.Path(csv_path)
    root = pathlib.Path(image_root) if image_root is not None else csv_path.parent
    header, rows = read_rows(csv_path, ("path", "age"))
    report = {"dataset": name or csv_path.stem, "source": str(csv_path), "rows": len(rows), "skipped": [],
              "invalid_gender": 0, "invalid_race": 0}
    extra_columns = [c for c in header if c not in STANDARD_COLUMNS]
    columns: Dict[str, List] = {c: [] for c in (*STANDARD_COLUMNS, *extra_columns)}
    for line, row in enumerate(rows, start=2):
        if not row["path"]:
            sample_table.skip(report, f"{csv_path}:{line}", "empty path")
            continue
        path = _resolve(root, row["path"])
        try:
            age = parse_age(row["age"])
            problem = age_problem(age, None)
            if problem is not None:
                raise ValueError(problem)
        except ValueError as error:
            sample_table.skip(report, path, f"{error} ({csv_path.name} line {line})")
            continue
        gender = parse_gender(row.get("gender", ""))
        race = parse_race(row.get("race", ""))
        report["invalid_gender"] += gender < 0 and row.get("gender", "") not in ("", "-1")
        report["invalid_race"] += race < 0 and row.get("race", "") not in ("", "-1")
        for column, value in zip(STANDARD_COLUMNS, (path, age, gender, race, row.get("subject", ""),
                                                    row.get("split", ""))):
            columns[column].append(value)
        for column in extra_columns:
            columns[column].append(row.get(column, ""))
    return sample_table.SampleTable.from_columns(
        columns["path"], columns["age"], gender=columns["gender"], race=columns["race"],
        subject=columns["subject"], split=columns["split"],
        extra={column: typed_column(columns[column]) for column in extra_columns},
        report=report, name=name or csv_path.stem,
    )


def write_csv_table(table: sample_table.SampleTable, csv_path: Union[str, os.PathLike]) -> pathlib.Path:
    """Writes a table as a generic CSV (atomically), readable by :func:`read_csv_table`.

    Paths are written as they are in the table; missing codes as empty cells.

    Args:
        table: The table.
        csv_path: Destination file.

    Returns:
        ``csv_path`` as a ``pathlib.Path``.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    extra_columns = sorted(table.extra)
    writer.writerow([*STANDARD_COLUMNS, *extra_columns])
    for i in range(len(table)):
        writer.writerow([
            table.path[i], f"{table.age[i]:g}",
            "" if table.gender[i] < 0 else int(table.gender[i]),
            "" if table.race[i] < 0 else int(table.race[i]),
            table.subject[i], table.split[i],
            *[table.extra[column][i] for column in extra_columns],
        ])
    return atomic.atomic_write_bytes(csv_path, buffer.getvalue().encode("utf-8"))


def _resolve(root: pathlib.Path, path: str) -> str:
    candidate = pathlib.Path(path)
    return str(candidate if candidate.is_absolute() else root / candidate)


def typed_column(values: List[str]) -> np.ndarray:
    """Float32 when every value parses as a number (empty = NaN), else strings."""
    try:
        return np.asarray([float(v) if v != "" else np.nan for v in values], dtype=np.float32)
    except ValueError:
        return np.asarray(values, dtype=str)
