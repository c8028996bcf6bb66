"""Walking a folder of images: every entry is either used or reported.

:func:`walk_images` is the one folder walk of the toolkit (UTKFace-style
folders, ``predict`` and ``prepare`` inputs). It returns the image files
it will use and, for every other entry it met, the reason it is not used:
hidden files and folders, dangling symbolic links, symbolic-link loops and
folders reached twice through links, sub-folders of a flat (non-recursive)
walk, image formats the toolkit cannot decode (``.gif``, ``.heic``...),
files that are not images by name, special files (FIFOs, sockets,
devices: opening one could block forever), unreadable folders.

File names that are not valid UTF-8 are kept (Python holds them as
surrogate-escaped ``str``; :func:`display_path` prints them and
:func:`ssrnet_tf.data.decode` / ``tf.data`` receive their raw bytes).
"""

from __future__ import annotations

import dataclasses
import errno
import os
import pathlib
import stat as stat_lib
from typing import Dict, Iterable, List, Optional, Set, Union

PathLike = Union[str, os.PathLike]

#: Image formats people have that the decoders here cannot read.
UNSUPPORTED_IMAGE_SUFFIXES = (".gif", ".heic", ".heif", ".avif", ".svg", ".psd", ".raw", ".cr2", ".nef",
                              ".arw", ".dng", ".ico", ".jxl", ".exr", ".hdr")


@dataclasses.dataclass
class FolderWalk:
    """What a walk found.

    Attributes:
        files: Image files to use, sorted.
        skipped: One ``{"path", "reason"}`` per entry not used.
    """

    files: List[pathlib.Path] = dataclasses.field(default_factory=list)
    skipped: List[Dict[str, str]] = dataclasses.field(default_factory=list)

    def skip(self, path: PathLike, reason: str) -> None:
        """Records an entry that is not used."""
        self.skipped.append({"path": display_path(path), "reason": reason})


def display_path(path: PathLike) -> str:
    """``path`` as printable text: bytes that are not UTF-8 become ``\\xNN``."""
    return os.fsencode(os.fspath(path)).decode("utf-8", "backslashreplace")


def is_utf8_name(path: PathLike) -> bool:
    """Whether the file name is valid UTF-8 (else Python holds surrogates)."""
    try:
        os.fspath(path).encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def walk_images(root: PathLike, suffixes: Iterable[str], *, recursive: bool = True,
                what: str = "image folder") -> FolderWalk:
    """Lists the image files under ``root`` and why every other entry is not used.

    Symbolic links to files and folders are followed; a folder reached a
    second time (a link loop, or two links to one folder) is reported, not
    searched again.

    Args:
        root: The folder.
        suffixes: Lower-case file suffixes that are images (``".jpg"``...).
        recursive: Search sub-folders; ``False`` reports them instead.
        what: How the folder is called in the error message.

    Returns:
        A :class:`FolderWalk`.

    Raises:
        FileNotFoundError: If ``root`` does not exist.
        NotADirectoryError: If it is a file.
    """
    root = pathlib.Path(root)
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"{display_path(root)}: expected a {what}, got a file.")
    if not root.is_dir():
        raise FileNotFoundError(f"{display_path(root)}: {what} not found.")
    suffixes = tuple(s.lower() for s in suffixes)
    walk = FolderWalk()
    _walk(root, suffixes, recursive, walk, {os.path.realpath(root)})
    walk.files.sort()
    walk.skipped.sort(key=lambda entry: entry["path"])
    return walk


def _walk(folder: pathlib.Path, suffixes, recursive: bool, walk: FolderWalk, seen: Set[str]) -> None:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as error:
        walk.skip(folder, f"unreadable folder ({error.strerror})")
        return
    for entry in entries:
        path = pathlib.Path(entry.path)
        if entry.name.startswith("."):
            walk.skip(path, "hidden " + ("folder (not searched)" if entry.is_dir() else "file (name starts with '.')"))
            continue
        problem = _stat_problem(path)
        if isinstance(problem, str):
            walk.skip(path, problem)
            continue
        mode = problem.st_mode
        if stat_lib.S_ISDIR(mode):
            real = os.path.realpath(path)
            if not recursive:
                walk.skip(path, "a folder, not an image file (this folder is not searched recursively)")
            elif real in seen:
                walk.skip(path, f"symbolic link to a folder already searched ({display_path(real)})")
            else:
                seen.add(real)
                _walk(path, suffixes, recursive, walk, seen)
            continue
        reason = _file_problem(path, mode, suffixes)
        if reason is None:
            walk.files.append(path)
        else:
            walk.skip(path, reason)


def _stat_problem(path: pathlib.Path):
    """``os.stat`` result following links, or why there is none."""
    try:
        return os.stat(path)
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "symbolic link loop"
        if error.errno == errno.ENOENT and os.path.islink(path):
            return f"dangling symbolic link (target {display_path(os.readlink(path))} does not exist)"
        return f"unreadable ({error.strerror})"


def _file_problem(path: pathlib.Path, mode: int, suffixes) -> Optional[str]:
    if not stat_lib.S_ISREG(mode):
        return "not a regular file (FIFO, socket or device)"
    suffix = path.suffix.lower()
    if suffix in suffixes:
        return None
    if suffix in UNSUPPORTED_IMAGE_SUFFIXES:
        return f"unsupported image format {suffix} (supported: {', '.join(suffixes)})"
    return f"not an image file name (suffix {suffix or 'none'}; images are {', '.join(suffixes)})"
