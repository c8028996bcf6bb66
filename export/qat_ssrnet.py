"""Quantization-aware training of SSR-Net to an int8 .tflite (``ssrnet_tf.export.qat_export.qat_experiment``).

Example:
    python export/qat_ssrnet.py imdb --weights-dir ../shared/reference/ssrnet \
        --faces ../shared/data/utkface/UTKFace --out runs/imdb_qat_int8.tflite
"""

import argparse
import sys

from ssrnet_tf.export import qat_export


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help=".keras file, published .h5 file, or published weights name (imdb, ...)")
    parser.add_argument("--weights-dir", help="local folder of published .h5 files")
    parser.add_argument("--faces", required=True, help="UTKFace-style folder for fine-tuning and the check")
    parser.add_argument("--out", required=True, help="destination .tflite")
    parser.add_argument("--train-count", type=int, default=3000, help="fine-tuning faces [3000]")
    parser.add_argument("--check-count", type=int, default=1000, help="other faces for the MAE check [1000]")
    parser.add_argument("--epochs", type=int, default=2, help="QAT epochs [2]")
    parser.add_argument("--learning-rate", type=float, default=1e-4, help="Adam learning rate [1e-4]")
    args = parser.parse_args(argv)
    results = qat_export.qat_experiment(
        args.model, args.out, faces_dir=args.faces, weights_dir=args.weights_dir, train_count=args.train_count,
        check_count=args.check_count, calibration_count=500, epochs=args.epochs, learning_rate=args.learning_rate)
    return 0 if results["fully_delegated"] else 1


if __name__ == "__main__":
    sys.exit(main())
