"""Atomic file writes: a crash never leaves a half-written artefact.

Temporary files are named ``<target>.<pid>.<random>.tmp`` beside their
target (folders made by :func:`temp_dir` likewise), get the permissions a
plain ``open()`` would (``0666`` minus the umask, not ``mkstemp``'s
``0600``), and are recognisable: :func:`remove_temp_files` deletes those
left by processes that are no longer running (a killed write).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import shutil
import tempfile
import threading
from typing import Iterator, List, Union

PathLike = Union[str, os.PathLike]

_TEMP_NAME = re.compile(r"\.(\d+)\.[^.]*\.tmp(\.|$)")
_UMASK_LOCK = threading.Lock()


def file_mode() -> int:
    """The mode a plain ``open(path, "w")`` gives a new file (``0o666 & ~umask``)."""
    with _UMASK_LOCK:  # the umask can only be read by setting it
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


def temp_prefix(path: PathLike) -> str:
    """Prefix of the temporary names of ``path`` written by this process."""
    return f"{pathlib.Path(path).name}.{os.getpid()}."


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is a temporary file or folder of this module (or Keras' own)."""
    return bool(_TEMP_NAME.search(name)) or "tmp" in name.split(".")[1:]


def _owner_running(name: str) -> bool:
    match = _TEMP_NAME.search(name)
    if match is None:
        return False
    pid = int(match.group(1))
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_temp_files(folder: PathLike, *, recursive: bool = True, prefix: str = "") -> List[pathlib.Path]:
    """Deletes temporary files and folders left in ``folder`` by killed writes.

    Only names :func:`is_temp_name` recognises are touched, and only those
    whose writing process is no longer running.

    Args:
        folder: Where to look.
        recursive: Also look in sub-folders.
        prefix: Only names starting with this (e.g. one target's name).

    Returns:
        The paths removed.
    """
    folder = pathlib.Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(prefix) and is_temp_name(entry.name) and not _owner_running(entry.name):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
        elif recursive and entry.is_dir() and not entry.is_symlink():
            removed += remove_temp_files(entry, recursive=True, prefix=prefix)
    return removed


def atomic_write_bytes(path: PathLike, data: bytes) -> pathlib.Path:
    """Writes ``data`` to ``path`` via a temporary file and a rename.

    The previous content of ``path`` (if any) stays intact until the new
    content is completely on disk. The file gets the user's normal
    permissions. (Stale temporary files of killed writes are removed by
    :func:`remove_temp_files`, which callers run on their output folder.)

    Args:
        path: Destination file; parent folders are created.
        data: Bytes to write.

    Returns:
        ``path`` as a ``pathlib.Path``.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), file_mode())
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.remove(tmp_name)
    return path


@contextlib.contextmanager
def temp_dir(path: PathLike) -> Iterator[pathlib.Path]:
    """A temporary folder beside ``path`` (same file system, so renames are atomic).

    Removed on exit; if the process is killed, :func:`remove_temp_files`
    recognises it.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_temp_files(path.parent, recursive=False, prefix=f".{path.name}.")
    with tempfile.TemporaryDirectory(dir=path.parent, prefix="." + temp_prefix(path), suffix=".tmp") as tmp:
        yield pathlib.Path(tmp)
