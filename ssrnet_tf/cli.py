"""The ``ssrnet-tf`` command line: a thin layer over the library.

Each sub-command lives in :mod:`ssrnet_tf.commands` with an ``add_parser``
and a ``run`` function, and an ``EXAMPLES`` tuple shown at the end of its
``--help``. TensorFlow's native start-up logs are hidden unless
``--verbose`` is given (:mod:`ssrnet_tf.utils.quiet`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import textwrap
from typing import List, Optional

OVERVIEW = """\
Facial age estimation that fits on a phone: SSR-Net and Keras Applications
backbones with age heads, training on UTKFace-style folders, .tflite export
and a CPU benchmark.

first steps:
  ssrnet-tf predict photo.jpg --annotate out/              ages of the faces in a photo
  ssrnet-tf train --config ssrnet data.path=UTKFace/         train on UTKFace
  ssrnet-tf export imdb --out age.tflite                     a phone-ready file
  ssrnet-tf bench                                            CPU latency, every export mode

`ssrnet-tf COMMAND --help` explains a command, with examples.
"""


class _HelpFormatter(argparse.HelpFormatter):
    """Wraps prose paragraphs; keeps indented blocks (examples) as written."""

    def _fill_text(self, text, width, indent):
        blocks = []
        for block in text.strip("\n").split("\n\n"):
            lines = block.splitlines()
            if any(line.startswith("  ") or line.endswith(":") for line in lines):
                blocks.append("\n".join(indent + line for line in lines))
            else:
                blocks.append(textwrap.fill(" ".join(block.split()), width, initial_indent=indent,
                                            subsequent_indent=indent))
        return "\n\n".join(blocks)


def _version() -> str:
    from ssrnet_tf import __version__  # pylint: disable=import-outside-toplevel

    return f"ssrnet-tf {__version__} (Python {sys.version.split()[0]})"


def _examples_epilog(examples) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in examples)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``ssrnet-tf``."""
    from ssrnet_tf.commands import COMMANDS  # pylint: disable=import-outside-toplevel

    parser = argparse.ArgumentParser(
        prog="ssrnet-tf", description=OVERVIEW, formatter_class=_HelpFormatter
    )
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's start-up logs and converter messages (hidden by default)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        known = set(commands.choices)
        command.add_parser(commands)
        for name in set(commands.choices) - known:
            sub = commands.choices[name]
            sub.formatter_class = _HelpFormatter
            sub.epilog = _examples_epilog(getattr(command, "EXAMPLES", ()))
            # SUPPRESS: `ssrnet-tf --verbose CMD` is not reset by the sub-parser's default.
            sub.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                             help="show TensorFlow's start-up logs and converter messages")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``ssrnet-tf`` console script.

    Bare ``ssrnet-tf`` prints the overview. TensorFlow's native start-up logs
    are filtered off stderr unless ``--verbose``. A refused or failed command
    prints one line and returns its :class:`ssrnet_tf.errors.ExitCode`;
    ``--debug`` (anywhere on the command line) or ``SSRNET_TF_DEBUG=1``
    shows the traceback instead.
    """
    from ssrnet_tf import errors  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.utils import quiet  # pylint: disable=import-outside-toplevel

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or errors.debug_enabled()
    argv = [a for a in argv if a != "--debug"]
    parser = build_parser()
    parser.add_argument("--debug", action="store_true", help=f"show tracebacks of errors [${errors.DEBUG_ENV}=1]")
    args = parser.parse_args(argv)
    if getattr(args, "command", None) is None:
        parser.print_help()
        return 0
    if getattr(args, "verbose", False):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
        filtered = contextlib.nullcontext()
    else:
        filtered = quiet.quiet_native_logs()
    with filtered:
        try:
            return int(args.handler(args) or 0)
        except (KeyboardInterrupt, Exception) as error:  # pylint: disable=broad-except  # one line and an exit code
            if debug:
                raise
            code, message = errors.classify(error)
    print(f"ssrnet-tf {args.command}: error: {message}", file=sys.stderr)
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
