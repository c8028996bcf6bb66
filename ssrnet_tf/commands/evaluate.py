"""``ssrnet-tf evaluate``: a report (JSON, Markdown, plots) for any model file."""

from __future__ import annotations

import argparse

from ssrnet_tf.commands.common import (MODEL_HELP, add_model_arguments, add_weights_dir_argument, model_from, positive_int,
                                       weights_dir_from)

EXAMPLES = (
    "ssrnet-tf evaluate runs/ssrnet/model.keras --data UTKFace/ --split runs/ssrnet/split.json",
    "ssrnet-tf evaluate age_int8.tflite --data UTKFace/ --limit 1000 --output-dir runs/eval_int8",
)


def run(args: argparse.Namespace) -> int:
    """Predicts a labelled folder and writes the report."""
    from ssrnet_tf.evaluation import evaluate_predictions, predict_folder  # pylint: disable=import-outside-toplevel

    model = model_from(args, "evaluate", required=False)  # None: the best shipped model
    y_true, y_pred, info = predict_folder(model, args.data, limit=args.limit, seed=args.seed,
                                          weights_dir=weights_dir_from(args, "evaluate"), split=args.split,
                                          part=args.part, flip_average=args.flip_average)
    report = evaluate_predictions(y_true, y_pred, args.output_dir, info)
    print(f"{info['model']}: MAE {report['mae']:.3f} | CA(3) {report['ca_3']:.3f} | CA(5) {report['ca_5']:.3f} | "
          f"AAR {report['aar']:.3f} on {report['count']} faces; report in {args.output_dir}")
    if info["skipped"]:
        print(f"skipped {len(info['skipped'])} of {info['input']['read']} inputs, each with its reason in "
              f"{args.output_dir}/report.json (info.skipped)")
    return 0


def add_parser(commands) -> None:
    """Adds ``evaluate`` to the ``ssrnet-tf`` sub-command parsers."""
    parser = commands.add_parser(
        "evaluate",
        help="MAE, CA(n), group MAE, AAR report with plots for .keras/.tflite models",
        description="Predicts every face of a labelled folder (UTKFace-style names: age first) or CSV table and "
        "writes report.json, report.md and plots (MAE per age group, predicted vs true, CA(n) curve, error "
        "histogram). --split with a run's split.json keeps only its held-out test faces. Without a model: the "
        "best shipped model.",
    )
    add_model_arguments(parser, help_text=MODEL_HELP + " [the best shipped model]")
    parser.add_argument("--flip-average", action="store_true",
                        help="test-time flip averaging: each age is the mean over the face and its mirror image")
    parser.add_argument("--data", required=True, help="UTKFace-style folder (age first in file names) or a CSV table")
    parser.add_argument("--output-dir", default="runs/evaluation", help="[runs/evaluation]")
    parser.add_argument("--limit", type=positive_int, help="evaluate a seeded sample of at most this many faces")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", help="a run's split.json: evaluate only the faces of one part (held-out test faces)")
    parser.add_argument("--part", default="test", help="part of --split to evaluate [test]")
    add_weights_dir_argument(parser)
    parser.set_defaults(handler=run)
