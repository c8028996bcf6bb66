"""Turning labelled raw photos into an aligned-crop training set.

The library behind ``ssrnet-tf prepare``. Every photo goes through the
same :class:`ssrnet_tf.faces.FaceCropper` that ``ssrnet-tf predict`` uses,
so a model trained on the result sees, at inference, crops made the same
way. The output folder::

    OUT/images/...            one crop per face kept (same sub-folders as
                              the photos; UTKFace-style names stay parsable)
    OUT/index.csv             path,age,gender,race,source (paths relative to
                              OUT): read it with
                              ssrnet_tf.data.csv_table.read_csv_table
    OUT/report.json           settings, counts, and every photo with no
                              face, several faces, unreadable data or an
                              unusable label
    OUT/.prepare/             settings.json and ledger.jsonl, the resume state

Runs are resumable and idempotent: each crop is written atomically (a temp
file renamed into place) before its photo is recorded in the ledger, so a
crash leaves no half-written file, and a re-run skips every photo the
ledger has (unless the photo's size or modification time changed or one of
its crops is gone). ``index.csv`` and ``report.json`` are rebuilt, again
atomically, from the current label table and the ledger at the end of each
run. A folder prepared with other crop settings is refused rather than
mixed.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import pathlib
from typing import Dict, List, Optional, Tuple, Union

from ssrnet_tf.faces.loaded_image import IMAGE_SUFFIXES, MAX_PIXELS, ImageReadError, load_image
from ssrnet_tf.utils.atomic import atomic_write_bytes

PathLike = Union[str, os.PathLike]
INDEX_COLUMNS = ("path", "age", "gender", "race", "source")
IMAGE_FORMATS = ("jpg", "png")
_STATE_DIR = ".prepare"


@dataclasses.dataclass(frozen=True)
class LabelledPhoto:
    """One row of the label table.

    Attributes:
        source: The photo file.
        relative: Its path relative to the photo folder (POSIX), or the
            file name for photos outside it.
        age: Years.
        gender: 0 male, 1 female, -1 missing.
        race: 0-4 (UTKFace codes), -1 missing.
    """

    source: pathlib.Path
    relative: str
    age: float
    gender: int = -1
    race: int = -1


def _relative(path: pathlib.Path, root: pathlib.Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name


def read_labels(photo_dir: PathLike, labels_csv: Optional[PathLike] = None) -> Tuple[List[LabelledPhoto], List[Dict]]:
    """Reads the label table of a photo folder.

    Args:
        photo_dir: Folder of the photos.
        labels_csv: CSV with a header and the columns ``path`` and ``age``,
            optionally ``gender`` and ``race`` (codes or words, as
            :mod:`ssrnet_tf.data.csv_table` reads them); relative paths
            start at ``photo_dir``. ``None``: labels come from UTKFace-style
            file names ``AGE_GENDER_RACE_*.jpg`` of every image under
            ``photo_dir``.

    Returns:
        ``(photos, bad_labels)``; ``bad_labels`` holds one
        ``{"path", "reason"}`` per row or file name without a usable age,
        and per repeated path.

    Raises:
        FileNotFoundError: If the folder or the CSV does not exist.
        ValueError: If the CSV header lacks ``path`` or ``age``.
    """
    from ssrnet_tf.data import csv_table, utkface  # pylint: disable=import-outside-toplevel

    root = pathlib.Path(photo_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: photo folder not found.")
    photos: List[LabelledPhoto] = []
    bad: List[Dict] = []
    if labels_csv is not None:
        _, rows = csv_table.read_rows(pathlib.Path(labels_csv), ("path", "age"), what="label table")
        for line, row in enumerate(rows, start=2):
            where = f"{labels_csv}:{line}"
            if not row["path"]:
                bad.append({"path": where, "reason": "empty path"})
                continue
            source = pathlib.Path(row["path"])
            source = source if source.is_absolute() else root / source
            try:
                age = csv_table.parse_age(row["age"])
            except ValueError as error:
                bad.append({"path": str(source), "reason": f"{error} ({where})"})
                continue
            photos.append(LabelledPhoto(source, _relative(source, root), age,
                                        csv_table.parse_gender(row.get("gender", "")),
                                        csv_table.parse_race(row.get("race", ""))))
    else:
        for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
            if any(part.startswith(".") for part in path.relative_to(root).parts):
                continue
            try:
                age, gender, race = utkface.parse_utkface_filename(path.name)
            except ValueError as error:
                bad.append({"path": str(path), "reason": str(error)})
                continue
            photos.append(LabelledPhoto(path, _relative(path, root), float(age),
                                        -1 if gender is None else gender, -1 if race is None else race))
    unique, seen = [], set()
    for photo in photos:
        if photo.relative in seen:
            bad.append({"path": str(photo.source), "reason": "listed more than once; the first row is used"})
            continue
        seen.add(photo.relative)
        unique.append(photo)
    return unique, bad


def _crop_stems(photos: List[LabelledPhoto]) -> Dict[str, str]:
    """Output stem (relative, no suffix) per photo; clashes keep full names."""
    stems = {p.relative: str(pathlib.PurePosixPath(p.relative).with_suffix("")) for p in photos}
    counts: Dict[str, int] = {}
    for stem in stems.values():
        counts[stem] = counts.get(stem, 0) + 1
    for relative, stem in stems.items():
        if counts[stem] > 1:  # a.jpg and a.png -> a_jpg, a_png
            path = pathlib.PurePosixPath(relative)
            stems[relative] = str(path.with_name(path.name.replace(".", "_")))
    return stems


def _stamp(path: pathlib.Path) -> List[int]:
    try:
        stat = path.stat()
    except OSError:
        return [-1, -1]
    return [int(stat.st_size), int(stat.st_mtime_ns)]


def _read_ledger(path: pathlib.Path) -> Dict[str, Dict]:
    entries: Dict[str, Dict] = {}
    if not path.is_file():
        return entries
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                entry = json.loads(line)
                entries[entry["source"]] = entry
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a crash: that photo is simply redone
    return entries


def _settings(cropper, image_format: str, skip_multi_face: bool) -> Dict:
    detector = cropper.detector
    return {
        "input_size": list(cropper.output_size),
        "alignment": cropper.spec.alignment,
        "margin": cropper.spec.margin,
        "policy": cropper.policy,
        "min_face_size": getattr(detector, "min_face_size", None),
        "min_score": getattr(detector, "min_score", None),
        "max_detection_side": getattr(detector, "max_side", None),
        "border_retry": getattr(detector, "border_retry", None),
        "format": image_format,
        "skip_multi_face": skip_multi_face,
    }


def _check_settings(state_dir: pathlib.Path, settings: Dict, output_dir: pathlib.Path) -> None:
    path = state_dir / "settings.json"
    if path.is_file():
        previous = json.loads(path.read_text(encoding="utf-8"))
        if previous != settings:
            changed = sorted(k for k in set(previous) | set(settings) if previous.get(k) != settings.get(k))
            raise ValueError(
                f"{output_dir} was prepared with other settings ({', '.join(f'{k}: {previous.get(k)!r} -> {settings.get(k)!r}' for k in changed)}); "
                "use another output folder, or delete this one to start again."
            )
    else:
        atomic_write_bytes(path, json.dumps(settings, indent=2, sort_keys=True).encode("utf-8"))


def _process(photo: LabelledPhoto, stem: str, cropper, output_dir: pathlib.Path, image_format: str,
             skip_multi_face: bool, max_pixels: int) -> Dict:
    """Crops one photo; returns its ledger entry."""
    import cv2  # pylint: disable=import-outside-toplevel

    entry = {"source": photo.relative, "stamp": _stamp(photo.source), "crops": [], "faces": 0}
    try:
        loaded = load_image(photo.source, max_pixels=max_pixels)
    except ImageReadError as error:
        return {**entry, "status": "unreadable", "error": str(error)}
    try:
        detections = cropper.detector.detect(loaded.image)
    except Exception as error:  # pylint: disable=broad-except  # one bad photo must not stop the run
        return {**entry, "status": "unreadable", "error": f"{photo.source}: face detection failed: {type(error).__name__}: {error}"}
    entry["faces"] = len(detections)
    if loaded.notes:
        entry["notes"] = loaded.notes
    if not detections:
        return {**entry, "status": "no_face"}
    if len(detections) > 1 and skip_multi_face:
        return {**entry, "status": "several_faces"}
    kept = cropper.select(detections)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if image_format == "jpg" else []
    for index, detection in enumerate(kept):
        face = cropper.crop(loaded.image, detection)
        name = f"{stem}.{image_format}" if len(kept) == 1 else f"{stem}_face{index}.{image_format}"
        ok, encoded = cv2.imencode(f".{image_format}", face.crop, params)
        if not ok:
            raise OSError(f"could not encode the crop of {photo.source} as {image_format}.")
        atomic_write_bytes(output_dir / "images" / name, encoded.tobytes())
        entry["crops"].append(f"images/{name}")
    entry["scores"] = [round(d.score, 4) for d in kept]
    return {**entry, "status": "ok"}


def prepare_crop_dataset(
    photo_dir: PathLike,
    output_dir: PathLike,
    cropper,
    *,
    labels_csv: Optional[PathLike] = None,
    image_format: str = "jpg",
    skip_multi_face: bool = False,
    max_pixels: int = MAX_PIXELS,
    progress: bool = True,
) -> Dict:
    """Crops every labelled photo and writes the crop dataset.

    Args:
        photo_dir: Folder of raw photos.
        output_dir: Dataset folder (created; re-running resumes it).
        cropper: The :class:`ssrnet_tf.faces.FaceCropper`; its policy picks
            the face(s) kept from photos with several (``"largest"`` suits
            training labels; ``"all"`` gives every face the photo's label).
        labels_csv: Label table, see :func:`read_labels`; ``None`` for
            UTKFace-style file names.
        image_format: ``"jpg"`` (quality 95) or ``"png"``.
        skip_multi_face: Keep no crop from photos with several faces.
        max_pixels: Pixel budget for decoding huge photos.
        progress: Show a tqdm progress bar (stderr).

    Returns:
        The report also written to ``OUT/report.json``.

    Raises:
        FileNotFoundError: If the folder or label table is missing.
        ValueError: For a bad format, or an output folder prepared with
            other settings.
    """
    from tqdm.auto import tqdm  # pylint: disable=import-outside-toplevel

    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image_format must be one of {IMAGE_FORMATS}, got {image_format!r}.")
    output_dir = pathlib.Path(output_dir)
    photos, bad_labels = read_labels(photo_dir, labels_csv)
    state_dir = output_dir / _STATE_DIR
    settings = _settings(cropper, image_format, skip_multi_face)
    state_dir.mkdir(parents=True, exist_ok=True)
    _check_settings(state_dir, settings, output_dir)
    for stale in (output_dir / "images").rglob("*.tmp"):
        stale.unlink()  # temp files of a run killed mid-write (never in the index)
    ledger_path = state_dir / "ledger.jsonl"
    ledger = _read_ledger(ledger_path)
    stems = _crop_stems(photos)
    reused = 0
    with open(ledger_path, "a", encoding="utf-8") as ledger_file, \
            tqdm(photos, desc="prepare", unit="photo", disable=not progress, dynamic_ncols=True) as bar:
        for photo in bar:
            done = ledger.get(photo.relative)
            if (done is not None and done.get("stamp") == _stamp(photo.source)
                    and all((output_dir / crop).is_file() for crop in done.get("crops", []))):
                reused += 1
                continue
            entry = _process(photo, stems[photo.relative], cropper, output_dir, image_format, skip_multi_face, max_pixels)
            ledger[photo.relative] = entry
            ledger_file.write(json.dumps(entry) + "\n")
            ledger_file.flush()
    report = _write_outputs(output_dir, photos, ledger, bad_labels, settings, photo_dir, labels_csv)
    report["counts"]["reused"] = reused
    atomic_write_bytes(output_dir / "report.json", json.dumps(report, indent=2).encode("utf-8"))
    return report


def _write_outputs(output_dir, photos, ledger, bad_labels, settings, photo_dir, labels_csv) -> Dict:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(INDEX_COLUMNS)
    report = {
        "photo_dir": str(photo_dir),
        "labels": str(labels_csv) if labels_csv is not None else "UTKFace-style file names",
        "settings": settings,
        "counts": {"photos": len(photos), "cropped": 0, "crops": 0, "no_face": 0, "several_faces": 0,
                   "unreadable": 0, "bad_labels": len(bad_labels)},
        "no_face": [], "several_faces": [], "unreadable": [], "bad_labels": bad_labels,
    }
    for photo in photos:
        entry = ledger[photo.relative]
        status = entry["status"]
        if status == "unreadable":
            report["unreadable"].append({"path": str(photo.source), "error": entry.get("error", "")})
        elif status == "no_face":
            report["no_face"].append({"path": str(photo.source), "reason": "no face found"})
        if entry.get("faces", 0) > 1:
            kept = "none (skip_multi_face)" if status == "several_faces" else entry["crops"]
            report["several_faces"].append({"path": str(photo.source), "faces": entry["faces"], "kept": kept})
        if status == "ok":
            report["counts"]["cropped"] += 1
        elif status in ("unreadable", "no_face"):
            report["counts"][status] += 1
        for crop in entry.get("crops", []):
            writer.writerow([crop, f"{photo.age:g}", "" if photo.gender < 0 else photo.gender,
                             "" if photo.race < 0 else photo.race, photo.relative])
            report["counts"]["crops"] += 1
    report["counts"]["several_faces"] = len(report["several_faces"])
    atomic_write_bytes(output_dir / "index.csv", buffer.getvalue().encode("utf-8"))
    return report


__all__ = ["INDEX_COLUMNS", "LabelledPhoto", "prepare_crop_dataset", "read_labels"]
