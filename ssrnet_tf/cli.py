"""The ``ssrnet-tf`` command line: a thin layer over the library.

Each sub-command lives in :mod:`ssrnet_tf.commands` with an ``add_parser``
and a ``run`` function.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``ssrnet-tf``."""
    from ssrnet_tf.commands import COMMANDS  # pylint: disable=import-outside-toplevel

    parser = argparse.ArgumentParser(
        prog="ssrnet-tf", description="Compact, deployable facial age estimation."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``ssrnet-tf`` console script.

    A refused or failed command prints one line and returns its
    :class:`ssrnet_tf.errors.ExitCode`; ``--debug`` (anywhere on the command
    line) or ``SSRNET_TF_DEBUG=1`` shows the traceback instead.
    """
    from ssrnet_tf import errors  # pylint: disable=import-outside-toplevel

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or errors.debug_enabled()
    argv = [a for a in argv if a != "--debug"]
    parser = build_parser()
    parser.add_argument("--debug", action="store_true", help=f"show tracebacks of errors [${errors.DEBUG_ENV}=1]")
    try:
        args = parser.parse_args(argv)
        return int(args.handler(args) or 0)
    except (KeyboardInterrupt, Exception) as error:  # pylint: disable=broad-except  # one line and an exit code
        if debug:
            raise
        code, message = errors.classify(error)
    command = argv[0] if argv and not argv[0].startswith("-") else ""
    print(f"ssrnet-tf{' ' + command if command else ''}: error: {message}", file=sys.stderr)
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
