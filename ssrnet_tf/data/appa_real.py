"""APPA-REAL and ChaLearn LAP 2015/2016: apparent (and real) age CSVs.

APPA-REAL ships ``train/``, ``valid/`` and ``test/`` image folders (each
``X.jpg`` with its aligned face ``X.jpg_face.jpg``) and per-image summaries
``gt_avg_<split>.csv`` with the header
``file_name,num_ratings,apparent_age_avg,apparent_age_std,real_age``; the
per-rating files ``gt_<split>.csv`` (``file_name,real_age,apparent_age,...``)
are averaged per image when given instead. ``allcategories_<split>.csv``
(``file,gender,race,makeup,time,happiness``) adds gender (male/female) and
race (caucasian/afroamerican/asian).

The ChaLearn LAP apparent-age challenges (2015, 2016) list
``image,mean,stdv`` per image (``<split>_gt.csv`` beside a ``<split>/``
folder): apparent age only.

References:
    Agustsson, Timofte, Escalera, Baro, Guyon and Rothe, "Apparent and Real
    Age Estimation in Still Images with Deep Residual Regressors on
    APPA-REAL Database", FG 2017.
    Escalera et al., "ChaLearn Looking at People and Faces of the World:
    Face Analysis Workshop and Challenge 2016", CVPR Workshops 2016.
"""

from __future__ import annotations

import collections
import csv
import os
import pathlib
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from ssrnet_tf.data import csv_table, sample_table

# Column names per format: (file, apparent mean, apparent std, real age, number of ratings).
_SCHEMAS = (
    ("file_name", "apparent_age_avg", "apparent_age_std", "real_age", "num_ratings"),  # APPA gt_avg_*.csv
    ("image", "mean", "stdv", None, None),  # ChaLearn LAP 2015 / 2016
)
AGE_KINDS = ("apparent", "real")


def read_apparent_age_csv(
    csv_path: Union[str, os.PathLike],
    image_dir: Union[str, os.PathLike],
    *,
    split: str = "",
    age: str = "apparent",
    face_suffix: str = "",
    categories_csv: Union[str, os.PathLike, None] = None,
    name: str = "appa_real",
) -> sample_table.SampleTable:
    """Reads one apparent-age CSV (APPA-REAL ``gt_avg``/``gt`` or ChaLearn LAP).

    Args:
        csv_path: The ground-truth CSV.
        image_dir: Folder of the images it names.
        split: Value of the table's ``split`` column for these rows.
        age: ``"apparent"`` (mean rating) or ``"real"`` (APPA-REAL only) as
            the table's ``age``; both stay in ``extra``.
        face_suffix: Appended to each file name, e.g. ``"_face.jpg"`` for
            APPA-REAL's aligned faces.
        categories_csv: Optional APPA-REAL ``allcategories_<split>.csv``.
        name: Dataset name.

    Returns:
        A :class:`SampleTable` with ``extra`` columns ``apparent_age``,
        ``apparent_age_std``, ``real_age`` and ``num_ratings`` (NaN where
        the format lacks them).

    Raises:
        FileNotFoundError: If the CSV does not exist.
        ValueError: If the header matches no known format, or ``age`` is
            ``"real"`` for a CSV without real ages.
    """
    if age not in AGE_KINDS:
        raise ValueError(f"age must be one of {AGE_KINDS}, got {age!r}.")
    csv_path, image_dir = pathlib.Path(csv_path), pathlib.Path(image_dir)
    rows, header = _read_rows(csv_path)
    if "apparent_age" in header and "apparent_age_avg" not in header:
        rows = _average_ratings(rows)
        header = list(rows[0]) if rows else ["file_name", "apparent_age_avg", "apparent_age_std", "real_age"]
    schema = next((s for s in _SCHEMAS if s[0] in header and s[1] in header), None)
    if schema is None:
        raise ValueError(
            f"{csv_path}: header {header} is neither APPA-REAL (file_name, apparent_age_avg, ...) "
            "nor ChaLearn LAP (image, mean, stdv)."
        )
    file_column, mean_column, std_column, real_column, count_column = schema
    if age == "real" and real_column is None:
        raise ValueError(f"{csv_path}: this format has no real age; use age='apparent'.")
    attributes = _read_categories(categories_csv) if categories_csv is not None else {}
    report = {"dataset": name, "source": str(csv_path), "rows": len(rows), "skipped": []}
    columns: Dict[str, List] = collections.defaultdict(list)
    for line, row in enumerate(rows, start=2):
        path = image_dir / (row[file_column] + face_suffix)
        try:
            apparent = csv_table.parse_age(row[mean_column])
            real = csv_table.parse_age(row[real_column]) if real_column and row.get(real_column) else np.nan
        except ValueError as error:
            sample_table.skip(report, path, f"{error} ({csv_path.name} line {line})")
            continue
        if age == "real" and not np.isfinite(real):
            sample_table.skip(report, path, f"no real age ({csv_path.name} line {line})")
            continue
        gender, race = attributes.get(row[file_column], (sample_table.MISSING_CODE, sample_table.MISSING_CODE))
        columns["path"].append(str(path))
        columns["age"].append(apparent if age == "apparent" else real)
        columns["gender"].append(gender)
        columns["race"].append(race)
        columns["apparent_age"].append(apparent)
        columns["apparent_age_std"].append(_float(row.get(std_column, "")))
        columns["real_age"].append(real)
        columns["num_ratings"].append(_float(row.get(count_column, "")) if count_column else np.nan)
    extra = {key: np.asarray(columns[key], dtype=np.float32)
             for key in ("apparent_age", "apparent_age_std", "real_age", "num_ratings")}
    return sample_table.SampleTable.from_columns(
        columns["path"], columns["age"], gender=columns["gender"], race=columns["race"],
        split=[split] * len(columns["path"]), extra=extra, report=report, name=name,
    )


