"""MORPH Album 2 (MORPH-II): the academic release's CSV.

The academic release lists its 55,134 images in a CSV with the header
``id_num,picture_num,dob,doa,race,gender,facial_hair,age,age_diff,glasses,photo``:
``id_num`` is the subject, ``race`` a letter (B Black, W White, A Asian,
H Hispanic, O Other), ``gender`` M/F, ``age`` whole years and ``photo`` the
image path relative to the release folder (e.g. ``Album2/009055_1M46.JPG``,
whose name itself encodes ``<subject>_<picture><gender><age>``).

MORPH has no official train/test split; papers use random 80/20 splits
(SSR-Net), often subject-disjoint (see :mod:`ssrnet_tf.data.splits`).

Reference:
    Ricanek and Tesafaye, "MORPH: A Longitudinal Image Database of Normal
    Adult Age-Progression", FG 2006.
"""

from __future__ import annotations

import os
import pathlib
import re
from typing import Optional, Union

from ssrnet_tf.data import csv_table, sample_table

# MORPH letters -> our race codes (0 White, 1 Black, 2 Asian, 3 Indian, 4 Others).
RACE_CODES = {"W": 0, "B": 1, "A": 2, "I": 3, "H": 4, "O": 4}
_NAME_PATTERN = re.compile(r"^(?P<subject>\d+)_(?P<picture>\d+)(?P<gender>[MF])(?P<age>\d+)", re.IGNORECASE)


def parse_morph_filename(name: str):
    """Reads ``(subject, gender, age)`` from a MORPH file name.

    Args:
        name: e.g. ``"009055_1M46.JPG"``.

    Returns:
        ``(subject: str, gender: int, age: int)``.

    Raises:
        ValueError: If the name does not follow ``<id>_<n><M|F><age>``.
    """
    match = _NAME_PATTERN.match(pathlib.Path(name).name)
    if match is None:
        raise ValueError(f"{name}: not a MORPH name <subject>_<picture><M|F><age>.")
    gender = 0 if match["gender"].upper() == "M" else 1
    return match["subject"], gender, int(match["age"])


def read_morph2(
    csv_path: Union[str, os.PathLike],
    *,
    image_root: Union[str, os.PathLike, None] = None,
) -> sample_table.SampleTable:
    """Reads MORPH-II from its CSV.

    The age comes from the ``age`` column, or from the file name when that
    cell is empty; rows with neither are skipped and reported.

    Args:
        csv_path: The release's CSV.
        image_root: Folder ``photo`` paths are relative to (default: the
            CSV's folder).

    Returns:
        A :class:`SampleTable` named ``"morph2"`` (``subject`` = ``id_num``,
        ``extra["picture_num"]``).

    Raises:
        FileNotFoundError: If the CSV does not exist.
        ValueError: If the header lacks ``photo``.
    """
    csv_path = pathlib.Path(csv_path)
    root = pathlib.Path(image_root) if image_root is not None else csv_path.parent
    header, rows = csv_table.read_rows(csv_path, ("photo",), what="MORPH CSV")
    report = {"dataset": "morph2", "source": str(csv_path), "rows": len(rows), "skipped": [], "age_from_name": 0}
    paths, ages, genders, races, subjects, pictures = [], [], [], [], [], []
    for line, row in enumerate(rows, start=2):
        path = str(root / row["photo"])
        try:
            age: Optional[float] = csv_table.parse_age(row.get("age", ""))
        except ValueError:
            age = None
        subject, gender = row.get("id_num", ""), csv_table.parse_gender(row.get("gender", ""))
        if age is None or not subject or gender < 0:
            try:
                name_subject, name_gender, name_age = parse_morph_filename(row["photo"])
            except ValueError:
                if age is None:
                    sample_table.skip(report, path, f"no age in column or file name ({csv_path.name} line {line})")
                    continue
            else:
                report["age_from_name"] += age is None
                age = name_age if age is None else age
                subject = subject or str(int(name_subject))
                gender = gender if gender >= 0 else name_gender
        paths.append(path)
        ages.append(age)
        genders.append(gender)
        races.append(RACE_CODES.get(row.get("race", "").upper(), sample_table.MISSING_CODE))
        subjects.append(subject)
        pictures.append(row.get("picture_num", ""))
    return sample_table.SampleTable.from_columns(
        paths, ages, gender=genders, race=races, subject=subjects,
        extra={"picture_num": csv_table.typed_column(pictures)},
        report=report, name="morph2",
    )
