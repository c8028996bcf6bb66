"""UTKFace: labels from file names, and a small in-memory loader.

UTKFace names each face ``AGE_GENDER_RACE_DATETIME.jpg.chip.jpg`` (gender:
0 male, 1 female; race: 0 White, 1 Black, 2 Asian, 3 Indian, 4 Others).
Some published names lack the race field or are otherwise malformed; the
parser keeps whatever label it can read and reports what is missing.

Reference:
    Zhang, Song and Qi, "Age Progression/Regression by Conditional
    Adversarial Autoencoder", CVPR 2017 (the UTKFace dataset).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
import random
from typing import List, Optional, Tuple, Union

import numpy as np

from ssrnet_tf.data import images, sample_table

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclasses.dataclass(frozen=True)
class UTKFaceRecord:
    """One face and its labels (``None`` where the name lacks the field)."""

    path: pathlib.Path
    age: int
    gender: Optional[int]
    race: Optional[int]


def parse_utkface_filename(name: str) -> Tuple[int, Optional[int], Optional[int]]:
    """Reads ``(age, gender, race)`` from a UTKFace file name.

    Args:
        name: File name such as ``"39_1_0_20170116174525125.jpg.chip.jpg"``.

    Returns:
        ``(age, gender, race)``; gender or race is ``None`` when that field
        is absent or not a valid code (e.g. ``"39_1_20170116....jpg"``, whose
        third field is the date).

    Raises:
        ValueError: If not even the age can be read, or it is outside
            UTKFace's 0-116 (:mod:`ssrnet_tf.data.label_ranges`).
    """
    from ssrnet_tf.data.label_ranges import age_problem  # pylint: disable=import-outside-toplevel

    fields = pathlib.Path(name).name.split("_")
    try:
        age = int(fields[0])
    except ValueError:
        raise ValueError(f"{name}: no integer age before the first '_'.") from None
    if age < 0:
        raise ValueError(f"{name}: negative age {age}.")
    problem = age_problem(age, "utkface")
    if problem is not None:
        raise ValueError(f"{name}: {problem}.")

    def code(index: int, valid: range) -> Optional[int]:
        # A date field (17 digits) in the race position is not a race code.
        if index >= len(fields) or not fields[index].isdigit():
            return None
        value = int(fields[index])
        return value if value in valid and len(fields[index]) == 1 else None

    gender = code(1, range(2))
    race = code(2, range(5)) if len(fields) >= 4 else None
    return age, gender, race


def list_utkface(directory: Union[str, os.PathLike]):
    """Lists the labelled faces of a UTKFace folder.

    Args:
        directory: Folder of UTKFace images (searched non-recursively).

    Returns:
        ``(records, report)``: the :class:`UTKFaceRecord` list sorted by
        file name, and a dict counting ``skipped`` (no readable or plausible
        age; these names are in ``skipped_names``), ``missing_gender`` and
        ``missing_race``; ``other_entries`` lists every other entry of the
        folder (sub-folders, hidden files, links, other formats) as
        ``{"path", "reason"}`` (:func:`ssrnet_tf.data.folder_walk.walk_images`),
        ``label_problems`` the reason of each skipped name.

    Raises:
        FileNotFoundError: If ``directory`` does not exist.
    """
    from ssrnet_tf.data.folder_walk import display_path, walk_images  # pylint: disable=import-outside-toplevel

    walk = walk_images(directory, IMAGE_SUFFIXES, recursive=False, what="UTKFace folder")
    records: List[UTKFaceRecord] = []
    report = {"skipped": 0, "skipped_names": [], "label_problems": [], "missing_gender": 0, "missing_race": 0,
              "other_entries": walk.skipped}
    for entry in walk.skipped:
        logger.warning("skipping %s: %s", entry["path"], entry["reason"])
    for path in walk.files:
        try:
            age, gender, race = parse_utkface_filename(path.name)
        except ValueError as error:
            report["skipped"] += 1
            report["skipped_names"].append(path.name)
            reason = str(error)[len(path.name) + 2:].rstrip(".")
            report["label_problems"].append({"path": display_path(path), "reason": reason})
            logger.warning("skipping %s: %s", display_path(path), reason)
            continue
        report["missing_gender"] += gender is None
        report["missing_race"] += race is None
        records.append(UTKFaceRecord(path, age, gender, race))
    if report["missing_race"] or report["missing_gender"]:
        logger.info(
            "%s: %d faces lack a race label, %d a gender label (age kept)",
            display_path(directory), report["missing_race"], report["missing_gender"],
        )
    return records, report


def load_utkface_arrays(
    directory: Union[str, os.PathLike],
    *,
    limit: Optional[int] = None,
    size: int = 64,
    seed: int = 0,
    max_age: Optional[int] = None,
):
    """Loads a random sample of UTKFace into memory as SSR-Net inputs.

    Args:
        directory: UTKFace folder.
        limit: Number of faces to sample (all when ``None``).
        size: Output side in pixels (images are resized with OpenCV's
            bilinear interpolation, as the reference test vectors were).
        seed: Seed of the sample.
        max_age: Drop faces older than this (counted in the report).

    Returns:
        ``(images_bgr, ages, report)``: float32 ``(N, size, size, 3)`` raw
        0-255 BGR pixels, float32 ages ``(N,)``, and the report of
        :func:`list_utkface` plus ``unreadable`` / ``unreadable_names`` and
        ``over_max_age``.
    """
    records, report = list_utkface(directory)
    if max_age is not None:
        kept = [r for r in records if r.age <= max_age]
        report["over_max_age"] = len(records) - len(kept)
        records = kept
    random.Random(seed).shuffle(records)
    report["unreadable"] = 0
    report["unreadable_names"] = []
    faces, ages = [], []
    for record in records:
        if limit is not None and len(faces) >= limit:
            break
        try:
            faces.append(images.read_bgr(record.path, size=size))
        except ValueError as error:
            report["unreadable"] += 1
            report["unreadable_names"].append(record.path.name)
            logger.warning("skipping %s", error)
            continue
        ages.append(record.age)
    if not faces:
        raise ValueError(f"{directory}: no readable labelled faces.")
    return (
        np.stack(faces).astype(np.float32),
        np.asarray(ages, dtype=np.float32),
        report,
    )


def read_utkface(directory: Union[str, os.PathLike]):
    """Reads a UTKFace folder into the common :class:`SampleTable`.

    Malformed names keep their age; the missing field is -1 in the table and
    named in ``report["missing_labels"]`` (``{"path", "missing"}`` per file).
    Names without a readable or plausible age, and every other entry of the
    folder (sub-folders, hidden files, links, other formats), are in
    ``report["skipped"]`` with the reason.

    Args:
        directory: Folder of UTKFace images (non-recursive).

    Returns:
        A :class:`ssrnet_tf.data.sample_table.SampleTable` named
        ``"utkface"``; UTKFace has no subject ids and no official split.

    Raises:
        FileNotFoundError: If ``directory`` does not exist.
    """
    records, listing = list_utkface(directory)
    report = {
        "dataset": "utkface",
        "source": str(directory),
        "skipped": listing["label_problems"] + listing["other_entries"],
        "missing_gender": listing["missing_gender"],
        "missing_race": listing["missing_race"],
        "missing_labels": [
            {
                "path": str(record.path),
                "missing": [field for field in ("gender", "race") if getattr(record, field) is None],
            }
            for record in records
            if record.gender is None or record.race is None
        ],
    }
    return sample_table.SampleTable.from_columns(
        [str(record.path) for record in records],
        [record.age for record in records],
        gender=[record.gender for record in records],
        race=[record.race for record in records],
        report=report,
        name="utkface",
    )
