"""Errors the toolkit reports to users, and the exit code of each kind.

Every refused or invalid input ends a command with one line on stderr,
``ssrnet-tf COMMAND: error: MESSAGE``, and a distinct exit code
(:class:`ExitCode`); the Python traceback is shown only with ``--debug``
or ``SSRNET_TF_DEBUG=1``. Library code raises the subclasses below (they
are also ``ValueError``\\ s, so callers that catch ``ValueError`` keep
working); any other exception is mapped by :func:`classify`.
"""

from __future__ import annotations

import enum
import os
from typing import Tuple

#: Environment variable that turns on tracebacks (like ``--debug``).
DEBUG_ENV = "SSRNET_TF_DEBUG"


class ExitCode(enum.IntEnum):
    """Exit status of ``ssrnet-tf`` commands."""

    OK = 0
    USAGE = 2  #: bad command-line argument (argparse uses 2 as well)
    CONFIG = 3  #: invalid experiment config value or key
    NOT_FOUND = 4  #: an input file or folder does not exist
    BAD_INPUT = 5  #: input data unusable (bad table, no usable face, bad image)
    BAD_MODEL = 6  #: a model file that cannot be loaded or is refused as unsafe
    NO_RESULT = 7  #: the command ran but produced nothing (predict: no face in any input)
    IO_ERROR = 8  #: a file could not be read or written (permissions, disk full, ...)
    INTERNAL = 70  #: an unexpected error (a bug): rerun with --debug and report it
    INTERRUPTED = 130  #: Ctrl-C (128 + SIGINT, the shell convention)


class UserError(ValueError):
    """An input the user can fix; the message names the file/key and the problem."""

    exit_code = ExitCode.BAD_INPUT


class ConfigError(UserError):
    """An experiment config key or value that is not allowed."""

    exit_code = ExitCode.CONFIG


class ModelLoadError(UserError):
    """A model file that cannot be loaded, or is refused as unsafe."""

    exit_code = ExitCode.BAD_MODEL


class UsageError(UserError):
    """A command-line argument that is not allowed (e.g. a wrong output suffix)."""

    exit_code = ExitCode.USAGE


def debug_enabled() -> bool:
    """Whether ``SSRNET_TF_DEBUG`` asks for tracebacks."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


def one_line(text: str, limit: int = 600) -> str:
    """``text`` with all whitespace runs (newlines too) collapsed, cut to ``limit``."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def classify(error: BaseException) -> Tuple[ExitCode, str]:
    """The exit code and the one-line message for an exception.

    Args:
        error: What a command raised.

    Returns:
        ``(exit_code, message)``.
    """
    if isinstance(error, KeyboardInterrupt):
        return ExitCode.INTERRUPTED, "interrupted (Ctrl-C); finished outputs are kept and the command can be re-run"
    if isinstance(error, UserError):
        return error.exit_code, one_line(error)
    if isinstance(error, KeyError):
        return ExitCode.BAD_INPUT, one_line(error.args[0] if error.args else error)
    if isinstance(error, FileNotFoundError):
        return ExitCode.NOT_FOUND, one_line(error)
    if isinstance(error, OSError) and error.strerror:
        where = f"{error.filename}: " if error.filename else ""
        return ExitCode.IO_ERROR, one_line(f"{where}{error.strerror}")
    if isinstance(error, (ValueError, OSError, UnicodeError)):
        return ExitCode.BAD_INPUT, one_line(error)
    try:
        import tensorflow as tf  # pylint: disable=import-outside-toplevel

        if isinstance(error, tf.errors.OpError):
            first = (getattr(error, "message", "") or str(error)).strip().splitlines() or [""]
            return ExitCode.BAD_INPUT, one_line(f"TensorFlow: {first[0]}")
    except ImportError:  # pragma: no cover - TensorFlow is a dependency
        pass
    return ExitCode.INTERNAL, one_line(
        f"internal error {type(error).__name__}: {error} (rerun with --debug or {DEBUG_ENV}=1 for the traceback, "
        "and report it)"
    )
