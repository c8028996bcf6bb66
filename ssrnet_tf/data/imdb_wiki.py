"""IMDB-WIKI: ages from the ``imdb.mat`` / ``wiki.mat`` metadata.

The release's ``imdb_crop/imdb.mat`` (and ``wiki_crop/wiki.mat``) holds one
MATLAB struct (``imdb`` or ``wiki``) of 1xN fields: ``full_path`` (cell of
paths relative to the crop folder), ``dob`` (date of birth as a MATLAB serial
date number), ``photo_taken`` (year), ``gender`` (0 female, 1 male, NaN
unknown), ``face_score`` (-Inf where no face was found), ``second_face_score``
(NaN unless a second face was found), ``face_location``, ``name`` and, for
IMDB, ``celeb_names`` / ``celeb_id``.

The age is computed as the dataset's authors did: the photo is taken to be
taken in the middle (1 July) of ``photo_taken``, so
``age = photo_taken - birth_year``, minus one for a birthday in July or later.

Reference:
    Rothe, Timofte and Van Gool, "Deep Expectation of Real and Apparent Age
    from a Single Image Without Facial Landmarks", IJCV 2018 (DEX; the
    IMDB-WIKI dataset).
"""

from __future__ import annotations

import datetime
import logging
import os
import pathlib
from typing import Optional, Union

import numpy as np

from ssrnet_tf.data import sample_table

logger = logging.getLogger(__name__)

# Python's proleptic ordinal counts from 0001-01-01 = 1; MATLAB's datenum
# from 0000-01-01 = 1, and year 0 is a leap year (366 days).
MATLAB_DATENUM_OFFSET = 366
FILTERS = ("invalid_date", "no_face", "multiple_faces", "low_face_score", "age_out_of_range")


def datenum_to_date(datenum: float) -> Optional[datetime.date]:
    """A MATLAB serial date number as a date (``None`` if not a valid date)."""
    if not np.isfinite(datenum):
        return None
    ordinal = int(datenum) - MATLAB_DATENUM_OFFSET
    if ordinal < 1 or ordinal > datetime.date.max.toordinal():
        return None
    return datetime.date.fromordinal(ordinal)


def date_to_datenum(date: datetime.date) -> int:
    """A date as a MATLAB serial date number (inverse of :func:`datenum_to_date`)."""
    return date.toordinal() + MATLAB_DATENUM_OFFSET


def age_at_photo(dob_datenum: float, photo_taken: float) -> Optional[int]:
    """Age in whole years on 1 July of the photo's year (``None`` if unknown).

    Args:
        dob_datenum: Date of birth, MATLAB serial date number.
        photo_taken: Year the photo was taken.

    Returns:
        ``photo_taken - birth.year``, minus one when the birthday falls in
        July or later (the authors' "taken mid-year" convention).
    """
    birth = datenum_to_date(dob_datenum)
    if birth is None or not np.isfinite(photo_taken):
        return None
    return int(photo_taken) - birth.year - (1 if birth.month >= 7 else 0)


