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
    """Entry point of the ``ssrnet-tf`` console script."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (FileNotFoundError, KeyError, ValueError, OSError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"ssrnet-tf {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
