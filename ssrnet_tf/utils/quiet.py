"""Silencing what C libraries print on stderr when the toolkit reports it anyway."""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def native_stderr_silenced():
    """Discards what C libraries write to file descriptor 2 inside the block.

    libjpeg ("Improper call to JPEG library in state 201"), libpng
    ("IDAT: incorrect header check") and libtiff print their complaint about
    a damaged file themselves; the toolkit names the file and the problem in
    its own report, so that text would only be noise without a file name.
    Python-level writes to ``sys.stderr`` are flushed first and are not
    affected outside the block.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (e.g. some notebook kernels): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
