"""QAT of a backbone age model to an int8 .tflite, with PTQ for comparison (``qat_export.qat_experiment``).

Example:
    python export/qat_backbone.py runs/ldl/model.keras --split runs/ldl/split.json \
        --out runs/ldl/qat_int8.tflite --ptq-out runs/ldl/ptq_int8.tflite
"""

import argparse
import sys

from ssrnet_tf.export import qat_export


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="trained .keras backbone age model (ssrnet-tf train)")
    parser.add_argument("--split", help="the run's split.json: fine-tune on its train part, check on its test part")
    parser.add_argument("--faces", help="UTKFace-style folder for fine-tuning and the check (without --split)")
    parser.add_argument("--out", required=True, help="destination QAT int8 .tflite")
    parser.add_argument("--ptq-out", help="also export post-training int8 here and report it")
    parser.add_argument("--train-count", type=int, default=2000, help="fine-tuning faces [2000]")
    parser.add_argument("--check-count", type=int, default=1000, help="other faces for the MAE check [1000]")
    parser.add_argument("--calibration-count", type=int, default=300, help="faces that set int8 ranges [300]")
    parser.add_argument("--epochs", type=int, default=1, help="QAT epochs [1]")
    parser.add_argument("--learning-rate", type=float, default=1e-4, help="Adam learning rate [1e-4]")
    parser.add_argument("--float-baseline", action="store_true", help="also fine-tune the float model the same way")
    args = parser.parse_args(argv)
    results = qat_export.qat_experiment(
        args.model, args.out, faces_dir=args.faces, split=args.split, ptq_out=args.ptq_out,
        train_count=args.train_count, check_count=args.check_count, calibration_count=args.calibration_count,
        epochs=args.epochs, learning_rate=args.learning_rate, float_baseline=args.float_baseline)
    return 0 if results["fully_delegated"] else 1


if __name__ == "__main__":
    sys.exit(main())
