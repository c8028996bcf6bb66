"""``ssrnet-tf weights``: list the published weights, or fetch one."""

from __future__ import annotations

import argparse
import os

from ssrnet_tf.commands.common import WEIGHTS_DIR_ENV


def run(args: argparse.Namespace) -> int:
    """Lists the published weights, or fetches one into the cache."""
    from ssrnet_tf import pretrained  # pylint: disable=import-outside-toplevel

    if args.name is None:
        for entry in pretrained.REGISTRY.values():
            print(f"{entry.name:16s} {entry.description}\n{'':16s} {entry.url}")
        print(f"cache: {pretrained.default_cache_dir()}")
        return 0
    path = pretrained.get_weights_path(
        args.name, weights_dir=args.weights_dir or os.environ.get(WEIGHTS_DIR_ENV)
    )
    print(path)
    return 0


def add_parser(commands) -> None:
    """Adds ``weights`` to the ``ssrnet-tf`` sub-command parsers."""
    weights = commands.add_parser("weights", help="list the published weights, or fetch one")
    weights.add_argument("name", nargs="?", help="registry name to fetch into the cache")
    weights.add_argument("--weights-dir", help="local folder searched first")
    weights.set_defaults(handler=run)
