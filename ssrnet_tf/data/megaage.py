"""MegaAge and MegaAge-Asian: image-name and age list files.

Both releases ship ``list/train_name.txt`` / ``list/train_age.txt`` and
``list/test_name.txt`` / ``list/test_age.txt`` (one image name, resp. one
integer age, per line, in the same order) beside the image folders
``train/`` and ``test/``. The train/test division is the official split.

Reference:
    Zhang, Liu, Li, Li, Tang and Loy, "Quantifying Facial Age by Posterior
    of Age Comparisons", BMVC 2017 (MegaAge, MegaAge-Asian).
"""

from __future__ import annotations

import os
import pathlib
from typing import Sequence, Union

from ssrnet_tf.data import csv_table, sample_table


def read_megaage(
    root: Union[str, os.PathLike],
    *,
    splits: Sequence[str] = ("train", "test"),
    name: str = "megaage",
) -> sample_table.SampleTable:
    """Reads MegaAge or MegaAge-Asian from its list files.

    Args:
        root: Release folder holding ``list/`` and the image folders.
        splits: Which official splits to read.
        name: Dataset name for the table (e.g. ``"megaage_asian"``).

    Returns:
        A :class:`SampleTable` with ``split`` set; lines whose age does not
        parse are skipped and listed in ``report["skipped"]``.

    Raises:
        FileNotFoundError: If a list file is missing.
        ValueError: If a name list and its age list differ in length.
    """
    root = pathlib.Path(root)
    report = {"dataset": name, "source": str(root), "skipped": [], "rows": {}}
    paths, ages, split_column = [], [], []
    for split in splits:
        names_file = root / "list" / f"{split}_name.txt"
        ages_file = root / "list" / f"{split}_age.txt"
        for path in (names_file, ages_file):
            if not path.is_file():
                raise FileNotFoundError(f"{path}: MegaAge list file not found.")
        names = _lines(names_file)
        age_texts = _lines(ages_file)
        if len(names) != len(age_texts):
            raise ValueError(
                f"{names_file} has {len(names)} names but {ages_file} has {len(age_texts)} ages."
            )
        report["rows"][split] = len(names)
        for line, (image_name, age_text) in enumerate(zip(names, age_texts), start=1):
            path = root / split / image_name
            try:
                age = csv_table.parse_age(age_text)
            except ValueError as error:
                sample_table.skip(report, path, f"{error} ({ages_file.name} line {line})")
                continue
            paths.append(str(path))
            ages.append(age)
            split_column.append(split)
    return sample_table.SampleTable.from_columns(paths, ages, split=split_column, report=report, name=name)


def _lines(path: pathlib.Path):
    with open(path, encoding="utf-8") as handle:
        lines = [line.strip() for line in handle]
    while lines and not lines[-1]:
        lines.pop()
    return lines
