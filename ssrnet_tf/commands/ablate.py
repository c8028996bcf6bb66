"""``ssrnet-tf ablate NAME``: run a named ablation study and write its table."""

from __future__ import annotations

import argparse
import shlex
import sys


EXAMPLES = (
    "ssrnet-tf ablate ssrnet_range                       # SSR-Net with and without the dynamic range",
    "ssrnet-tf ablate heads data.limit=3000 run.epochs=8 # a bigger budget for every variant",
    "ssrnet-tf ablate lae --tables-only                  # rebuild the table from the finished runs",
)


def run(args: argparse.Namespace) -> int:
    """Loads the study and runs every variant for every seed."""
    from ssrnet_tf.training import ablation  # pylint: disable=import-outside-toplevel

    study = ablation.load_study(args.study)
    output_dir = args.output_dir or f"runs/ablations/{study.name}"
    argv = [part for part in sys.argv[1:] if part != "--tables-only"]
    command = "ssrnet-tf " + " ".join(shlex.quote(part) for part in argv) if args.record_argv else ""
    results = ablation.run_study(study, output_dir, overrides=args.overrides, seeds=args.seeds,
                                 command=command, verbose=args.progress, train=not args.tables_only)
    if not results:
        raise ValueError(f"{output_dir}: no finished run of study {study.name!r} to tabulate.")
    print(f"{study.name}: {len(results['variants'])} variants x {len(results['seeds'])} seeds; "
          f"table in {output_dir}/ablation.md, plot in {output_dir}/ablation.png")
    return 0


def _study_list() -> str:
    from ssrnet_tf.training import ablation  # pylint: disable=import-outside-toplevel

    lines = ["studies (ssrnet_tf/configs/ablations/NAME.yaml):"]
    for name in ablation.study_names():
        try:
            study = ablation.load_study(name)
            lines.append(f"  {name:<16} {study.title}: {len(study.variants)} variants, seeds {study.seeds}")
        except (OSError, ValueError) as error:
            lines.append(f"  {name:<16} (unreadable: {error})")
    return "\n".join(lines)


def add_parser(commands) -> None:
    """Adds ``ablate`` to the ``ssrnet-tf`` sub-command parsers."""
    parser = commands.add_parser(
        "ablate", help="train every variant of a named ablation study alike; table (JSON, Markdown) and plot",
        description="Trains each variant of one study with the same backbone, input size, split, epochs and\n"
                    "seeds, and writes ablation.json, ablation.md and ablation.png to the output folder.\n"
                    "Finished runs are reused and interrupted ones resumed when the command is run again.\n\n"
                    + _study_list(),
    )
    parser.add_argument("study", help="study name (see below) or a study YAML path")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides for every variant, e.g. run.epochs=1")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds to run instead of the study's")
    parser.add_argument("--output-dir", help="[runs/ablations/NAME]")
    parser.add_argument("--tables-only", action="store_true",
                        help="rebuild the table and plot from the finished runs; train nothing")
    parser.add_argument("--progress", type=int, default=0, choices=(0, 1, 2), help="Keras progress: 0 silent, 1 bar, 2 one line per epoch [0]")
    parser.set_defaults(handler=run, record_argv=True)
