"""``ssrnet-tf train``: run a named experiment config."""

from __future__ import annotations

import argparse

EXAMPLES = (
    "ssrnet-tf train --config ssrnet data.path=UTKFace/                   # SSR-Net on UTKFace",
    "ssrnet-tf train --config agn_compact data.path=UTKFace/ run.epochs=30 # a compact backbone",
    "ssrnet-tf train --config ssrnet data.path=UTKFace/ --resume          # continue an interrupted run",
    "ssrnet-tf train --config ssrnet --print-config                       # every setting and its value",
)


def run(args: argparse.Namespace) -> int:
    """Loads the config with overrides and trains it."""
    from ssrnet_tf.training import config as config_lib, trainer  # pylint: disable=import-outside-toplevel

    config = config_lib.load_config(args.config, args.overrides)
    if args.print_config:
        print(config.to_yaml())
        return 0
    trainer.train(config, resume=args.resume, verbose=args.progress, overrides=args.overrides)
    return 0


def add_parser(commands) -> None:
    """Adds ``train`` to the ``ssrnet-tf`` sub-command parsers."""
    from ssrnet_tf.training.config import config_names  # pylint: disable=import-outside-toplevel

    parser = commands.add_parser(
        "train",
        help="train a named experiment config",
        description="Trains a named experiment config (shipped in ssrnet_tf/configs/) or your YAML file. Any "
        "setting can be overridden as section.key=value; data.path= names the faces (a UTKFace-style folder: "
        "AGE_GENDER_RACE_*.jpg, or a CSV table). The run folder (run.output_dir) keeps the resolved config, the "
        "split, logs, backups, the models and the test report.",
    )
    parser.add_argument("--config", required=True, help=f"config name ({', '.join(config_names())}) or a YAML file")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides, e.g. run.epochs=3 data.limit=500")
    parser.add_argument("--resume", action="store_true", help="continue the interrupted run in run.output_dir")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.add_argument("--progress", type=int, default=1, choices=(0, 1, 2), help="Keras progress: 0 silent, 1 bar, 2 one line per epoch [1]")
    parser.set_defaults(handler=run)
