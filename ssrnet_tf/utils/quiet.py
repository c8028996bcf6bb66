"""Keeps TensorFlow's start-up logs and converter chatter off the terminal.

TensorFlow, absl and the TFLite converter write to the process's standard
error from C++ (``I0000 ... port.cc:153] oneDNN custom operations are on``,
``E0000 ... failed call to cuInit``, ``fully_quantize: 0, ...``), before and
regardless of Python's logging. None of it is about the user's command, and
``E0000 ... CUDA error`` on a CPU machine reads like a failure.

:func:`quiet_native_logs` routes file descriptor 2 through a pipe and drops
the lines that match :data:`NATIVE_LOG_LINE`; every other byte (Python
warnings, tracebacks, our own messages, progress bars) is passed on as it
comes. The command line turns it on unless ``--verbose`` is given.

:func:`native_stderr_silenced` discards everything C libraries write to
file descriptor 2 inside a block (libjpeg/libpng complaints about a
damaged file the toolkit reports itself).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
import warnings
from typing import Iterator

#: Lines written by TensorFlow/absl/LiteRT native code, not by ssrnet-tf.
NATIVE_LOG_LINE = re.compile(
    rb"^(?:[IWEF]\d{4} [\d:. ]+\d+ [\w.\-/]+:\d+\] "  # absl/TSL: I0000 00:00:17.. 1234 port.cc:153] ...
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|INFO: Created TensorFlow Lite (?:XNNPACK )?delegate"
    rb"|INFO: Initialized TensorFlow Lite runtime"
    rb"|fully_quantize: \d"
    rb"|Estimated count of arithmetic ops"
    rb"|WARNING: Logging before InitGoogleLogging)"
)

#: Python warnings of the libraries that say nothing about the user's input.
LIBRARY_WARNINGS = (
    # tf.lite's own QuantizationDebugger still builds a tf.lite.Interpreter inside the converter.
    r"\s*Warning: tf\.lite\.Interpreter is deprecated",
    # The converter with a float input and int8 inside: the calibration supplies the statistics.
    r"Statistics for quantized inputs were expected",
)


@contextlib.contextmanager
def library_warnings_ignored() -> Iterator[None]:
    """Ignores :data:`LIBRARY_WARNINGS` inside the block only (library calls)."""
    with warnings.catch_warnings():
        for message in LIBRARY_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=UserWarning)
        yield


def silence_library_warnings() -> None:
    """Filters :data:`LIBRARY_WARNINGS` and TensorFlow/absl Python logging."""
    for message in LIBRARY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=UserWarning)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)


class _LineFilter:
    """Copies bytes from a pipe to a file descriptor, minus native log lines."""

    def __init__(self, read_fd: int, write_fd: int):
        self._read_fd, self._write_fd = read_fd, write_fd
        self._pending = b""
        self.thread = threading.Thread(target=self._run, name="ssrnet-tf-stderr-filter", daemon=True)

    def _emit(self, data: bytes) -> None:
        while data:
            data = data[os.write(self._write_fd, data):]

    def _feed(self, chunk: bytes) -> None:
        data = self._pending + chunk
        lines = data.split(b"\n")
        self._pending = lines.pop()
        kept = [line + b"\n" for line in lines if not NATIVE_LOG_LINE.match(line)]
        if b"\r" in self._pending and not NATIVE_LOG_LINE.match(self._pending):
            # A progress bar redraws its line with "\r": pass it on now.
            cut = self._pending.rindex(b"\r") + 1
            kept.append(self._pending[:cut])
            self._pending = self._pending[cut:]
        self._emit(b"".join(kept))

    def _run(self) -> None:
        while True:
            chunk = os.read(self._read_fd, 65536)
            if not chunk:
                break
            self._feed(chunk)
        if self._pending and not NATIVE_LOG_LINE.match(self._pending):
            self._emit(self._pending)
        os.close(self._read_fd)


@contextlib.contextmanager
def quiet_native_logs() -> Iterator[None]:
    """Hides native TensorFlow/absl/LiteRT log lines on stderr inside the block.

    Also sets ``TF_CPP_MIN_LOG_LEVEL=3`` (unless the user set it) and
    applies :func:`silence_library_warnings`. Does nothing where standard
    error has no file descriptor (some notebook front ends).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    silence_library_warnings()
    try:
        sys.stderr.flush()
        original = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    read_fd, write_fd = os.pipe()
    line_filter = _LineFilter(read_fd, original)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    line_filter.thread.start()
    try:
        yield
    finally:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(original, 2)  # closes the pipe's last write end: the filter drains and stops
        line_filter.thread.join(timeout=5)
        os.close(original)


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