def read_appa_real(
    root: Union[str, os.PathLike],
    *,
    age: str = "apparent",
    aligned: bool = True,
    splits: Sequence[str] = ("train", "valid", "test"),
) -> sample_table.SampleTable:
    """Reads the APPA-REAL release (``appa-real-release/``).

    Args:
        root: Release folder with ``gt_avg_<split>.csv`` and ``<split>/``.
        age: ``"apparent"`` or ``"real"`` as the table's ``age``.
        aligned: Use the aligned ``X.jpg_face.jpg`` crops, else ``X.jpg``.
        splits: Official splits to read (the ``split`` column).

    Returns:
        One :class:`SampleTable` named ``"appa_real"`` (see
        :func:`read_apparent_age_csv` for the columns).
    """
    root = pathlib.Path(root)
    tables = []
    for split in splits:
        summary = root / f"gt_avg_{split}.csv"
        categories = root / f"allcategories_{split}.csv"
        tables.append(read_apparent_age_csv(
            summary if summary.is_file() else root / f"gt_{split}.csv",
            root / split,
            split=split,
            age=age,
            face_suffix="_face.jpg" if aligned else "",
            categories_csv=categories if categories.is_file() else None,
        ))
    return sample_table.concatenate(tables, name="appa_real")


def read_chalearn_lap(
    root: Union[str, os.PathLike],
    *,
    splits: Sequence[str] = ("train", "valid", "test"),
    csv_pattern: str = "{split}_gt.csv",
    image_dir_pattern: str = "{split}",
    name: str = "chalearn_lap2016",
) -> sample_table.SampleTable:
    """Reads a ChaLearn LAP apparent-age release (``image,mean,stdv`` CSVs).

    Args:
        root: Folder of the CSVs and image folders.
        splits: Official splits to read.
        csv_pattern: CSV name per split.
        image_dir_pattern: Image folder per split, relative to ``root``.
        name: Dataset name.

    Returns:
        One :class:`SampleTable` (apparent age; ``extra["apparent_age_std"]``).
    """
    root = pathlib.Path(root)
    return sample_table.concatenate(
        [read_apparent_age_csv(root / csv_pattern.format(split=split), root / image_dir_pattern.format(split=split),
                               split=split, name=name) for split in splits],
        name=name,
    )


def _read_rows(csv_path: pathlib.Path):
    if not csv_path.is_file():
        raise FileNotFoundError(f"{csv_path}: apparent-age CSV not found.")
    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = [c.strip() for c in (reader.fieldnames or [])]
        rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    return rows, header


def _average_ratings(rows: List[dict]) -> List[dict]:
    """Per-rating rows (``file_name,real_age,apparent_age,...``) -> one summary row per image."""
    ratings: Dict[str, List[float]] = collections.defaultdict(list)
    real: Dict[str, str] = {}
    for row in rows:
        try:
            ratings[row["file_name"]].append(float(row["apparent_age"]))
        except ValueError:
            ratings.setdefault(row["file_name"], [])
        real.setdefault(row["file_name"], row.get("real_age", ""))
    return [
        {
            "file_name": file_name,
            "num_ratings": str(len(values)),
            "apparent_age_avg": f"{np.mean(values):.6f}" if values else "",
            "apparent_age_std": f"{np.std(values):.6f}" if values else "",
            "real_age": real[file_name],
        }
        for file_name, values in ratings.items()
    ]


def _read_categories(path) -> Dict[str, tuple]:
    rows, _ = _read_rows(pathlib.Path(path))
    return {
        row.get("file", ""): (csv_table.parse_gender(row.get("gender", "")), csv_table.parse_race(row.get("race", "")))
        for row in rows
    }


def _float(text: Optional[str]) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return np.nan
