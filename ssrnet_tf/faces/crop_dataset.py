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
                              unusable label, and every other entry of the
                              photo folder (skipped_files, with the reason)
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

from ssrnet_tf.data.folder_walk import display_path
from ssrnet_tf.faces.loaded_image import IMAGE_SUFFIXES, MAX_PIXELS, ImageReadError, load_image
from ssrnet_tf.utils.atomic import atomic_write_bytes, remove_temp_files

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
    try:  # as named (a symbolic link keeps its own name and label)
        return path.relative_to(root).as_posix()
    except ValueError:
        pass
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name


def read_labels(photo_dir: PathLike, labels_csv: Optional[PathLike] = None,
                skipped_files: Optional[List[Dict]] = None) -> Tuple[List[LabelledPhoto], List[Dict]]:
    """Reads the label table of a photo folder.

    Args:
        photo_dir: Folder of the photos.
        labels_csv: CSV with a header and the columns ``path`` and ``age``,
            optionally ``gender`` and ``race`` (codes or words, as
            :mod:`ssrnet_tf.data.csv_table` reads them); relative paths
            start at ``photo_dir``. ``None``: labels come from UTKFace-style
            file names ``AGE_GENDER_RACE_*.jpg`` of every image under
            ``photo_dir`` (the age must be in UTKFace's 0-116 and the
            gender field a 0/1 code, so that ``2023_party.jpg`` or
            ``5_friends.jpg`` is not read as an age).
        skipped_files: If given, every entry of the folder walk that is not
            an image (hidden files, links, other formats...) is appended as
            ``{"path", "reason"}``.

    Returns:
        ``(photos, bad_labels)``; ``bad_labels`` holds one
        ``{"path", "reason"}`` per row or file name without a usable or
        plausible age (:mod:`ssrnet_tf.data.label_ranges`), and per
        repeated path.

    Raises:
        FileNotFoundError: If the folder or the CSV does not exist.
        ValueError: If the CSV header lacks ``path`` or ``age``.
    """
    from ssrnet_tf.data import csv_table, utkface  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.data.folder_walk import walk_images  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.data.label_ranges import age_problem  # pylint: disable=import-outside-toplevel

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
                problem = age_problem(age, None)
                if problem is not None:
                    raise ValueError(problem)
            except ValueError as error:
                bad.append({"path": display_path(source), "reason": f"{error} ({where})"})
                continue
            photos.append(LabelledPhoto(source, _relative(source, root), age,
                                        csv_table.parse_gender(row.get("gender", "")),
                                        csv_table.parse_race(row.get("race", ""))))
    else:
        walk = walk_images(root, IMAGE_SUFFIXES, what="photo folder")
        if skipped_files is not None:
            skipped_files += walk.skipped
        for path in walk.files:
            try:
                age, gender, race = utkface.parse_utkface_filename(path.name)
                if gender is None:
                    raise ValueError(f"{path.name}: the name is not AGE_GENDER_RACE_* (no 0/1 gender code "
                                     "after the age); pass --labels for other names.")
            except ValueError as error:
                bad.append({"path": display_path(path), "reason": str(error)[len(path.name) + 2:].rstrip(".")})
                continue
            photos.append(LabelledPhoto(path, _relative(path, root), float(age),
                                        -1 if gender is None else gender, -1 if race is None else race))
    unique, seen = [], set()
    for photo in photos:
        if photo.relative in seen:
            bad.append({"path": display_path(photo.source), "reason": "listed more than once; the first row is used"})
            continue
        seen.add(photo.relative)
        unique.append(photo)
    return unique, bad


def _crop_stems(photos: List[LabelledPhoto]) -> Dict[str, str]:
    """Output stem (relative, no suffix) per photo; clashes keep full names."""
    stems = {p.relative: _utf8_safe(str(pathlib.PurePosixPath(p.relative).with_suffix(""))) for p in photos}
    counts: Dict[str, int] = {}
    for stem in stems.values():
        counts[stem] = counts.get(stem, 0) + 1
    for relative, stem in stems.items():
        if counts[stem] > 1:  # a.jpg and a.png -> a_jpg, a_png
            path = pathlib.PurePosixPath(relative)
            stems[relative] = str(path.with_name(path.name.replace(".", "_")))
    return stems


def _utf8_safe(name: str) -> str:
    """``name`` with bytes that are not UTF-8 replaced by ``_`` (crop names must go into a UTF-8 CSV)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace").replace("\ufffd", "_")


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
    skipped_files: List[Dict] = []
    photos, bad_labels = read_labels(photo_dir, labels_csv, skipped_files)
    state_dir = output_dir / _STATE_DIR
    settings = _settings(cropper, image_format, skip_multi_face)
    state_dir.mkdir(parents=True, exist_ok=True)
    _check_settings(state_dir, settings, output_dir)
    remove_temp_files(output_dir)  # temp files of a run killed mid-write (never in the index)
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
    report = _write_outputs(output_dir, photos, ledger, bad_labels, settings, photo_dir, labels_csv, skipped_files)
    report["counts"]["reused"] = reused
    atomic_write_bytes(output_dir / "report.json", json.dumps(report, indent=2).encode("utf-8"))
    return report


def _write_outputs(output_dir, photos, ledger, bad_labels, settings, photo_dir, labels_csv, skipped_files) -> Dict:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(INDEX_COLUMNS)
    report = {
        "photo_dir": str(photo_dir),
        "labels": str(labels_csv) if labels_csv is not None else "UTKFace-style file names",
        "settings": settings,
        "counts": {"photos": len(photos), "cropped": 0, "crops": 0, "no_face": 0, "several_faces": 0,
                   "unreadable": 0, "bad_labels": len(bad_labels), "skipped_files": len(skipped_files)},
        "no_face": [], "several_faces": [], "unreadable": [], "bad_labels": bad_labels, "skipped_files": skipped_files,
    }
    for photo in photos:
        entry = ledger[photo.relative]
        status = entry["status"]
        if status == "unreadable":
            report["unreadable"].append({"path": display_path(photo.source), "error": entry.get("error", "")})
        elif status == "no_face":
            report["no_face"].append({"path": display_path(photo.source), "reason": "no face found"})
        if entry.get("faces", 0) > 1:
            kept = "none (skip_multi_face)" if status == "several_faces" else entry["crops"]
            report["several_faces"].append({"path": display_path(photo.source), "faces": entry["faces"], "kept": kept})
        if status == "ok":
            report["counts"]["cropped"] += 1
        elif status in ("unreadable", "no_face"):
            report["counts"][status] += 1
        for crop in entry.get("crops", []):
            writer.writerow([crop, f"{photo.age:g}", "" if photo.gender < 0 else photo.gender,
                             "" if photo.race < 0 else photo.race, display_path(photo.relative)])
            report["counts"]["crops"] += 1
    report["counts"]["several_faces"] = len(report["several_faces"])
    atomic_write_bytes(output_dir / "index.csv", buffer.getvalue().encode("utf-8"))
    return report


__all__ = ["INDEX_COLUMNS", "LabelledPhoto", "prepare_crop_dataset", "read_labels"]
