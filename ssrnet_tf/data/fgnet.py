"""FG-NET: 1,002 images of 82 subjects, labels in the file names.

Each name is ``<subject><A><age>[letter].JPG``: ``001A02.JPG`` is subject 1
at age 2, ``001A43a.JPG`` a second photo of subject 1 at 43. The standard
protocol is leave-one-subject-out (:func:`ssrnet_tf.data.splits.leave_one_subject_out`).

Reference:
    Lanitis, Taylor and Cootes, "Toward Automatic Simulation of Aging
    Effects on Face Images", TPAMI 2002 (the FG-NET aging database).
"""

from __future__ import annotations

import os
import pathlib
import re
from typing import Tuple, Union

from ssrnet_tf.data import sample_table

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
_NAME_PATTERN = re.compile(r"^(?P<subject>\d+)A(?P<age>\d+)(?P<variant>[A-Za-z]?)$", re.IGNORECASE)


def parse_fgnet_filename(name: str) -> Tuple[str, int]:
    """Reads ``(subject, age)`` from an FG-NET file name.

    Args:
        name: e.g. ``"001A02.JPG"`` or ``"001A43a.JPG"``.

    Returns:
        ``(subject, age)``: the subject as written (``"001"``), the age in
        years.

    Raises:
        ValueError: If the name is not ``<subject>A<age>[letter].<ext>``.
    """
    match = _NAME_PATTERN.match(pathlib.Path(name).stem)
    if match is None:
        raise ValueError(f"{name}: not an FG-NET name <subject>A<age>[letter].")
    return match["subject"], int(match["age"])


def read_fgnet(directory: Union[str, os.PathLike]) -> sample_table.SampleTable:
    """Reads an FG-NET ``images`` folder (non-recursive).

    Args:
        directory: The folder of ``*.JPG`` files.

    Returns:
        A :class:`SampleTable` named ``"fgnet"`` with ``subject`` set; names
        that do not parse are skipped and listed in ``report["skipped"]``.

    Raises:
        FileNotFoundError: If ``directory`` does not exist.
    """
    root = pathlib.Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: FG-NET folder not found.")
    report = {"dataset": "fgnet", "source": str(root), "skipped": []}
    paths, ages, subjects = [], [], []
    for path in sorted(root.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        try:
            subject, age = parse_fgnet_filename(path.name)
        except ValueError as error:
            sample_table.skip(report, path, str(error))
            continue
        paths.append(str(path))
        ages.append(age)
        subjects.append(subject)
    return sample_table.SampleTable.from_columns(paths, ages, subject=subjects, report=report, name="fgnet")
