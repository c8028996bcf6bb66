"""Atomic file writes: a crash never leaves a half-written artefact."""

from __future__ import annotations

import os
import pathlib
import tempfile
from typing import Union


def atomic_write_bytes(path: Union[str, os.PathLike], data: bytes) -> pathlib.Path:
    """Writes ``data`` to ``path`` via a temporary file and a rename.

    The previous content of ``path`` (if any) stays intact until the new
    content is completely on disk.

    Args:
        path: Destination file; parent folders are created.
        data: Bytes to write.

    Returns:
        ``path`` as a ``pathlib.Path``.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.remove(tmp_name)
    return path
