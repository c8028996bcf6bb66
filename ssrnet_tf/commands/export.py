"""``ssrnet-tf export``: a model to .tflite, with an optional accuracy check."""

from __future__ import annotations

import argparse
import pathlib

from ssrnet_tf.commands.common import (MODEL_HELP, add_model_arguments, add_weights_dir_argument, check_mae_drop,
                                       model_from, weights_dir_from)

#: ``--quantize`` value of quantization-aware training (int8, fine-tuned on labelled faces).
QAT = "qat"

EXAMPLES = (
    "ssrnet-tf export imdb --out ssrnet_imdb.tflite                  # the published SSR-Net, float32",
    "ssrnet-tf export runs/ssrnet/model.keras --out age_int8.tflite --quantize int8 \\",
    "    --calibration-dir UTKFace/ --check UTKFace/ --max-mae-drop 0.5   # int8 for a phone, checked",
    "ssrnet-tf export imdb --out imdb_qat.tflite --quantize qat --calibration-dir UTKFace/ --calibration-count 2000 \\",
    "    --check UTKFace/ --max-mae-drop 0.3                              # quantization-aware training, checked",
)


def run(args: argparse.Namespace) -> int:
    """Converts, embeds the model spec, optionally checks MAE on real faces."""
    from ssrnet_tf.errors import UsageError  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.export import TFLiteModel, calibration, convert_to_tflite  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.export.flatbuffer import min_runtime_version  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.faces.age_predictor import AgeModel, load_age_model  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.models.float32_copy import float32_copy  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.utils.atomic import remove_temp_files  # pylint: disable=import-outside-toplevel

    if not str(args.out).lower().endswith(".tflite"):
        raise UsageError(f"--out {args.out}: the export is a TFLite flatbuffer; name it *.tflite "
                         "(a .keras model is written by train, not export).")
    out = pathlib.Path(args.out)
    remove_temp_files(out.parent, recursive=False, prefix=out.name + ".")  # left by a killed export
    loaded = load_age_model(model_from(args, "export"), weights_dir=weights_dir_from(args, "export"))
    # A model trained with mixed precision (GPU) converts in float32.
    model = float32_copy(loaded.require_keras("export it"))
    size = model.input_shape[1]
    representative = None
    if args.per_unit_dense_weights and args.quantize != "int8":  # (qat: the default per matrix)
        raise UsageError("--per-unit-dense-weights applies to --quantize int8 only.")
    if args.hybrid_ops and args.quantize != "dynamic":
        raise UsageError("--hybrid-ops applies to --quantize dynamic only.")
    if args.quantize in ("int8", QAT) and not args.calibration_dir:
        raise UsageError(f"--quantize {args.quantize} needs --calibration-dir: a folder of real, aligned face crops"
                         + (" with ages first in the file names (UTKFace-style)." if args.quantize == QAT else "."))
    if args.quantize == QAT:
        from ssrnet_tf.export import qat_export  # pylint: disable=import-outside-toplevel  # needs tf_keras, tfmot

        tune_faces, tune_ages = calibration.labelled_faces(args.calibration_dir, size, limit=args.calibration_count,
                                                           seed=0)
        print(f"QAT: calibrating and fine-tuning {args.qat_epochs} epoch(s) on {len(tune_ages)} faces from "
              f"{args.calibration_dir}")
        flatbuffer = qat_export.qat_to_tflite(model, tune_faces, tune_ages, epochs=args.qat_epochs,
                                              learning_rate=args.qat_learning_rate, output_path=args.out, spec=loaded.spec)
    else:
        if args.quantize == "int8":
            representative = calibration.folder_faces(args.calibration_dir, size, limit=args.calibration_count)
            print(f"calibrating on {len(representative)} faces from {args.calibration_dir}")
        flatbuffer = convert_to_tflite(
            model, args.out, quantize=args.quantize, representative_images=representative,
            int8_input_type=args.int8_input, spec=loaded.spec,
            int8_head_weights=args.per_unit_dense_weights, dynamic_hybrid_ops=args.hybrid_ops,
        )
    runner = TFLiteModel(flatbuffer, num_threads=1)
    print(f"wrote {args.out}: {len(flatbuffer) / 1024:.1f} KiB, {args.quantize}, input {runner.input_dtype}; "
          f"XNNPACK {runner.delegation().summary()}")
    print(f"minimum runtime: TFLite / LiteRT {min_runtime_version(flatbuffer) or 'unknown (no metadata)'}")
    if not args.check:
        return 0
    reference = AgeModel.from_keras(model, loaded.spec, loaded.name)
    exported = AgeModel(args.out, "tflite", loaded.spec, "model file", runner.predict_outputs)
    return check_mae_drop(reference, exported, args.check, count=args.check_count, max_drop=args.max_mae_drop,
                          labels=("Keras", f"{args.quantize} .tflite"))


def add_parser(commands) -> None:
    """Adds ``export`` to the ``ssrnet-tf`` sub-command parsers."""
    from ssrnet_tf.export import QUANTIZE_MODES  # pylint: disable=import-outside-toplevel

    parser = commands.add_parser(
        "export",
        help="convert a model to .tflite (float32/float16/dynamic/int8)",
        description="Converts a .keras model or published SSR-Net weights to a .tflite file with the model spec "
        "(input size, crop alignment, margin) embedded, reports how much of it XNNPACK runs, and with --check "
        "compares the MAE of the file with the Keras model's on labelled faces.",
    )
    add_model_arguments(parser, help_text=MODEL_HELP.replace(".keras or .tflite file", ".keras file"))
    parser.add_argument("--out", required=True, help="destination .tflite")
    parser.add_argument("--quantize", choices=(*QUANTIZE_MODES, QAT), default="none",
                        help="[none]; qat: int8 after quantization-aware fine-tuning on --calibration-dir")
    parser.add_argument("--calibration-dir", help="folder of real aligned face crops for int8 calibration "
                        "(qat: UTKFace-style, ages first in the file names; also the fine-tuning faces)")
    parser.add_argument("--calibration-count", type=int, default=300, help="faces used for calibration [300]")
    parser.add_argument("--qat-epochs", type=int, default=1, help="qat: fine-tuning epochs [1]")
    parser.add_argument("--qat-learning-rate", type=float, default=1e-4, help="qat: Adam learning rate [1e-4]")
    parser.add_argument("--per-unit-dense-weights", action="store_true",
                        help="int8, NEEDS TFLite/LiteRT >= 2.17 (older runtimes refuse the file): the float head's "
                        "dense weights as int8 with one scale per output unit (-6 KiB of SSR-Net's 67 KiB)")
    parser.add_argument("--hybrid-ops", action="store_true",
                        help="dynamic, NEEDS TFLite/LiteRT >= 2.17 for backbone models: the converter's hybrid ops, "
                        "which also quantize activations at run time; faster with XNNPACK than the default "
                        "weight-only file, but the ages depend on the runtime's kernels (0.6 years on the compact "
                        "backbone)")
    parser.add_argument("--int8-input", choices=("float32", "int8", "uint8"), default="float32", help="input type of an int8 model [float32]")
    parser.add_argument("--check", help="UTKFace-style folder (age first in file names): print MAE of Keras vs the export")
    parser.add_argument("--check-count", type=int, default=1000, help="faces used by --check [1000]")
    parser.add_argument("--max-mae-drop", type=float, help="fail (exit 1) if the export's MAE exceeds Keras' by more")
    add_weights_dir_argument(parser)
    parser.set_defaults(handler=run)
