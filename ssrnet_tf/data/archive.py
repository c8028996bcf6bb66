"""A face dataset given as a folder or as an archive of one.

Users get UTKFace as ``UTKFace.tar.gz`` (the authors' download) or as a zip
(mirrors), upload it to Colab or keep it on Google Drive.
:func:`faces_folder` turns either, or an already extracted folder, into
the folder of images that the readers take (``data.path`` of a config,
``--data`` of ``ssrnet-tf evaluate``).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import tarfile
import zipfile
from typing import Optional, Union

from ssrnet_tf.data import utkface

PathLike = Union[str, os.PathLike]

#: Archive name endings :func:`faces_folder` extracts.
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz", ".zip")


def _largest_image_folder(root: pathlib.Path) -> pathlib.Path:
    best, best_count = None, 0
    for directory, _, names in os.walk(root):  # top-down: on a tie the outer folder wins
        count = sum(1 for name in names if os.path.splitext(name)[1].lower() in utkface.IMAGE_SUFFIXES)
        if count > best_count:
            best, best_count = pathlib.Path(directory), count
    if best is None:
        raise ValueError(f"{root}: no {'/'.join(utkface.IMAGE_SUFFIXES)} images in it or its subfolders.")
    return best


def _archive_stem(path: pathlib.Path) -> str:
    name = path.name
    for suffix in ARCHIVE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _safe_tar_extract(archive: tarfile.TarFile, destination: pathlib.Path) -> None:
    if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4
        archive.extractall(destination, filter="data")
        return
    for member in archive.getmembers():
        target = (destination / member.name).resolve()
        if member.issym() or member.islnk() or not str(target).startswith(str(destination.resolve())):
            raise ValueError(f"unsafe archive member {member.name!r} (link or path outside the folder).")
    archive.extractall(destination)  # noqa: S202 (members checked above)


def extract_archive(archive: PathLike, destination: PathLike) -> pathlib.Path:
    """Extracts a ``.tar(.gz|.bz2|.xz)``/``.tgz``/``.zip`` archive once.

    The archive is unpacked into ``destination/.NAME.partial`` and renamed
    to ``destination/NAME`` when complete, so an interrupted extraction is
    redone and a finished one is reused.

    Args:
        archive: The archive file.
        destination: Folder that receives the ``NAME`` folder (the archive
            name without its suffix).

    Returns:
        The extracted folder.

    Raises:
        FileNotFoundError: If ``archive`` does not exist.
        ValueError: If it is not a tar or zip archive, or a member would
            land outside the folder.
    """
    archive = pathlib.Path(archive)
    if not archive.is_file():
        raise FileNotFoundError(f"{archive}: archive not found.")
    target = pathlib.Path(destination) / _archive_stem(archive)
    if target.is_dir():
        return target
    partial = target.with_name(f".{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as opened:
            opened.extractall(partial)  # zipfile drops absolute paths and '..'
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as opened:
            _safe_tar_extract(opened, partial)
    else:
        shutil.rmtree(partial, ignore_errors=True)
        raise ValueError(f"{archive}: not a tar or zip archive (expected one of {', '.join(ARCHIVE_SUFFIXES)}).")
    os.replace(partial, target)
    return target


def faces_folder(source: PathLike, extract_to: Optional[PathLike] = None) -> pathlib.Path:
    """The folder of face images in ``source`` (a folder or an archive).

    Of the folder and its subfolders, the one holding the most images
    (``UTKFace/`` inside a download). An archive is extracted first with
    :func:`extract_archive`.

    Args:
        source: A folder, or an archive file (:data:`ARCHIVE_SUFFIXES`).
        extract_to: Where an archive is extracted [the archive's folder].

    Returns:
        The image folder.

    Raises:
        FileNotFoundError: If ``source`` does not exist.
        ValueError: If no images are found, or the file is not an archive.

    Example:

    >>> faces_folder("UTKFace.tar.gz", "data")  # doctest: +SKIP
    PosixPath('data/UTKFace/UTKFace')
    """
    source = pathlib.Path(source)
    if source.is_dir():
        return _largest_image_folder(source)
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such folder or archive.")
    return _largest_image_folder(extract_archive(source, extract_to if extract_to is not None else source.parent))
