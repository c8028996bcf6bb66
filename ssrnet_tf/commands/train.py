"""``ssrnet-tf train``: run a named experiment config."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    """Loads the config with overrides and trains it."""
    from ssrnet_tf.training import config as config_lib, trainer  # pylint: disable=import-outside-toplevel

    config = config_lib.load_config(args.config, args.overrides)
    if args.print_config:
        print(config.to_yaml())
        return 0
    trainer.train(config, resume=args.resume, verbose=args.verbose, overrides=args.overrides)
    return 0


def add_parser(commands) -> None:
    """Adds ``train`` to the ``ssrnet-tf`` sub-command parsers."""
    parser = commands.add_parser("train", help="train a named experiment config (training/configs/NAME.yaml)")
    parser.add_argument("--config", required=True, help="config name (ssrnet, agn_..., ldl_..., lae_..., multitask_...) or YAML path")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides, e.g. run.epochs=3 data.limit=500")
    parser.add_argument("--resume", action="store_true", help="continue the interrupted run in run.output_dir")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2), help="Keras progress: 0 silent, 1 bar, 2 line [1]")
    parser.set_defaults(handler=run)