def read_imdb_wiki(
    mat_path: Union[str, os.PathLike],
    *,
    image_root: Union[str, os.PathLike, None] = None,
    min_face_score: float = 1.0,
    min_age: int = 0,
    max_age: int = 100,
    drop_multiple_faces: bool = True,
) -> sample_table.SampleTable:
    """Reads ``imdb.mat`` or ``wiki.mat`` and filters it as the DEX / SSR-Net recipes do.

    Rows are dropped, and counted in ``report["filtered"]``, for the first
    of these reasons that applies: ``invalid_date`` (no usable birth date or
    photo year), ``no_face`` (``face_score`` = -Inf), ``multiple_faces``
    (``second_face_score`` not NaN), ``low_face_score`` (``face_score`` <
    ``min_face_score``), ``age_out_of_range`` (outside
    ``[min_age, max_age]``). An unknown gender is kept as -1.

    Args:
        mat_path: ``imdb.mat`` or ``wiki.mat``.
        image_root: Folder ``full_path`` is relative to; default: the
            folder of ``mat_path`` (the release's ``imdb_crop/``).
        min_face_score: Face-detector score threshold (1.0 in the yu4u /
            SSR-Net preparation scripts).
        min_age, max_age: Kept age range, inclusive.
        drop_multiple_faces: Drop photos where a second face was detected.

    Returns:
        A :class:`SampleTable` (``subject`` = ``celeb_id`` for IMDB, the
        person's name for WIKI; ``extra["face_score"]``) whose report has
        ``rows`` (in the file), ``filtered`` (counts per reason) and ``kept``.

    Raises:
        FileNotFoundError: If ``mat_path`` does not exist.
        ValueError: If the file holds no IMDB-WIKI struct.
    """
    import scipy.io  # pylint: disable=import-outside-toplevel

    mat_path = pathlib.Path(mat_path)
    if not mat_path.is_file():
        raise FileNotFoundError(f"{mat_path}: IMDB-WIKI metadata not found.")
    root = pathlib.Path(image_root) if image_root is not None else mat_path.parent
    meta = scipy.io.loadmat(str(mat_path))
    keys = [key for key in meta if not key.startswith("__")]
    db_name = next((key for key in ("imdb", "wiki") if key in meta), keys[0] if len(keys) == 1 else None)
    if db_name is None:
        raise ValueError(f"{mat_path}: expected one struct 'imdb' or 'wiki', found {keys}.")
    db = meta[db_name][0, 0]
    try:
        full_path = [_cell_string(cell) for cell in db["full_path"][0]]
        dob = db["dob"][0].astype(np.float64)
        photo_taken = db["photo_taken"][0].astype(np.float64)
        gender = db["gender"][0].astype(np.float64)
        face_score = db["face_score"][0].astype(np.float64)
        second_face_score = db["second_face_score"][0].astype(np.float64)
    except (KeyError, ValueError, IndexError) as error:
        raise ValueError(f"{mat_path}: struct {db_name!r} lacks an IMDB-WIKI field ({error}).") from None
    names = db.dtype.names
    if "celeb_id" in names:
        subject = [str(int(v)) for v in db["celeb_id"][0]]
    elif "name" in names:
        subject = [_cell_string(cell) for cell in db["name"][0]]
    else:
        subject = None

    n = len(full_path)
    ages = np.array([_or_nan(age_at_photo(d, t)) for d, t in zip(dob, photo_taken)], dtype=np.float64)
    reasons = {
        "invalid_date": ~np.isfinite(ages),
        "no_face": np.isneginf(face_score),
        "multiple_faces": ~np.isnan(second_face_score) if drop_multiple_faces else np.zeros(n, bool),
        "low_face_score": ~(face_score >= min_face_score),
        "age_out_of_range": ~((ages >= min_age) & (ages <= max_age)),
    }
    dropped = np.zeros(n, bool)
    filtered = {}
    for reason in FILTERS:
        hit = reasons[reason] & ~dropped
        filtered[reason] = int(hit.sum())
        dropped |= hit
    keep = ~dropped
    # IMDB-WIKI codes 0 = female, 1 = male; ours are 0 = male, 1 = female.
    codes = np.where(np.isnan(gender), sample_table.MISSING_CODE, 1 - np.nan_to_num(gender)).astype(np.int32)
    report = {
        "dataset": db_name,
        "source": str(mat_path),
        "rows": n,
        "filtered": filtered,
        "kept": int(keep.sum()),
        "min_face_score": min_face_score,
        "age_range": [min_age, max_age],
        "missing_gender": int(np.sum(codes[keep] == sample_table.MISSING_CODE)),
        "skipped": [],
    }
    logger.info("%s: %d rows, kept %d, filtered %s", mat_path, n, report["kept"], filtered)
    index = np.flatnonzero(keep)
    return sample_table.SampleTable.from_columns(
        [str(root / full_path[i]) for i in index],
        ages[index],
        gender=codes[index],
        subject=[subject[i] for i in index] if subject is not None else None,
        extra={"face_score": face_score[index].astype(np.float32)},
        report=report,
        name=db_name,
    )


def _cell_string(cell) -> str:
    """A MATLAB cell entry loaded by scipy (``array(['text'])``) as ``str``."""
    array = np.asarray(cell)
    if array.size == 0:
        return ""
    return str(array.reshape(-1)[0])


def _or_nan(value: Optional[int]) -> float:
    return np.nan if value is None else float(value)
